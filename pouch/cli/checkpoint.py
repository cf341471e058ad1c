"""Command: checkpoint (create, ls, rm): CRIU checkpoints of a container (Pouch's)."""
from pouch.cli.common import print_table


def setup(name, parser):
    sub = parser.add_subparsers(dest="sub", metavar="COMMAND")
    sub.required = True
    c = sub.add_parser("create", description="Create a checkpoint from a running container")
    c.add_argument("--checkpoint-dir", default=None, help="directory to store checkpoints images")
    c.add_argument("--leave-running", action="store_true", help="keep container running after creating checkpoint")
    c.add_argument("container")
    c.add_argument("checkpoint")
    ls = sub.add_parser("ls", aliases=["list"], description="List checkpoints of a container")
    ls.add_argument("--checkpoint-dir", default=None, help="directory of the checkpoints")
    ls.add_argument("container")
    rm = sub.add_parser("rm", aliases=["remove"], description="Remove a checkpoint of a container")
    rm.add_argument("--checkpoint-dir", default=None, help="directory of the checkpoint")
    rm.add_argument("container")
    rm.add_argument("checkpoint")
    return run


def run(ctx, args):
    if args.sub == "create":
        ctx.client.checkpoint_create(args.container, args.checkpoint, args.checkpoint_dir,
                                     exit=not args.leave_running)
        print(args.checkpoint)
    elif args.sub in ("ls", "list"):
        names = ctx.client.checkpoint_list(args.container, args.checkpoint_dir)
        print_table([["CHECKPOINT NAME"]] + [[n] for n in names])
    else:
        ctx.client.checkpoint_delete(args.container, args.checkpoint, args.checkpoint_dir)
        print(args.checkpoint)
    return 0
