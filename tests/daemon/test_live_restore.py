"""Live restore: pouchd SIGKILLed or containerd killed, containers keep running and a new
pouchd adopts them (state, logs, exec, stop, restart policies)."""
from __future__ import annotations

import os
import signal
import time

import pytest

from tests.daemon.conftest import Box, inspect, status, wait_for

pytestmark = pytest.mark.integration

TICKER = "i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.1; done"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_pouchd_sigkill_live_restore(fresh_pouchd):
    d = fresh_pouchd
    b = Box(d)
    n = b.run_d("busybox", "sh", "-c", TICKER)
    stopped = b.name()
    assert d.cli("run", "--name", stopped, "busybox", "sh", "-c", "exit 6").returncode == 6
    wait_for(lambda: "tick3" in d.cli("logs", n).stdout, what="ticks")
    pid = inspect(d, n)["State"]["Pid"]
    d.kill9()
    time.sleep(0.5)
    assert _alive(pid), "container process died with pouchd"
    d.start()
    st = inspect(d, n)["State"]
    assert st["Status"] == "running" and st["Pid"] == pid
    assert n in d.cli("ps", "--format", "{{.Names}}").stdout.split()
    old = inspect(d, stopped)["State"]
    assert old["Status"] == "stopped" and old["ExitCode"] == 6
    ticks = [int(l[4:]) for l in d.cli("logs", n).stdout.split()]
    # no gap: lines written while pouchd was down are in the log
    assert ticks == list(range(1, len(ticks) + 1)), ticks
    assert len(ticks) >= 6
    r = d.cli("exec", n, "echo", "adopted")
    assert (r.returncode, r.stdout) == (0, "adopted\n"), r.stderr
    t = time.monotonic()
    assert d.cli("stop", "-t", "2", n).returncode == 0
    assert time.monotonic() - t < 5
    st = inspect(d, n)["State"]
    assert st["Status"] == "stopped" and not _alive(pid)
    # and wait/exit code are tracked for the adopted process
    assert st["ExitCode"] in (137, 143)
    b.cleanup()


def test_adopted_container_exit_is_noticed(fresh_pouchd, tmp_path):
    d = fresh_pouchd
    b = Box(d)
    # the container exits when the test says so (a file in a bind mount), not after a fixed
    # delay that a slow restart on a loaded machine could outlast
    n = b.run_d("-v", f"{tmp_path}:/t", "busybox", "sh", "-c",
                "while [ ! -e /t/go ]; do sleep 0.05; done; exit 11")
    d.kill9()
    d.start()
    assert status(d, n) == "running"
    (tmp_path / "go").touch()
    r = d.cli("wait", n, timeout=20)
    assert r.stdout.strip() == "11"
    assert inspect(d, n)["State"]["ExitCode"] == 11
    b.cleanup()


def test_container_exit_while_pouchd_down(fresh_pouchd):
    d = fresh_pouchd
    b = Box(d)
    n = b.run_d("busybox", "sh", "-c", "sleep 0.5; echo last-words; exit 12")
    d.kill9()
    time.sleep(1.5)
    d.start()
    wait_for(lambda: status(d, n) == "stopped", timeout=10, what="exit noticed after restart")
    assert inspect(d, n)["State"]["ExitCode"] == 12
    # (output written in the last moments is lost with the FIFO once the shim closes it:
    # no process holds the pipe, as with Docker)
    b.cleanup()


def test_restart_always_after_daemon_restart(fresh_pouchd):
    d = fresh_pouchd
    b = Box(d)
    n = b.run_d("--restart", "always", "busybox", "sleep", "1000")
    pid = inspect(d, n)["State"]["Pid"]
    d.kill9()
    os.kill(pid, signal.SIGKILL)  # the container dies while pouchd is away
    time.sleep(0.5)
    d.start()

    def back():
        st = inspect(d, n)["State"]
        return st["Status"] == "running" and st["Pid"] not in (0, pid)
    wait_for(back, timeout=20, what="always container restarted by the new pouchd")
    b.cleanup()


def test_graceful_restart_keeps_containers(fresh_pouchd):
    d = fresh_pouchd
    b = Box(d)
    n = b.run_d("busybox", "sleep", "1000")
    pid = inspect(d, n)["State"]["Pid"]
    d.stop()
    assert _alive(pid)
    d.start()
    st = inspect(d, n)["State"]
    assert st["Status"] == "running" and st["Pid"] == pid
    assert d.cli("exec", n, "true").returncode == 0
    b.cleanup()


def test_containerd_killed_is_restarted(fresh_pouchd):
    d = fresh_pouchd
    b = Box(d)
    n = b.run_d("busybox", "sh", "-c", TICKER)
    pid = inspect(d, n)["State"]["Pid"]
    pid_file = os.path.join(d.run_dir, "containerd", "containerd.pid")
    ctrd_pid = int(open(pid_file).read())
    os.kill(ctrd_pid, signal.SIGKILL)

    def new_containerd():
        try:
            p = int(open(pid_file).read())
        except (OSError, ValueError):
            return None
        return p if p != ctrd_pid and _alive(p) else None
    wait_for(new_containerd, timeout=20, what="containerd restarted")
    assert _alive(pid)
    # containers keep working through the new containerd
    r = wait_for(lambda: (lambda r: r if r.returncode == 0 else None)(d.cli("exec", n, "echo", "still-here")),
                 timeout=15, what="exec after containerd restart")
    assert r.stdout == "still-here\n"
    count = len(d.cli("logs", n).stdout.split())
    wait_for(lambda: len(d.cli("logs", n).stdout.split()) > count + 2, what="logs flowing")
    r = d.cli("run", "--rm", "busybox", "echo", "fresh")
    assert (r.returncode, r.stdout) == (0, "fresh\n"), r.stderr
    assert d.cli("stop", "-t", "1", n).returncode == 0
    assert status(d, n) == "stopped" and not _alive(pid)
    b.cleanup()
