"""Bad input: 404/409/400 with one-line CLI errors, and nothing half-created after a failed create."""
from __future__ import annotations

import os
import subprocess

import pytest

from tests.daemon.conftest import inspect

pytestmark = pytest.mark.integration


def _ctr(d, *args) -> list[str]:
    sock = os.path.join(d.run_dir, "containerd", "containerd.sock")
    r = subprocess.run(["ctr", "-a", sock, "-n", "default", *args], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("ctr could not talk to pouchd's containerd: " + r.stderr)
    return sorted(r.stdout.split())


def _snapshot(d):
    return (sorted(d.cli("ps", "-aq").stdout.split()), _ctr(d, "containers", "ls", "-q"),
            [l for l in _ctr(d, "snapshots", "ls")])


def test_unknown_container_404(pouchd):
    status, body = pouchd.api("GET", "/containers/nope-nope/json")
    assert status == 404 and "nope-nope" in body["message"]
    for args in (("inspect", "nope-nope"), ("start", "nope-nope"), ("stop", "nope-nope"), ("logs", "nope-nope"),
                 ("rm", "nope-nope"), ("kill", "nope-nope"), ("top", "nope-nope"), ("wait", "nope-nope")):
        r = pouchd.cli(*args)
        assert r.returncode == 1, args
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "nope-nope" in lines[0] and "Traceback" not in r.stderr, (args, r.stderr)


def test_unknown_image_404(pouchd):
    status, body = pouchd.api("GET", "/images/nope-image:1/json")
    assert status == 404
    status, body = pouchd.api("POST", "/containers/create", {"Image": "nope-image:1"})
    assert status == 404


def test_name_conflict_409(pouchd, box):
    n = box.name()
    assert pouchd.cli("create", "--name", n, "busybox", "true").returncode == 0
    before = _snapshot(pouchd)
    status, body = pouchd.api("POST", f"/containers/create?name={n}", {"Image": "busybox", "Cmd": ["true"]})
    assert status == 409, body
    r = pouchd.cli("create", "--name", n, "busybox", "true")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert n in r.stderr
    # rename onto a taken name is a conflict too
    other = box.name()
    assert pouchd.cli("create", "--name", other, "busybox", "true").returncode == 0
    status, _ = pouchd.api("POST", f"/containers/{other}/rename?name={n}")
    assert status == 409
    assert _snapshot(pouchd)[0] == sorted(before[0] + [inspect(pouchd, other)["Id"][:len(before[0][0])]]) \
        if before[0] else True


def test_invalid_json_400(pouchd):
    before = _snapshot(pouchd)
    status, body = pouchd.api("POST", "/containers/create", b"{not json")
    assert status == 400 and body["message"]
    status, body = pouchd.api("POST", "/containers/create", b"[1, 2]")
    assert status == 400
    status, body = pouchd.api("POST", "/containers/create", {"Image": "busybox", "HostConfig": {"Memory": "lots"}})
    assert status == 400
    status, body = pouchd.api("POST", "/containers/create", {"Cmd": ["true"]})
    assert status == 400
    assert _snapshot(pouchd) == before


@pytest.mark.parametrize("flags", [["--restart", "bogus"], ["-m", "abc"], ["--restart", "on-failure:x"],
                                   ["--stop-signal", "SIGNOPE"], ["--cpus", "-1"], ["-u", "nosuchuser"],
                                   ["--log-opt", "max-size=huge"]])
def test_invalid_flags_create_nothing(pouchd, box, flags):
    before = _snapshot(pouchd)
    n = box.name()
    r = pouchd.cli("run", "--name", n, *flags, "busybox", "true")
    assert r.returncode != 0, (flags, r.stdout)
    assert r.stderr.strip() and "Traceback" not in r.stderr
    after = _snapshot(pouchd)
    assert after == before, flags


def test_missing_command_binary_creates_nothing_half(pouchd, box):
    n = box.name()
    r = pouchd.cli("run", "--name", n, "busybox", "/no/such/binary")
    assert r.returncode in (126, 127), r
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    # the container exists (as Docker) but is not running and can be removed cleanly
    assert inspect(pouchd, n)["State"]["Status"] in ("created", "stopped")
    before_rm = _snapshot(pouchd)
    assert pouchd.cli("rm", n).returncode == 0
    after = _snapshot(pouchd)
    assert len(after[1]) == len(before_rm[1]) - 1


def test_bad_api_requests(pouchd, box):
    n = box.run_d("busybox", "sleep", "300")
    status, _ = pouchd.api("POST", f"/containers/{n}/kill?signal=NOPE")
    assert status == 400
    status, _ = pouchd.api("POST", f"/containers/{n}/stop?t=abc")
    assert status == 400
    status, _ = pouchd.api("GET", "/containers/json?filters=notjson")
    assert status == 400
    status, _ = pouchd.api("POST", f"/containers/{n}/start")
    assert status == 304
    status, _ = pouchd.api("DELETE", f"/containers/{n}")
    assert status == 409
    status, _ = pouchd.api("GET", "/no/such/route")
    assert status == 404
