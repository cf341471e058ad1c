"""Commands: create and run (create [+ pull on missing image], attach, start, wait)."""
import sys

from pouch.cli.common import CLIError, ExitStatus
from pouch.cli.container_opts import add_container_flags, build_create_body


def setup(name, parser):
    if name == "run":
        parser.add_argument("-d", "--detach", action="store_true", help="Run container in the background")
        parser.add_argument("--rm", action="store_true", help="Remove the container when it exits")
    add_container_flags(parser)
    return run_run if name == "run" else run_create


def _is_missing_image(exc):
    text = str(exc).lower()
    return "no such image" in text or ("image" in text and "not found" in text)


def pull_image(client, image, out=None):
    """Pull an image, printing one line per status message; raise on an error message."""
    out = out or sys.stderr
    for msg in client.pull(image):
        if msg.get("error") or msg.get("errorDetail"):
            raise CLIError(msg.get("error") or msg["errorDetail"].get("message"))
        status = msg.get("status")
        if status and "progress" not in msg:
            out.write("%s%s\n" % (msg["id"] + ": " if msg.get("id") else "", status))
    out.flush()


def create(client, body, name):
    """POST /containers/create; on a missing image pull it and retry once."""
    from pouch.client.errors import NotFound
    try:
        return client.create_container(body, name)
    except NotFound as exc:
        if not _is_missing_image(exc):
            raise
    pull_image(client, body["Image"])
    return client.create_container(body, name)


def _print_warnings(result):
    for warning in result.get("Warnings") or []:
        sys.stderr.write("WARNING: %s\n" % warning)


def run_create(ctx, args):
    args.rm = False
    body = build_create_body(args, attach_stdio=False)
    result = create(ctx.client, body, args.name)
    _print_warnings(result)
    print(result["Id"])
    return 0


def run_run(ctx, args):
    if not args.detach:
        from pouch.cli.common import need_terminal
        need_terminal(args.tty, args.interactive)
    body = build_create_body(args, attach_stdio=not args.detach)
    client = ctx.client
    result = create(client, body, args.name)
    _print_warnings(result)
    cid = result["Id"]
    if args.detach:
        client.start(cid)
        print(cid)
        return 0
    from pouch.cli.exec_attach import attach_and_run
    code = attach_and_run(client, cid, tty=args.tty, stdin=args.interactive,
                          detach_keys=args.detach_keys, start=True, auto_remove=args.rm)
    raise ExitStatus(code)
