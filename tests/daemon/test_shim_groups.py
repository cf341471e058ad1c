"""Shim groups (pouch/daemon/mgr/shimgroup.py): containers share one runc v2 shim process, and
sharing it changes nothing a user does to one of them.

One pouchd with ``--shim-group-size 3`` for the module: three containers share one shim (counted
in /proc), a fourth gets another; stop / rm of one leave the others running on the same shim; the
shim exits once its last container is removed; a pouchd SIGKILL + restart adopts the group; a
SIGKILLed group shim is noticed for every container of its group.
"""
from __future__ import annotations

import os
import signal

import pytest

from pouch.daemon import config as daemon_config
from tests.conftest import busybox_daemon
from tests.daemon.conftest import Box, inspect, status, wait_for
from tests.daemon.test_reconcile import violations

pytestmark = pytest.mark.integration

GROUP = 3


@pytest.fixture(scope="module")
def gd():
    yield from busybox_daemon(extra_args=["--shim-group-size", str(GROUP)])


@pytest.fixture
def box(gd):
    b = Box(gd)
    yield b
    b.cleanup()
    wait_for(lambda: not shims(gd), timeout=20, what="no shim of the test daemon left")


def shims(d) -> set[int]:
    """Pids of the shim processes of ``d``'s containerd."""
    sock = os.path.join(d.run_dir, "containerd", "containerd.sock").encode()
    out = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if args and b"containerd-shim" in args[0] and sock in args:
            out.add(int(pid))
    return out


def parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def shim_of(d, name: str) -> int:
    """The shim serving a running container: its main process's parent."""
    return parent(inspect(d, name)["State"]["Pid"])


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def run_group(b: Box, n: int = GROUP) -> list[str]:
    return [b.run_d("busybox", "sleep", "600") for _ in range(n)]


def test_group_shares_one_shim_and_a_full_group_opens_another(gd, box):
    names = run_group(box)
    owners = {shim_of(gd, n) for n in names}
    assert len(owners) == 1, owners
    assert shims(gd) == owners
    fourth = box.run_d("busybox", "sleep", "600")
    assert shim_of(gd, fourth) not in owners
    assert len(shims(gd)) == 2


def test_stop_and_rm_of_one_leave_the_others_and_the_last_rm_ends_the_shim(gd, box):
    first, second, third = run_group(box)
    shim = shim_of(gd, first)
    # the first container's task started the shim (the shim is named after it): stop it
    assert gd.cli("stop", "-t", "1", first).returncode == 0
    assert status(gd, first) == "stopped"
    assert [status(gd, n) for n in (second, third)] == ["running", "running"]
    assert shim_of(gd, second) == shim and alive(shim)
    r = gd.cli("exec", second, "echo", "still")
    assert (r.returncode, r.stdout) == (0, "still\n"), r.stderr
    assert gd.cli("rm", "-f", first).returncode == 0
    assert shim_of(gd, third) == shim and alive(shim)
    # the shim now serves no container it is named after: it is no orphan
    assert not [v for v in violations(gd) if v["Kind"] == "orphan-shim"]
    # a member stopped and started again comes back to its group's live shim
    assert gd.cli("kill", second).returncode == 0
    wait_for(lambda: status(gd, second) == "stopped", what="second exited")
    assert shim_of(gd, third) == shim
    assert gd.cli("start", second).returncode == 0
    assert shim_of(gd, second) == shim
    assert gd.cli("rm", "-f", second).returncode == 0
    assert alive(shim) and status(gd, third) == "running"
    assert gd.cli("rm", "-f", third).returncode == 0
    wait_for(lambda: not alive(shim), timeout=10, what="the group's shim to exit after its last container")
    assert not shims(gd)


def test_grouped_container_pause_update_logs(gd, box):
    a, b, _ = [box.run_d("busybox", "sh", "-c", "echo hello; exec sleep 600") for _ in range(GROUP)]
    assert gd.cli("pause", a).returncode == 0
    assert status(gd, a) == "paused" and status(gd, b) == "running"
    r = gd.cli("exec", b, "true")
    assert r.returncode == 0, r.stderr
    assert gd.cli("unpause", a).returncode == 0
    assert status(gd, a) == "running"
    assert gd.cli("update", "--memory", "64m", a).returncode == 0
    assert inspect(gd, a)["HostConfig"]["Memory"] == 64 << 20
    assert gd.cli("logs", b).stdout == "hello\n"
    assert shim_of(gd, a) == shim_of(gd, b)


def test_live_restore_adopts_a_group(gd, box):
    names = run_group(box)
    pids = {n: inspect(gd, n)["State"]["Pid"] for n in names}
    shim = shim_of(gd, names[0])
    gd.kill9()
    gd.start()
    for n in names:
        st = inspect(gd, n)["State"]
        assert (st["Status"], st["Pid"]) == ("running", pids[n])
    assert shims(gd) == {shim}
    assert gd.cli("stop", "-t", "1", names[0]).returncode == 0
    assert [status(gd, n) for n in names[1:]] == ["running", "running"]
    r = gd.cli("exec", names[1], "echo", "adopted")
    assert (r.returncode, r.stdout) == (0, "adopted\n"), r.stderr
    # the restored group is full (a stopped member keeps its place): a new container opens another
    new = box.run_d("busybox", "sleep", "600")
    assert shim_of(gd, new) != shim


def test_killed_group_shim_stops_every_member(gd, box):
    names = run_group(box)
    shim = shim_of(gd, names[0])
    os.kill(shim, signal.SIGKILL)
    for n in names:
        wait_for(lambda n=n: status(gd, n) == "stopped", timeout=30, what=f"{n} exited after its shim died")
    assert not [v for v in violations(gd) if v["Kind"] in ("state", "orphan-task", "orphan-shim")]
    # and they start again (on a new shim)
    assert gd.cli("start", *names).returncode == 0
    assert len({shim_of(gd, n) for n in names}) == 1


def test_runtime_with_own_shim_and_user_group(gd, box):
    # the user's own group annotation wins over pouchd's assignment
    a = box.run_d("--annotation", "io.containerd.runc.v2.group=mine", "busybox", "sleep", "600")
    b = box.run_d("--annotation", "io.containerd.runc.v2.group=mine", "busybox", "sleep", "600")
    c = box.run_d("busybox", "sleep", "600")
    assert shim_of(gd, a) == shim_of(gd, b) != shim_of(gd, c)


def test_shim_group_size_must_be_positive():
    with pytest.raises(daemon_config.ConfigError, match="shim-group-size"):
        daemon_config.load(["--config-file", "", "--shim-group-size", "0"])
