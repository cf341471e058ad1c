"""Commands: top, stats, port, update, diff."""
import sys

from pouch.cli.common import CLIError, print_table
from pouch.cli.units import human_bytes_binary


def setup(name, parser):
    if name == "top":
        from pouch.cli.args import REMAINDER
        parser.add_argument("container")
        parser.add_argument("ps_args", nargs=REMAINDER)  # passed to ps as they are: pouch top C -aux
        return run_top
    if name == "stats":
        parser.add_argument("--no-stream", action="store_true", help="Disable streaming stats and only pull the first result")
        parser.add_argument("-a", "--all", action="store_true", help="Show all containers (default shows just running)")
        parser.add_argument("containers", nargs="*")
        return run_stats
    if name == "port":
        parser.add_argument("container")
        parser.add_argument("private_port", nargs="?")
        return run_port
    if name == "diff":
        parser.add_argument("container")
        return run_diff
    from pouch.cli.container_opts import add_update_flags
    add_update_flags(parser)
    return run_update


def run_diff(ctx, args):
    for change in ctx.client.diff(args.container):
        print("%s %s" % ("CAD"[change.get("Kind", 0)], change.get("Path", "")))
    return 0


def run_top(ctx, args):
    result = ctx.client.top(args.container, " ".join(args.ps_args) or None)
    print_table([result.get("Titles") or []] + (result.get("Processes") or []))
    return 0


def stats_row(name, s):
    cpu = s.get("cpu_stats") or {}
    pre = s.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get("total_usage", 0)
    sys_delta = (cpu.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
    ncpu = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    cpu_pct = cpu_delta / sys_delta * ncpu * 100.0 if sys_delta > 0 and cpu_delta > 0 else 0.0
    mem = s.get("memory_stats") or {}
    usage = (mem.get("usage") or 0) - ((mem.get("stats") or {}).get("cache") or 0)
    limit = mem.get("limit") or 0
    rx = sum(n.get("rx_bytes", 0) for n in (s.get("networks") or {}).values())
    tx = sum(n.get("tx_bytes", 0) for n in (s.get("networks") or {}).values())
    blk = ((s.get("blkio_stats") or {}).get("io_service_bytes_recursive") or [])
    rd = sum(e.get("value", 0) for e in blk if e.get("op", "").lower() == "read")
    wr = sum(e.get("value", 0) for e in blk if e.get("op", "").lower() == "write")
    pids = (s.get("pids_stats") or {}).get("current", 0)
    return [name, "%.2f%%" % cpu_pct, "%s / %s" % (human_bytes_binary(usage), human_bytes_binary(limit)),
            "%.2f%%" % (usage * 100.0 / limit if limit else 0.0),
            "%s / %s" % (human_bytes_binary(rx), human_bytes_binary(tx)),
            "%s / %s" % (human_bytes_binary(rd), human_bytes_binary(wr)), str(pids)]


HEADER = ["CONTAINER", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]


def run_stats(ctx, args):
    client = ctx.client
    names = args.containers or [c["Names"][0].lstrip("/") for c in client.containers(all=args.all)]
    if args.no_stream or len(names) != 1:
        rows = [HEADER] + [stats_row(n, client.stats(n, stream=False)) for n in names]
        print_table(rows)
        if args.no_stream:
            return 0
        raise CLIError("streaming stats of several containers is not supported; use --no-stream")
    for s in client.stats(names[0], stream=True):
        sys.stdout.write("\x1b[2J\x1b[H" if sys.stdout.isatty() else "")
        print_table([HEADER, stats_row(names[0], s)])
        sys.stdout.flush()
    return 0


def run_port(ctx, args):
    info = ctx.client.inspect_container(args.container)
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    if args.private_port:
        key = args.private_port if "/" in args.private_port else args.private_port + "/tcp"
        if not ports.get(key):
            raise CLIError("No public port '%s' published for %s" % (key, args.container))
        for b in ports[key]:
            print("%s:%s" % (b.get("HostIp") or "0.0.0.0", b.get("HostPort")))
        return 0
    for key in sorted(ports):
        for b in ports[key] or []:
            print("%s -> %s:%s" % (key, b.get("HostIp") or "0.0.0.0", b.get("HostPort")))
    return 0


def run_update(ctx, args):
    from pouch.cli.container_opts import build_update_body
    body = build_update_body(args)  # no flags: accepted and changes nothing, as Pouch
    result = ctx.client.update_container(args.container, body) or {}
    for w in result.get("Warnings") or []:
        sys.stderr.write("WARNING: %s\n" % w)
    print(args.container)
    return 0
