"""`pouch exec` and `pouch attach`: output, exit codes, env/workdir/user, stdin, tty,
detach, and detach keys."""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tests.daemon.conftest import status, wait_for
from tests.daemon.test_run import run_in_pty
from tests.fixtures.daemon import POUCH

pytestmark = pytest.mark.integration


@pytest.fixture
def running(pouchd, box):
    return box.run_d("-w", "/tmp", "busybox", "sleep", "600")


def test_exec_output_and_exit_code(pouchd, running):
    r = pouchd.cli("exec", running, "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (r.returncode, r.stdout, r.stderr) == (7, "out\n", "err\n")


def test_exec_env_workdir_user(pouchd, running):
    r = pouchd.cli("exec", "-e", "FOO=bar", "-w", "/etc", "-u", "www", running, "sh", "-c",
                   "echo $FOO; pwd; id -un")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["bar", "/etc", "www"]
    # default: container's workdir and user
    r = pouchd.cli("exec", running, "sh", "-c", "pwd; id -u")
    assert r.stdout.splitlines() == ["/tmp", "0"]


def test_exec_stdin(pouchd, running):
    r = pouchd.cli("exec", "-i", running, "sh", "-c", "tr a-z A-Z", input="hello exec\n")
    assert (r.returncode, r.stdout) == (0, "HELLO EXEC\n"), r.stderr


def test_exec_tty(pouchd, running):
    rc, out = run_in_pty(pouchd, "exec", "-t", running, "sh", "-c", "tty; exit 3")
    assert rc == 3, out
    assert b"/dev/pts/" in out


def test_exec_detach(pouchd, running):
    r = pouchd.cli("exec", "-d", running, "sh", "-c", "sleep 0.3; echo done > /tmp/detached")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""
    wait_for(lambda: pouchd.cli("exec", running, "cat", "/tmp/detached").stdout == "done\n",
             what="detached exec finished")


def test_exec_missing_binary(pouchd, running):
    r = pouchd.cli("exec", running, "no-such-binary")
    assert r.returncode in (126, 127), (r.returncode, r.stderr)
    assert r.stderr.strip()


def test_exec_in_stopped_container_refused(pouchd, box):
    n = box.name()
    pouchd.cli("run", "--name", n, "busybox", "true")
    r = pouchd.cli("exec", n, "echo", "hi")
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "not running" in r.stderr.lower(), r.stderr


def test_exec_unknown_container(pouchd):
    r = pouchd.cli("exec", "no-such-container-xyz", "true")
    assert r.returncode == 1 and "container no-such-container-xyz: not found" in r.stderr  # Pouch's text


def test_attach_sees_new_output(pouchd, box):
    n = box.run_d("busybox", "sh", "-c", "i=0; while true; do i=$((i+1)); echo beat$i; sleep 0.2; done")
    env = dict(os.environ, POUCH_HOST=pouchd.host)
    p = subprocess.Popen([POUCH, "attach", "--no-stdin", n], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                         text=True, env=env)
    try:
        first = p.stdout.readline().strip()
        second = p.stdout.readline().strip()
    finally:
        p.kill()
        p.wait()
    assert first.startswith("beat") and int(second[4:]) == int(first[4:]) + 1
    assert status(pouchd, n) == "running"


def test_attach_output_and_exit_code(pouchd, box):
    n = box.run_d("busybox", "sh", "-c", "sleep 1; echo bye; exit 9")
    r = pouchd.cli("attach", n, timeout=20)
    assert r.stdout == "bye\n"
    assert r.returncode == 9


def test_attach_detach_keys_leave_it_running(pouchd, box):
    n = box.name()
    r = pouchd.cli("run", "-dit", "--name", n, "busybox", "sh")
    assert r.returncode == 0, r.stderr
    rc, out = run_in_pty(pouchd, "attach", n, feed=[b"echo marker-$((6*7))\r", b"\x10\x11"], timeout=15)
    assert rc == 0, out
    assert b"marker-42" in out
    assert status(pouchd, n) == "running"
    # still usable after detaching
    assert pouchd.cli("exec", n, "true").returncode == 0


def test_run_detach_keys(pouchd, box):
    n = box.name()
    rc, out = run_in_pty(pouchd, "run", "-it", "--name", n, "busybox", "sh", feed=b"\x10\x11", timeout=15)
    assert rc == 0, out
    assert status(pouchd, n) == "running"


def test_exec_detach_keys_release_the_client_while_the_process_runs(pouchd, running):
    """ctrl-p ctrl-p ctrl-q detaches an `exec -it` as it does an attach: the client returns at
    once and the exec's shell keeps running (its first ctrl-p went to the shell)."""
    t = time.monotonic()
    rc, out = run_in_pty(pouchd, "exec", "-it", running, "sh", "-c", "echo exec-$((6*7)); exec sleep 300",
                         feed=[b"\x10", b"\x10\x11"], timeout=15)
    assert rc == 0, out
    assert b"exec-42" in out and time.monotonic() - t < 10
    top = pouchd.cli("top", running)
    assert top.returncode == 0 and "sleep 300" in top.stdout, top.stdout


def test_attach_logs_without_stream_sends_the_backlog(pouchd, box):
    n = box.name()
    r = pouchd.cli("run", "--name", n, "busybox", "sh", "-c", "echo one; echo two >&2; echo three")
    assert r.returncode == 0, r.stderr
    st, body = pouchd.api("POST", f"/containers/{n}/attach?logs=1&stream=0&stdout=1&stderr=0")
    assert st == 200
    frames, data = [], body if isinstance(body, bytes) else b""
    while data:  # stdcopy frames: stream id, 3 zero bytes, big-endian length
        size = int.from_bytes(data[4:8], "big")
        frames.append((data[0], data[8:8 + size]))
        data = data[8 + size:]
    assert frames == [(1, b"one\n"), (1, b"three\n")]


def _exec_frames(pouchd, container, cmd, exit_code):
    """exec start through the SDK; -> every (stream, payload) frame until the stream ends."""
    from pouch.client.api import APIClient
    from pouch.client.streams import frames
    client = APIClient(pouchd.host)
    eid = client.exec_create(container, cmd)["Id"]
    with client.exec_start(eid, exit_code=exit_code) as hsock:
        got = list(frames(hsock))
    return client, eid, got


def test_exec_exit_code_trailer_only_when_asked(pouchd, running):
    """X-Pouch-Exit-Code: 1 ends the stream with {"ExitCode": N} on stream 3 (what lets the pouch
    CLI skip the inspect request); a client that does not ask (Docker's CLI) never gets a frame
    it would read as an error."""
    client, eid, got = _exec_frames(pouchd, running, ["sh", "-c", "echo hi; exit 9"], exit_code=True)
    assert got[0] == (1, b"hi\n")
    assert got[-1][0] == 3 and json.loads(got[-1][1]) == {"ExitCode": 9}
    assert client.exec_inspect(eid)["ExitCode"] == 9
    _, _, got = _exec_frames(pouchd, running, ["sh", "-c", "echo hi; exit 9"], exit_code=False)
    assert got == [(1, b"hi\n")]

