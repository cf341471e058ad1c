"""The real `pouch` launcher stays lean: no argparse/re/json/socket/enum on the hot path,
and usage errors / --help still behave like a CLI should."""
import os
import subprocess
import sys

import pytest
from fake_pouchd import Hijack, frame

POUCH = os.path.join(sys.prefix, "bin", "pouch")
PYTHON = os.path.join(sys.prefix, "bin", "python3")
HEAVY = ("argparse", "re", "json", "socket", "enum", "gettext", "selectors", "aiohttp", "prometheus_client")
# ps, version and a non-interactive exec need none of these either: `os` alone is ~5M instructions
# (a sixth of `pouch version`), the rest come with the interactive stream pump
NOT_HOT = ("os", "threading", "signal", "struct", "termios", "grpc", "google")


def _imported(args):
    """Run the launcher the way its shebang does, with -X importtime; return (result, module names)."""
    r = subprocess.run([PYTHON, "-SE", "-X", "importtime", POUCH, *args], capture_output=True, timeout=30)
    names = set()
    for line in r.stderr.decode().splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip())
    assert "pouch.cli.main" in names, r.stderr.decode()[-2000:]
    return r, names


@pytest.mark.parametrize("command", [["ps", "-a"], ["version"], ["exec", "web", "true"]])
def test_hot_commands_skip_heavy_modules(fake, command):
    fake.route("GET", "/containers/json", reply=[
        {"Id": "ab" * 32, "Names": ["/web"], "Image": "busybox", "Status": "Up 1 second", "Created": 1,
         "HostConfig": {"Runtime": "runc"}}])
    fake.route("GET", "/version", reply={"Version": "1.0.0", "APIVersion": "1.41"})
    fake.route("POST", r"/containers/(\w+)/exec", reply={"Id": "ex1"}, status=201)
    fake.route("POST", r"/exec/(\w+)/start", lambda req, eid: (101, Hijack(lambda s: s.sendall(
        frame(1, b"exec output\n") + frame(3, b'{"ExitCode": 0}')))))
    r, names = _imported(["-H", fake.host, *command])
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert {"ps": b"web", "version": b"1.0.0", "exec": b"exec output"}[command[0]] in r.stdout
    assert sorted(names.intersection(HEAVY + NOT_HOT)) == []


def test_create_with_flags_skips_heavy_modules(fake):
    """create sends a JSON body and parses sizes without json/re (re only for -m)."""
    fake.route("POST", "/containers/create", reply={"Id": "c" * 64, "Warnings": []}, status=201)
    r, names = _imported(["-H", fake.host, "create", "-it", "-e", "A=1", "--name", "x", "busybox", "sh", "-c", "true"])
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert fake.requests[0].json["Env"] == ["A=1"]
    assert sorted(names.intersection(HEAVY)) == []


def test_usage_error_is_one_line_with_status_2(fake, pouch):
    for args in (["ps", "--bogus"], ["ps", "-x"], ["rename", "a"], ["stop", "-t", "soon", "a"],
                 ["inspect", "-t", "box", "a"], ["image"], ["volume", "nope"], ["ps", "--format"]):
        r = pouch(*args)
        assert r.returncode == 2, (args, r)
        lines = r.stderr.decode().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), (args, lines)
        assert "'pouch %s --help'" % args[0] in lines[0], lines
    assert fake.requests == []


def test_help_lists_usage_description_and_options(pouch):
    r = pouch("run", "--help")
    out = r.stdout.decode()
    assert r.returncode == 0 and r.stderr == b""
    assert out.startswith("Usage: pouch run [OPTIONS] IMAGE [COMMAND] [ARG...]\n")
    assert "Create a new container and start it" in out
    assert "  -i, --interactive" in out and "-m, --memory string" in out and "--stop-timeout int" in out
    r = pouch("network", "-h")
    assert r.returncode == 0 and b"connect" in r.stdout and b"disconnect" in r.stdout
