"""Commands: exec, attach; plus `attach_and_run`, the interactive stream loop shared with run/start."""
import sys

from pouch.cli.args import REMAINDER
from pouch.cli.common import CLIError, ExitStatus


def setup(name, parser):
    parser.add_argument("--detach-keys", default=None, help="Override the key sequence for detaching")
    if name == "attach":
        parser.add_argument("--no-stdin", action="store_true", help="Do not attach STDIN")
        parser.add_argument("container")
        return run_attach
    parser.add_argument("-d", "--detach", action="store_true", help="Run the process in the background")
    parser.add_argument("-i", "--interactive", action="store_true", help="Open container's STDIN")
    parser.add_argument("-t", "--tty", action="store_true", help="Allocate a tty device")
    parser.add_argument("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])")
    parser.add_argument("-w", "--workdir", help="Working directory inside the container")
    parser.add_argument("-e", "--env", action="append", default=[], help="Set environment variables")
    parser.add_argument("--privileged", action="store_true", help="Give extended privileges")
    parser.add_argument("container")
    parser.add_argument("command", nargs=REMAINDER)
    return run_exec


def stream_session(hsock, tty, stdin, detach_keys, resize=None, on_exit_code=None):
    """Pump a hijacked socket against this process's stdio; return True when detached."""
    from pouch.client.terminal import pump, raw_terminal, resize_on_winch
    in_fd = sys.stdin.fileno() if stdin else None
    out = sys.stdout.buffer
    sys.stdout.flush()
    kw = {"detach_keys": detach_keys, "on_exit_code": on_exit_code}
    if tty and stdin and sys.stdin.isatty():
        with raw_terminal(in_fd), resize_on_winch(in_fd, resize or (lambda h, w: None)):
            return pump(hsock, in_fd, out, sys.stderr.buffer, tty=True, **kw)
    if tty and resize and sys.stdout.isatty():
        with resize_on_winch(sys.stdout.fileno(), resize):
            return pump(hsock, in_fd, out, sys.stderr.buffer, tty=tty, **kw)
    return pump(hsock, in_fd, out, sys.stderr.buffer, tty=tty, **kw)


def output_session(hsock, tty):
    """A session without stdin or a terminal to size: copy the output in this thread (no
    terminal, threading or signal imports); return the exit code trailer's code, or None."""
    from pouch.client.streams import copy_output
    sys.stdout.flush()
    try:
        return copy_output(hsock, tty, sys.stdout.buffer, sys.stderr.buffer)
    except BrokenPipeError:
        raise
    except OSError:
        return None


def start_failure_code(exc):
    """Docker's exit status for a command that could not be run: 127 not found, 126 not executable."""
    text = str(exc).lower()
    if "executable file not found" in text or ("exec:" in text and "no such file" in text):
        return 127
    if "exec:" in text and "permission denied" in text:
        return 126
    return 0


def attach_and_run(client, cid, tty, stdin, detach_keys=None, start=False, auto_remove=False):
    """Attach, (optionally) start, stream until exit; return the container's exit code.

    The wait request goes out on its own connection before start so a quick exit is caught.
    """
    hsock = client.attach_socket(cid, stdin=stdin, stdout=True, stderr=True, detach_keys=detach_keys)
    with hsock:
        # like docker run --rm: return once the container is gone, not merely stopped
        finish_wait = client.wait_begin(cid, condition="removed" if auto_remove else "next-exit") \
            if start else None
        if start:
            try:
                client.start(cid)
            except BaseException as exc:
                hsock.close()
                code = start_failure_code(exc)
                if code:
                    sys.stderr.write("Error: %s\n" % (str(exc).strip().splitlines() or [""])[0])
                    raise ExitStatus(code) from None
                raise
        detached = stream_session(hsock, tty, stdin, detach_keys,
                                  resize=lambda h, w: client.resize(cid, h, w))
    if detached:
        sys.stderr.write("\n")
        return 0
    if finish_wait is not None:
        result = finish_wait() or {}
    else:
        result = client.wait(cid) if not auto_remove else {}
    err = (result.get("Error") or {}).get("Message") if isinstance(result.get("Error"), dict) else None
    if err:
        sys.stderr.write("Error: %s\n" % err)
    return int(result.get("StatusCode", 0) or 0)


def run_attach(ctx, args):
    client = ctx.client
    info = client.inspect_container(args.container)
    state = info.get("State") or {}
    if not state.get("Running"):
        raise CLIError("You cannot attach to a stopped container, start it first")
    if state.get("Paused"):
        raise CLIError("You cannot attach to a paused container, unpause it first")
    config = info.get("Config") or {}
    stdin = bool(config.get("OpenStdin")) and not args.no_stdin
    tty = bool(config.get("Tty"))
    hsock = client.attach_socket(info["Id"], stdin=stdin, detach_keys=args.detach_keys)
    with hsock:
        detached = stream_session(hsock, tty, stdin, args.detach_keys,
                                  resize=lambda h, w: client.resize(info["Id"], h, w))
    if detached:
        return 0
    after = client.inspect_container(info["Id"])
    raise ExitStatus(int((after.get("State") or {}).get("ExitCode") or 0))


def run_exec(ctx, args):
    if not args.detach:
        from pouch.cli.common import need_terminal
        need_terminal(args.tty, args.interactive)
    client = ctx.client
    created = client.exec_create(args.container, args.command, stdin=args.interactive,
                                 stdout=not args.detach, stderr=not args.detach, tty=args.tty,
                                 user=args.user, workdir=args.workdir, environment=args.env,
                                 privileged=args.privileged, detach_keys=args.detach_keys)
    exec_id = created["Id"]
    if args.detach:
        client.exec_start(exec_id, tty=args.tty, detach=True)
        return 0
    # pouchd ends a non-TTY stream with the exit code: no inspect request after it
    hsock = client.exec_start(exec_id, tty=args.tty, exit_code=True)
    codes = []
    with hsock:
        if not args.interactive and not (args.tty and sys.stdout.isatty()):
            codes.append(output_session(hsock, args.tty))
            detached = False
        else:
            detached = stream_session(hsock, args.tty, args.interactive, args.detach_keys,
                                      resize=lambda h, w: client.exec_resize(exec_id, h, w),
                                      on_exit_code=codes.append)
    if detached:
        return 0
    code = codes[-1] if codes and codes[-1] is not None else client.exec_inspect(exec_id).get("ExitCode")
    raise ExitStatus(int(code or 0))
