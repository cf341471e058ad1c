"""Command: events (--since, --until, --filter, --format)."""
import time

from pouch.cli.common import CLIError, filters_from_opts
from pouch.cli.units import parse_timestamp


def setup(name, parser):
    parser.add_argument("-s", "--since", help="Show all events created since timestamp")
    parser.add_argument("-u", "--until", help="Stream events until this timestamp")
    parser.add_argument("-f", "--filter", action="append", default=[], help="Filter output based on conditions")
    parser.add_argument("--format", help="Format the output using the given Go template")
    return run_events


def format_event(ev):
    """'2018-05-16T12:34:56.123456789+08:00 container start abc (image=busybox, name=x)'."""
    nano = ev.get("timeNano") or int(ev.get("time", 0)) * 10**9
    secs, frac = divmod(int(nano), 10**9)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(secs)) + ".%09d" % frac \
        + time.strftime("%z", time.localtime(secs))
    stamp = stamp[:-2] + ":" + stamp[-2:]
    actor = ev.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    line = "%s %s %s %s" % (stamp, ev.get("Type", ""), ev.get("Action", ""), actor.get("ID", ev.get("id", "")))
    if attrs:
        line += " (%s)" % ", ".join("%s=%s" % kv for kv in sorted(attrs.items()))
    return line


def run_events(ctx, args):
    try:
        since = parse_timestamp(args.since) if args.since else None
        until = parse_timestamp(args.until) if args.until else None
    except ValueError as exc:
        raise CLIError(str(exc))
    tpl = None
    if args.format:
        from pouch.cli.formatter import Template
        tpl = Template(args.format)
    for ev in ctx.client.events(since=since, until=until, filters=filters_from_opts(args.filter)):
        print(tpl.render(ev) if tpl else format_event(ev), flush=True)
    return 0
