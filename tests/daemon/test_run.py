"""`pouch run`: every flag of the issue's run bullet, checked the way a user would."""
from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time

import pytest

from tests.daemon.conftest import inspect, status, wait_for
from tests.fixtures.daemon import POUCH

pytestmark = pytest.mark.integration


def run_in_pty(d, *args: str, timeout: float = 20.0,
               feed: bytes | list[bytes] | None = None, feed_after: float = 1.0) -> tuple[int, bytes]:
    """Run `pouch ARGS` with a real terminal on stdin/stdout/stderr; return (rc, output).

    ``feed`` (one chunk or a list) is typed in, one chunk every ``feed_after`` seconds.
    """
    chunks = [feed] if isinstance(feed, bytes) else list(feed or [])
    master, slave = pty.openpty()
    env = dict(os.environ, POUCH_HOST=d.host)
    p = subprocess.Popen([POUCH, *args], stdin=slave, stdout=slave, stderr=slave, env=env,
                         start_new_session=True, close_fds=True)
    os.close(slave)
    out = b""
    start = time.monotonic()
    deadline = start + timeout
    fed = 0
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.1)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            if chunks and time.monotonic() > start + feed_after * (fed + 1):
                os.write(master, chunks.pop(0))
                fed += 1
            if p.poll() is not None and not r:
                break
        rc = p.wait(timeout=max(0.1, deadline - time.monotonic()))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    return rc, out


def test_exit_code_propagates(pouchd):
    r = pouchd.cli("run", "--rm", "busybox", "sh", "-c", "exit 3")
    assert r.returncode == 3


def test_stdout_and_stderr_are_separate(pouchd):
    r = pouchd.cli("run", "--rm", "busybox", "sh", "-c", "echo to-out; echo to-err >&2")
    assert r.returncode == 0
    assert r.stdout == "to-out\n"
    assert r.stderr == "to-err\n"


def test_env_and_env_file(pouchd, tmp_path):
    env_file = tmp_path / "vars.env"
    env_file.write_text("# comment\nFROM_FILE=file-value\nOVERRIDE=file\n")
    r = pouchd.cli("run", "--rm", "--env-file", str(env_file), "-e", "OVERRIDE=flag", "-e", "A=1",
                   "busybox", "env")
    assert r.returncode == 0, r.stderr
    env = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    assert env["FROM_FILE"] == "file-value"
    assert env["OVERRIDE"] == "flag"
    assert env["A"] == "1"
    assert "/bin" in env["PATH"]  # image env kept


def test_workdir(pouchd):
    r = pouchd.cli("run", "--rm", "-w", "/tmp/new/dir", "busybox", "pwd")
    assert (r.returncode, r.stdout) == (0, "/tmp/new/dir\n"), r.stderr


@pytest.mark.parametrize("user,expect", [("1000", "uid=1000(www)"), ("www", "uid=1000(www) gid=1000(www)"),
                                         ("4242:4343", "uid=4242 gid=4343")])
def test_user(pouchd, user, expect):
    r = pouchd.cli("run", "--rm", "-u", user, "busybox", "id")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(expect), r.stdout


def test_entrypoint(pouchd):
    r = pouchd.cli("run", "--rm", "--entrypoint", "echo", "busybox", "from", "entrypoint")
    assert (r.returncode, r.stdout) == (0, "from entrypoint\n"), r.stderr


def test_labels_visible_in_inspect(pouchd, box):
    n = box.name()
    r = pouchd.cli("create", "--name", n, "-l", "team=core", "-l", "tier=db", "busybox", "true")
    assert r.returncode == 0, r.stderr
    labels = inspect(pouchd, n)["Config"]["Labels"]
    assert labels["team"] == "core" and labels["tier"] == "db"
    r = pouchd.cli("ps", "-a", "--filter", "label=team=core", "-q")
    assert r.stdout.split() and all(inspect(pouchd, i)["Name"].lstrip("/") == n for i in r.stdout.split())


def test_hostname(pouchd):
    r = pouchd.cli("run", "--rm", "--hostname", "myhost.test", "busybox", "hostname")
    assert (r.returncode, r.stdout) == (0, "myhost.test\n"), r.stderr


def test_name_and_rm_leave_nothing(pouchd, box):
    n = box.name()
    r = pouchd.cli("run", "--rm", "--name", n, "busybox", "true")
    assert r.returncode == 0, r.stderr
    r = pouchd.cli("ps", "-a", "--format", "{{.Names}}")
    assert n not in r.stdout.split()
    assert pouchd.cli("inspect", n).returncode != 0


def test_named_container_found_by_name(pouchd, box):
    n = box.run_d("busybox", "sleep", "60")
    assert inspect(pouchd, n)["Name"].lstrip("/") == n
    assert status(pouchd, n) == "running"


def test_detach_prints_id(pouchd, box):
    n = box.name()
    r = pouchd.cli("run", "-d", "--name", n, "busybox", "sleep", "60")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert len(cid) == 64 and all(c in "0123456789abcdef" for c in cid)
    assert inspect(pouchd, n)["Id"] == cid


def test_interactive_stdin_pipe(pouchd):
    r = pouchd.cli("run", "-i", "--rm", "busybox", "cat", input="hi\nthere\n")
    assert (r.returncode, r.stdout) == (0, "hi\nthere\n"), r.stderr


def test_interactive_stdin_eof_ends_container(pouchd):
    r = pouchd.cli("run", "-i", "--rm", "busybox", "wc", "-l", input="a\nb\nc\n", timeout=20)
    assert (r.returncode, r.stdout.strip()) == (0, "3"), r.stderr


def test_tty(pouchd):
    rc, out = run_in_pty(pouchd, "run", "-t", "--rm", "busybox", "tty")
    assert rc == 0, out
    assert b"/dev/pts/0" in out


def test_tty_interactive_and_exit_code(pouchd):
    rc, out = run_in_pty(pouchd, "run", "-it", "--rm", "busybox", "sh", "-c",
                         "read x; echo got-$x; exit 5", feed=b"abc\r")
    assert rc == 5, out
    assert b"got-abc" in out


def test_init_is_pid1(pouchd):
    r = pouchd.cli("run", "--rm", "--init", "busybox", "cat", "/proc/1/cmdline")
    if r.returncode != 0 and "tini" in r.stderr:
        pytest.skip("tini-static not installed: " + r.stderr)
    assert r.returncode == 0, r.stderr
    pid1 = r.stdout.split("\0")[0]
    assert pid1.endswith("docker-init") or "tini" in pid1, pid1
    # without --init the command itself is PID 1
    r = pouchd.cli("run", "--rm", "busybox", "cat", "/proc/1/cmdline")
    assert r.stdout.split("\0")[0] == "cat"


def test_stop_signal_and_timeout(pouchd, box):
    n = box.run_d("--stop-signal", "SIGUSR1", "--stop-timeout", "1", "busybox", "sh", "-c",
                  "trap 'echo got-usr1; exit 7' USR1; echo ready; while true; do sleep 0.1; done")
    wait_for(lambda: "ready" in pouchd.cli("logs", n).stdout, what="container ready")
    cfg = inspect(pouchd, n)["Config"]
    assert cfg["StopSignal"] in ("SIGUSR1", "USR1", "10")
    assert cfg["StopTimeout"] == 1
    t = time.monotonic()
    assert pouchd.cli("stop", n).returncode == 0
    assert time.monotonic() - t < 5
    assert "got-usr1" in pouchd.cli("logs", n).stdout
    assert inspect(pouchd, n)["State"]["ExitCode"] == 7


def test_stop_timeout_escalates_to_kill(pouchd, box):
    n = box.run_d("--stop-timeout", "1", "busybox", "sh", "-c",
                  "trap '' TERM; echo ready; while true; do sleep 0.1; done")
    wait_for(lambda: "ready" in pouchd.cli("logs", n).stdout, what="container ready")
    t = time.monotonic()
    assert pouchd.cli("stop", n).returncode == 0
    took = time.monotonic() - t
    assert 0.8 < took < 6, took
    st = inspect(pouchd, n)["State"]
    assert st["Status"] == "stopped" and st["ExitCode"] == 137


def test_restart_on_failure_max_retries(pouchd, box):
    n = box.run_d("--restart", "on-failure:2", "busybox", "sh", "-c", "exit 1")

    def done():
        st = inspect(pouchd, n)
        return st if st["State"]["Status"] == "stopped" and st["RestartCount"] == 2 else None
    st = wait_for(done, timeout=30, what="two restarts then exited")
    time.sleep(1.5)  # no third restart
    st = inspect(pouchd, n)
    assert st["RestartCount"] == 2
    assert st["State"]["Status"] == "stopped" and st["State"]["ExitCode"] == 1
    assert st["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}


def test_restart_always_after_host_kill(pouchd, box):
    n = box.run_d("--restart", "always", "busybox", "sleep", "1000")
    pid = inspect(pouchd, n)["State"]["Pid"]
    assert pid > 0 and os.path.exists(f"/proc/{pid}")
    os.kill(pid, signal.SIGKILL)

    def back():
        st = inspect(pouchd, n)
        return st if st["State"]["Status"] == "running" and st["State"]["Pid"] not in (0, pid) else None
    st = wait_for(back, timeout=20, what="container restarted")
    assert st["RestartCount"] >= 1
    # a user stop is honoured: it does not come back
    assert pouchd.cli("stop", "-t", "1", n).returncode == 0
    time.sleep(1)
    assert status(pouchd, n) == "stopped"


def test_restart_no_by_default(pouchd, box):
    n = box.run_d("busybox", "sh", "-c", "exit 2")
    wait_for(lambda: status(pouchd, n) == "stopped", what="stopped")
    time.sleep(0.5)
    st = inspect(pouchd, n)
    assert st["RestartCount"] == 0 and st["State"]["ExitCode"] == 2


def test_bind_mount(pouchd, tmp_path):
    (tmp_path / "in.txt").write_text("from-host\n")
    r = pouchd.cli("run", "--rm", "-v", f"{tmp_path}:/data", "busybox", "sh", "-c",
                   "cat /data/in.txt; echo from-container > /data/out.txt")
    assert (r.returncode, r.stdout) == (0, "from-host\n"), r.stderr
    assert (tmp_path / "out.txt").read_text() == "from-container\n"
