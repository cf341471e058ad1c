"""Command: logs (-f, --tail, --since, --until, -t)."""
import sys

from pouch.cli.common import CLIError
from pouch.cli.units import parse_timestamp


def setup(name, parser):
    parser.add_argument("-f", "--follow", action="store_true", help="Follow log output")
    parser.add_argument("--tail", default="all", help="Number of lines to show from the end of the logs")
    parser.add_argument("--since", help="Show logs since timestamp or relative (e.g. 42m)")
    parser.add_argument("--until", help="Show logs before timestamp or relative (e.g. 42m)")
    parser.add_argument("-t", "--timestamps", action="store_true", help="Show timestamps")
    parser.add_argument("--details", action="store_true", help="Show extra details provided to logs")
    parser.add_argument("container")
    return run_logs


def run_logs(ctx, args):
    try:
        since = parse_timestamp(args.since) if args.since else None
        until = parse_timestamp(args.until) if args.until else None
    except ValueError as exc:
        raise CLIError(str(exc))
    info = ctx.client.inspect_container(args.container)
    tty = bool((info.get("Config") or {}).get("Tty"))
    out, err = sys.stdout.buffer, sys.stderr.buffer
    for stream, data in ctx.client.logs(info["Id"], follow=args.follow, tail=args.tail, since=since,
                                        until=until, timestamps=args.timestamps, tty=tty, details=args.details):
        target = err if stream == 2 else out
        target.write(data)
        target.flush()
    return 0
