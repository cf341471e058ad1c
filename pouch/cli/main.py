"""`pouch` entry point: global options, command table, lazy import of one command module.

Only the module of the command being run is imported, and the client is stdlib only, so
`pouch version` starts in a few tens of milliseconds.
"""
import sys

# command -> (module under pouch.cli, short help)
COMMANDS = {
    "attach": ("exec_attach", "Attach local standard input, output, and error to a running container"),
    "checkpoint": ("checkpoint", "Manage checkpoints of a container (create, ls, rm; needs CRIU)"),
    "commit": ("images", "Create a new image from a container's changes"),
    "cp": ("cp", "Copy files/folders between a container and the local filesystem"),
    "create": ("create_run", "Create a new container with specified image"),
    "diff": ("stats_top", "Inspect changes to files or directories on a container's filesystem"),
    "events": ("events", "Get real time events from the daemon"),
    "exec": ("exec_attach", "Exec a process in a running container"),
    "history": ("images", "Display history information of image"),
    "image": ("images", "Manage images (inspect, ls, rm, tag, ...)"),
    "images": ("images", "List all images"),
    "import": ("images", "Import a tarball to create a new image"),
    "info": ("system", "Display system-wide information"),
    "inspect": ("inspect", "Get the detailed information of container or image"),
    "kill": ("lifecycle", "Kill one or more running containers"),
    "load": ("images", "Load a set of images from a tar archive or STDIN"),
    "login": ("system", "Login to a registry"),
    "logout": ("system", "Logout from a registry"),
    "logs": ("logs", "Print a container's logs"),
    "network": ("network_volume", "Manage pouch networks"),
    "pause": ("lifecycle", "Pause one or more running containers"),
    "port": ("stats_top", "List port mappings or a specific mapping for the container"),
    "ps": ("ps", "List containers"),
    "pull": ("images", "Pull an image from registry"),
    "push": ("images", "Push an image to registry"),
    "remount-lxcfs": ("system", "Remount lxcfs bind mounts in running containers"),
    "rename": ("lifecycle", "Rename a container with newName"),
    "restart": ("lifecycle", "Restart one or more containers"),
    "rm": ("lifecycle", "Remove one or more containers"),
    "rmi": ("images", "Remove one or more images by reference"),
    "run": ("create_run", "Create a new container and start it"),
    "save": ("images", "Save an image to a tar archive or STDOUT"),
    "search": ("images", "Search the registry for images"),
    "start": ("lifecycle", "Start one or more created or stopped containers"),
    "stats": ("stats_top", "Display a live stream of container(s) resource usage statistics"),
    "stop": ("lifecycle", "Stop one or more running containers"),
    "system": ("system", "Manage pouchd (df: disk usage; info)"),
    "tag": ("images", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"),
    "top": ("stats_top", "Display the running processes of a container"),
    "unpause": ("lifecycle", "Unpause one or more paused containers"),
    "update": ("stats_top", "Update the configurations of a container"),
    "updatedaemon": ("updatedaemon", "Update the configurations of pouchd"),
    "upgrade": ("lifecycle", "Upgrade a container with new image and args"),
    "version": ("system", "Print versions about Pouch CLI and Pouchd"),
    "volume": ("network_volume", "Manage pouch volumes"),
    "wait": ("lifecycle", "Block until one or more containers stop, then print their exit codes"),
}

USAGE = """Usage: pouch [OPTIONS] COMMAND [ARG...]

An efficient container engine

Options:
  -H, --host string   Specify connecting address of Pouch CLI (default unix:///var/run/pouchd.sock)
  -D, --debug         Switch client log level to DEBUG mode
      --tlsverify     Use TLS and verify the daemon against --tlscacert
      --tlscacert, --tlscert, --tlskey string
                      CA to trust, client certificate and key (TCP hosts)
  -v, --version       Print version information and quit
  -h, --help          Print usage

Commands:
"""


def usage():
    width = max(map(len, COMMANDS)) + 2
    entries = dict(COMMANDS, help=(None, "Help about any command"))
    lines = ["  %s%s" % (name.ljust(width), entries[name][1]) for name in sorted(entries)]
    return USAGE + "\n".join(lines) + "\n\nRun 'pouch COMMAND --help' for more information on a command.\n"


TLS_VALUE_FLAGS = ("--tlscacert", "--tlscert", "--tlskey")


def split_global(argv):
    """Split argv into (host, debug, show_version, command, rest, tls). Raises ValueError.

    ``tls``: {"verify": bool, "tlscacert"/"tlscert"/"tlskey": path} from the TLS flags, or {}.
    """
    host, debug, show_version, tls = None, False, False, {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-H", "--host") or arg in TLS_VALUE_FLAGS:
            if i + 1 >= len(argv):
                raise ValueError("flag needs an argument: %s" % arg)
            if arg in TLS_VALUE_FLAGS:
                tls[arg[2:]] = argv[i + 1]
            else:
                host = argv[i + 1]
            i += 2
            continue
        flag, eq, value = arg.partition("=")
        if eq and flag in TLS_VALUE_FLAGS:
            tls[flag[2:]] = value
        elif arg.startswith("--host="):
            host = arg.split("=", 1)[1]
        elif arg.startswith("-H") and len(arg) > 2:
            host = arg[2:]
        elif arg in ("--tls", "--tlsverify"):
            tls["verify"] = arg == "--tlsverify" or tls.get("verify", False)
        elif arg in ("-D", "--debug"):
            debug = True
        elif arg in ("-v", "--version"):
            show_version = True
        elif arg in ("-h", "--help"):
            return host, debug, show_version, None, [], tls
        elif arg.startswith("-"):
            raise ValueError("unknown flag: %s" % arg)
        else:
            return host, debug, show_version, arg, argv[i + 1:], tls
        i += 1
    return host, debug, show_version, None, [], tls


def build_parser(name):
    """Import the command's module and build its parser (pouch.cli.args, not argparse)."""
    from pouch.cli.args import ArgumentParser
    module_name = "pouch.cli." + COMMANDS[name][0]
    __import__(module_name)
    parser = ArgumentParser(prog="pouch " + name, description=COMMANDS[name][1])
    handler = sys.modules[module_name].setup(name, parser)
    return parser, handler


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        host, debug, show_version, name, rest, tls = split_global(argv)
    except ValueError as exc:
        sys.stderr.write("Error: %s\n" % exc)
        return 1
    if show_version and name is None:
        name, rest = "version", []
    if name == "help":  # pouch help [COMMAND]
        if not rest:
            name = None
        else:
            name, rest = rest[0], ["--help"]
    if name is None:
        sys.stdout.write(usage())
        return 0
    if name not in COMMANDS:
        sys.stderr.write('Error: unknown command "%s" for "pouch"\nRun \'pouch --help\' for usage.\n' % name)
        return 1
    from pouch.cli.args import ArgError, HelpRequested
    from pouch.cli.common import CLIError, Context, ExitStatus
    from pouch.client.errors import PouchClientError
    parser, handler = build_parser(name)
    try:
        args = parser.parse_args(rest)
    except HelpRequested as exc:
        sys.stdout.write(exc.text)
        return 0
    except ArgError as exc:
        sys.stderr.write("Error: %s\n" % exc)
        return exc.code
    ctx = Context(host, debug, tls)
    try:
        status = handler(ctx, args)
    except ExitStatus as exc:
        return exc.code
    except (CLIError, PouchClientError) as exc:
        if debug:
            import traceback
            traceback.print_exc()
        sys.stderr.write("Error: %s\n" % (str(exc).strip().splitlines() or [""])[0])
        return getattr(exc, "code", 1) if isinstance(exc, CLIError) else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    finally:
        sys.stdout.flush()
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
