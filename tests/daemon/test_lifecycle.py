"""Container lifecycle verbs: create/start/stop/restart/kill/rm, pause, rename, wait, top,
stats, update, events, port, inspect and ps."""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tests.daemon.conftest import inspect, status, wait_for
from tests.fixtures.daemon import POUCH

pytestmark = pytest.mark.integration

SIGTERM_PROOF = "trap '' TERM; echo ready; while true; do sleep 0.1; done"


def _ready(d, n):
    wait_for(lambda: "ready" in d.cli("logs", n).stdout, what=f"{n} ready")


def test_create_start_stop_restart(pouchd, box):
    n = box.name()
    r = pouchd.cli("create", "--name", n, "busybox", "sleep", "300")
    assert r.returncode == 0, r.stderr
    assert status(pouchd, n) == "created"
    assert inspect(pouchd, n)["State"]["Pid"] == 0
    assert pouchd.cli("start", n).returncode == 0
    st = inspect(pouchd, n)["State"]
    assert st["Status"] == "running" and os.path.exists(f"/proc/{st['Pid']}")
    first_pid = st["Pid"]
    assert pouchd.cli("stop", "-t", "2", n).returncode == 0
    st = inspect(pouchd, n)["State"]
    assert st["Status"] == "stopped" and not os.path.exists(f"/proc/{first_pid}/cmdline") \
        or open(f"/proc/{first_pid}/cmdline", "rb").read().split(b"\0")[0] != b"sleep"
    assert pouchd.cli("restart", "-t", "1", n).returncode == 0
    st = inspect(pouchd, n)["State"]
    assert st["Status"] == "running" and st["Pid"] != first_pid
    # restart of a running container gives a new process too
    assert pouchd.cli("restart", "-t", "1", n).returncode == 0
    assert inspect(pouchd, n)["State"]["Pid"] not in (0, st["Pid"])


def test_kill_with_signal(pouchd, box):
    n = box.run_d("busybox", "sh", "-c", "trap 'echo got-hup' HUP; echo ready; while true; do sleep 0.1; done")
    _ready(pouchd, n)
    assert pouchd.cli("kill", "-s", "HUP", n).returncode == 0
    wait_for(lambda: "got-hup" in pouchd.cli("logs", n).stdout, what="HUP trapped")
    assert status(pouchd, n) == "running"
    assert pouchd.cli("kill", n).returncode == 0
    wait_for(lambda: status(pouchd, n) == "stopped", what="killed")
    assert inspect(pouchd, n)["State"]["ExitCode"] == 137


def test_rm_force_is_immediate(pouchd, box):
    n = box.run_d("busybox", "sh", "-c", SIGTERM_PROOF)
    _ready(pouchd, n)
    pid = inspect(pouchd, n)["State"]["Pid"]
    t = time.monotonic()
    r = pouchd.cli("rm", "-f", n)
    took = time.monotonic() - t
    assert r.returncode == 0, r.stderr
    assert took < 2.0, took
    assert pouchd.cli("inspect", n).returncode == 1
    assert not os.path.exists(f"/proc/{pid}/cmdline") or b"sh" not in open(f"/proc/{pid}/cmdline", "rb").read()


def test_rm_running_refused(pouchd, box):
    n = box.run_d("busybox", "sleep", "300")
    r = pouchd.cli("rm", n)
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "running" in r.stderr.lower()
    assert status(pouchd, n) == "running"


def test_rm_stopped_removes_everything(pouchd, box):
    n = box.name()
    cid = pouchd.cli("create", "--name", n, "busybox", "true").stdout.strip()
    assert pouchd.cli("rm", n).returncode == 0
    assert pouchd.cli("inspect", n).returncode == 1
    out = subprocess.run(["ctr", "-a", os.path.join(pouchd.run_dir, "containerd", "containerd.sock"),
                          "-n", "default", "containers", "ls", "-q"], capture_output=True, text=True)
    if out.returncode == 0:
        assert cid not in out.stdout.split()


def _freezer_state(pid: int) -> str | None:
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if "freezer" in ctrls.split(","):
                p = f"/sys/fs/cgroup/freezer{path}/freezer.state"
                return open(p).read().strip() if os.path.exists(p) else None
    return None


def test_pause_unpause_freezes_processes(pouchd, box):
    n = box.run_d("busybox", "sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/c.new; mv /tmp/c.new /tmp/c; sleep 0.05; done")
    pid = inspect(pouchd, n)["State"]["Pid"]
    assert pouchd.cli("pause", n).returncode == 0
    st = inspect(pouchd, n)["State"]
    assert st["Status"] == "paused" and st["Paused"] is True
    fs = _freezer_state(pid)
    if fs is not None:
        assert fs == "FROZEN"
    # the process makes no progress while frozen
    stat1 = open(f"/proc/{pid}/stat").read().split()
    time.sleep(0.4)
    stat2 = open(f"/proc/{pid}/stat").read().split()
    assert stat1[13:15] == stat2[13:15]  # utime/stime unchanged
    assert pouchd.cli("exec", n, "true").returncode != 0  # paused: exec refused
    assert pouchd.cli("unpause", n).returncode == 0
    assert status(pouchd, n) == "running"
    if fs is not None:
        assert _freezer_state(pid) == "THAWED"
    r1 = pouchd.cli("exec", n, "cat", "/tmp/c").stdout
    time.sleep(0.3)
    r2 = pouchd.cli("exec", n, "cat", "/tmp/c").stdout
    assert int(r2) > int(r1)


def test_unpause_not_paused_refused(pouchd, box):
    n = box.run_d("busybox", "sleep", "300")
    r = pouchd.cli("unpause", n)
    assert r.returncode != 0 and "Error" in r.stderr


def test_rename(pouchd, box):
    old = box.run_d("busybox", "sleep", "300")
    new = box.name()
    assert pouchd.cli("rename", old, new).returncode == 0
    assert inspect(pouchd, new)["Name"].lstrip("/") == new
    assert pouchd.cli("inspect", old).returncode == 1
    # the old name is free again
    assert pouchd.cli("create", "--name", old, "busybox", "true").returncode == 0


def test_wait_prints_exit_code(pouchd, box):
    n = box.run_d("busybox", "sh", "-c", "sleep 0.5; exit 42")
    r = pouchd.cli("wait", n, timeout=20)
    assert (r.returncode, r.stdout.strip()) == (0, "42"), r.stderr


def test_top_shows_process(pouchd, box):
    n = box.run_d("busybox", "sleep", "321")
    r = pouchd.cli("top", n)
    assert r.returncode == 0, r.stderr
    assert "PID" in r.stdout.splitlines()[0]
    assert any("sleep 321" in line for line in r.stdout.splitlines()[1:])
    pid = inspect(pouchd, n)["State"]["Pid"]
    assert str(pid) in r.stdout


def test_stats_no_stream(pouchd, box):
    n = box.run_d("busybox", "sh", "-c", "x=$(head -c 2000000 /dev/zero | tr '\\0' a); sleep 300")
    time.sleep(0.5)
    r = pouchd.cli("stats", "--no-stream", n, timeout=20)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and "MEM USAGE" in lines[0]
    usage = lines[1].split()[lines[0].split().index("MEM") if False else 2]
    # "236KiB / 23.54GiB": the usage part must be positive
    assert usage[0].isdigit() and float(usage.rstrip("KMGiB")) > 0, lines[1]
    status_code, body = pouchd.api("GET", f"/containers/{n}/stats?stream=false")
    assert status_code == 200
    assert body["memory_stats"]["usage"] > 0


def test_update_memory_and_restart_policy(pouchd, box):
    n = box.run_d("-m", "64m", "busybox", "sleep", "300")
    assert inspect(pouchd, n)["HostConfig"]["Memory"] == 64 * 1024 * 1024
    r = pouchd.cli("update", "-m", "96m", "--restart", "always", n)
    assert r.returncode == 0, r.stderr
    hc = inspect(pouchd, n)["HostConfig"]
    assert hc["Memory"] == 96 * 1024 * 1024
    assert hc["RestartPolicy"]["Name"] == "always"
    # the kernel limit really changed
    pid = inspect(pouchd, n)["State"]["Pid"]
    for line in open(f"/proc/{pid}/cgroup"):
        _, ctrls, path = line.rstrip("\n").split(":", 2)
        if "memory" in ctrls.split(","):
            lim = f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"
            if os.path.exists(lim):
                assert int(open(lim).read()) == 96 * 1024 * 1024
        elif ctrls == "" and os.path.exists(f"/sys/fs/cgroup{path}/memory.max"):
            assert int(open(f"/sys/fs/cgroup{path}/memory.max").read()) == 96 * 1024 * 1024


def test_events_lifecycle(pouchd, box):
    env = dict(os.environ, POUCH_HOST=pouchd.host)
    since = str(int(time.time()) - 1)
    n = box.name()
    pouchd.cli("run", "--name", n, "busybox", "true")
    pouchd.cli("rm", n)
    r = subprocess.run([POUCH, "events", "--since", since, "--until", str(int(time.time()) + 1),
                        "-f", f"container={n}"], capture_output=True, text=True, env=env, timeout=20)
    assert r.returncode == 0, r.stderr
    actions = [a for a in ("create", "start", "die", "destroy") if any(
        f" {a} " in line or line.split()[2:3] == [a] for line in r.stdout.splitlines())]
    assert actions == ["create", "start", "die", "destroy"], r.stdout


def test_events_stream_live(pouchd, box):
    env = dict(os.environ, POUCH_HOST=pouchd.host)
    n = box.name()
    p = subprocess.Popen([POUCH, "events", "-f", f"container={n}"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        time.sleep(0.5)
        pouchd.cli("run", "--name", n, "busybox", "true")
        lines = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(" die " in l for l in lines):
            lines.append(p.stdout.readline())
        assert any(" start " in l for l in lines) and any(" die " in l for l in lines), lines
    finally:
        p.kill()
        p.wait()


def test_port_without_mappings(pouchd, box):
    n = box.run_d("busybox", "sleep", "300")
    r = pouchd.cli("port", n)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""


def test_inspect_format(pouchd, box):
    n = box.run_d("busybox", "sleep", "300")
    r = pouchd.cli("inspect", "-f", "{{.State.Status}} {{.Name}}", n)
    assert r.stdout.strip() in (f"running /{n}", f"running {n}")
    data = json.loads(pouchd.cli("inspect", n).stdout)
    assert isinstance(data, list) and data[0]["Config"]["Cmd"] == ["sleep", "300"]


def test_ps_flags(pouchd, box):
    running = box.run_d("busybox", "sleep", "300")
    stopped = box.name()
    assert pouchd.cli("run", "--name", stopped, "busybox", "sh", "-c", "exit 4").returncode == 4
    rid = inspect(pouchd, running)["Id"]
    sid = inspect(pouchd, stopped)["Id"]
    ps = pouchd.cli("ps").stdout
    assert running in ps and stopped not in ps
    ps_a = pouchd.cli("ps", "-a").stdout
    assert running in ps_a and stopped in ps_a
    q = pouchd.cli("ps", "-aq").stdout.split()
    assert any(rid.startswith(i) for i in q) and any(sid.startswith(i) for i in q)
    assert all(len(i) in (12, 64) or len(i) >= 6 for i in q)
    exited = pouchd.cli("ps", "-a", "--filter", "status=stopped", "--format", "{{.Names}}").stdout.split()
    assert stopped in exited and running not in exited
    fmt = pouchd.cli("ps", "-a", "--filter", f"name={stopped}", "--format", "{{.ID}}|{{.Status}}").stdout
    assert sid.startswith(fmt.split("|")[0]) and len(fmt.split("|")[0]) >= 6 and "Stopped (4)" in fmt, fmt
