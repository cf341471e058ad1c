"""Commands that act on containers by name: start, stop, restart, kill, rm, pause, unpause, rename, wait, upgrade."""

from pouch.cli.common import CLIError, ExitStatus


def setup(name, parser):
    if name == "upgrade":
        from pouch.cli.args import REMAINDER
        parser.add_argument("--image", required=True, help="Specify image of the new container")
        parser.add_argument("--entrypoint", default=None, help="Overwrite the default ENTRYPOINT of the image")
        parser.add_argument("container")
        parser.add_argument("command", nargs=REMAINDER)
        return run_upgrade
    if name == "rename":
        parser.add_argument("container")
        parser.add_argument("new_name")
        return run_rename
    parser.add_argument("containers", nargs="+", metavar="CONTAINER")
    if name in ("stop", "restart"):
        parser.add_argument("-t", "--time", type=int, default=None,
                            help="Seconds to wait for stop before killing it")
    if name == "kill":
        parser.add_argument("-s", "--signal", default=None, help="Signal to send to the container")
    if name == "rm":
        parser.add_argument("-f", "--force", action="store_true", help="Force remove a running container")
        parser.add_argument("-v", "--volumes", action="store_true",
                            help="Remove anonymous volumes associated with the container")
    if name == "start":
        parser.add_argument("-a", "--attach", action="store_true", help="Attach container's STDOUT and STDERR")
        parser.add_argument("-i", "--interactive", action="store_true", help="Attach container's STDIN")
        parser.add_argument("--detach-keys", default=None, help="Override the key sequence for detaching")
        parser.add_argument("--checkpoint", default=None, help="Restore container state from the checkpoint")
        parser.add_argument("--checkpoint-dir", default=None, help="Directory to store checkpoints images")
        return run_start
    return lambda ctx, args: _each(ctx, args, name)


def _act(client, name, cid, args):
    if name == "start":
        client.start(cid, getattr(args, "detach_keys", None), checkpoint=getattr(args, "checkpoint", None),
                     checkpoint_dir=getattr(args, "checkpoint_dir", None))
    elif name == "stop":
        client.stop(cid, args.time)
    elif name == "restart":
        client.restart(cid, args.time)
    elif name == "kill":
        client.kill(cid, args.signal)
    elif name == "rm":
        client.remove_container(cid, force=args.force, v=args.volumes)
    elif name == "pause":
        client.pause(cid)
    elif name == "unpause":
        client.unpause(cid)
    elif name == "wait":
        return str(client.wait(cid).get("StatusCode", 0))
    return cid


def _each(ctx, args, name):
    """Apply one verb to each container; report each failure, exit 1 if any failed."""
    from pouch.client.errors import PouchClientError
    failed = []
    for cid in args.containers:
        try:
            print(_act(ctx.client, name, cid, args))
        except PouchClientError as exc:
            failed.append("failed to %s container %s: %s" % (name, cid, exc))
    if failed:
        raise CLIError("; ".join(failed))
    return 0


def run_rename(ctx, args):
    ctx.client.rename(args.container, args.new_name)
    return 0


def run_start(ctx, args):
    if not (args.attach or args.interactive):
        return _each(ctx, args, "start")
    if len(args.containers) > 1:
        raise CLIError("you cannot start and attach multiple containers at once")
    from pouch.cli.exec_attach import attach_and_run
    cid = args.containers[0]
    info = ctx.client.inspect_container(cid)
    tty = bool(info.get("Config", {}).get("Tty"))
    from pouch.cli.common import need_terminal
    need_terminal(tty, args.interactive)
    code = attach_and_run(ctx.client, info["Id"], tty=tty, stdin=args.interactive,
                          detach_keys=args.detach_keys, start=True)
    raise ExitStatus(code)


def run_upgrade(ctx, args):
    from pouch.cli.create_run import _is_missing_image, pull_image
    from pouch.client.errors import NotFound
    entrypoint = None if args.entrypoint is None else ([args.entrypoint] if args.entrypoint else [])
    try:
        ctx.client.upgrade(args.container, args.image, cmd=args.command or None, entrypoint=entrypoint)
    except NotFound as exc:  # as Pouch: a missing image is pulled first
        if not _is_missing_image(exc):
            raise
        pull_image(ctx.client, args.image)
        ctx.client.upgrade(args.container, args.image, cmd=args.command or None, entrypoint=entrypoint)
    print(args.container)
    return 0
