"""pouch.cli.args: the argparse subset the CLI declares, parsed the way argparse/pflag users expect."""
import pytest

from pouch.cli.args import REMAINDER, ArgError, ArgumentParser, HelpRequested


def run_parser():
    p = ArgumentParser(prog="pouch run", description="Create a new container and start it")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--init", action="store_true", default=None)
    p.add_argument("--name")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("-v", "--volume", action="append", default=[])
    p.add_argument("--stop-timeout", type=int)
    p.add_argument("--cpus", type=float)
    p.add_argument("--memory-swap")
    p.add_argument("--enableLxcfs", "--enable-lxcfs", dest="enable_lxcfs", action="store_true", default=None)
    p.add_argument("image")
    p.add_argument("command", nargs=REMAINDER)
    return p


def test_defaults_and_dests():
    a = run_parser().parse_args(["busybox"])
    assert (a.interactive, a.tty, a.init, a.enable_lxcfs, a.name, a.env, a.stop_timeout) == \
        (False, False, None, None, None, [], None)
    assert a.image == "busybox" and a.command == []


def test_combined_short_flags_values_and_forms():
    a = run_parser().parse_args(["-itd", "-eA=1", "-e", "B=2", "--env=C=3", "-v=/a:/b", "--name=web",
                                 "--stop-timeout", "5", "--cpus=1.5", "--memory-swap", "-1", "--enable-lxcfs",
                                 "busybox"])
    assert a.interactive and a.tty and a.detach and a.enable_lxcfs is True
    assert a.env == ["A=1", "B=2", "C=3"] and a.volume == ["/a:/b"] and a.name == "web"
    assert a.stop_timeout == 5 and a.cpus == 1.5 and a.memory_swap == "-1"
    # -iv takes the rest of the word as -v's value
    assert run_parser().parse_args(["-iv/x:/y", "busybox"]).volume == ["/x:/y"]


def test_remainder_keeps_flags_after_the_image():
    a = run_parser().parse_args(["-t", "busybox", "sh", "-c", "ls -l", "--name", "x", "-i"])
    assert a.image == "busybox" and a.command == ["sh", "-c", "ls -l", "--name", "x", "-i"]
    assert a.tty and not a.interactive and a.name is None
    assert run_parser().parse_args(["busybox", "--", "ls"]).command == ["ls"]
    assert run_parser().parse_args(["busybox", "ls", "--", "x"]).command == ["ls", "--", "x"]
    assert run_parser().parse_args(["--", "-weird-image", "ls"]).image == "-weird-image"


def test_append_default_is_not_shared_between_parses():
    p = run_parser()
    p.parse_args(["-e", "A=1", "busybox"])
    assert p.parse_args(["busybox"]).env == []


def test_positional_nargs():
    p = ArgumentParser(prog="pouch x")
    p.add_argument("first")
    p.add_argument("maybe", nargs="?")
    p.add_argument("-f", "--force", action="store_true")
    assert vars(p.parse_args(["a"])) == {"force": False, "first": "a", "maybe": None}
    assert vars(p.parse_args(["a", "-f", "b"])) == {"force": True, "first": "a", "maybe": "b"}
    q = ArgumentParser(prog="pouch rm")
    q.add_argument("names", nargs="+", metavar="CONTAINER")
    q.add_argument("-f", "--force", action="store_true")
    assert q.parse_args(["a", "b", "-f", "c"]).names == ["a", "b", "c"]
    with pytest.raises(ArgError, match="missing argument: CONTAINER"):
        q.parse_args(["-f"])
    s = ArgumentParser(prog="pouch top")
    s.add_argument("container")
    s.add_argument("ps_args", nargs="*")
    assert s.parse_args(["c"]).ps_args == [] and s.parse_args(["c", "aux", "x"]).ps_args == ["aux", "x"]


def test_errors_are_one_line_naming_the_problem():
    p = run_parser()
    cases = {("--bogus", "b"): "unknown flag: --bogus", ("-ix", "b"): "unknown shorthand flag: 'x' in -ix",
             ("--name",): "flag needs an argument: --name", ("--stop-timeout", "soon", "b"): "want an integer",
             (): "missing argument: IMAGE"}
    for argv, text in cases.items():
        with pytest.raises(ArgError) as info:
            p.parse_args(list(argv))
        msg = str(info.value)
        assert text in msg and "\n" not in msg and msg.endswith("(see 'pouch run --help')"), msg
        assert info.value.code == 2
    c = ArgumentParser(prog="pouch inspect")
    c.add_argument("-t", "--type", choices=("container", "image"))
    c.add_argument("--limit", required=True, type=int)
    with pytest.raises(ArgError, match="choose from container, image"):
        c.parse_args(["-t", "box", "--limit", "1"])
    with pytest.raises(ArgError, match="required flag not set: --limit"):
        c.parse_args([])
    with pytest.raises(ArgError, match="unexpected argument: extra"):
        c.parse_args(["--limit", "1", "extra"])


def test_subcommands_with_aliases():
    p = ArgumentParser(prog="pouch volume")
    sub = p.add_subparsers(dest="sub", metavar="COMMAND")
    sub.required = True
    c = sub.add_parser("create")
    c.add_argument("-d", "--driver", default="local")
    c.add_argument("name", nargs="?")
    ls = sub.add_parser("ls", aliases=["list"])
    ls.add_argument("-q", "--quiet", action="store_true")
    a = p.parse_args(["create", "-d", "x", "vol"])
    assert (a.sub, a.driver, a.name) == ("create", "x", "vol")
    a = p.parse_args(["list", "-q"])
    assert a.sub == "list" and a.quiet is True and not hasattr(a, "driver")
    with pytest.raises(ArgError, match="requires a COMMAND"):
        p.parse_args([])
    with pytest.raises(ArgError, match=r"see 'pouch volume ls --help'"):
        p.parse_args(["ls", "--nope"])


def test_help_text():
    with pytest.raises(HelpRequested) as info:
        run_parser().parse_args(["-it", "--help"])
    text = info.value.text
    assert text.startswith("Usage: pouch run [OPTIONS] IMAGE [COMMAND] [ARG...]\n")
    assert "Create a new container and start it" in text
    assert "  -e, --env string" in text and "--stop-timeout int" in text and "-h, --help" in text
    # --help after the image belongs to the container's command
    assert run_parser().parse_args(["busybox", "--help"]).command == ["--help"]
