"""Reconciliation (pouch/daemon/mgr/reconcile.py): after containerd or pouchd is SIGKILLed in the
middle of 20 parallel `run -d`, what pouch shows matches containerd, the network and cgroups, and
after `rm -f` of everything nothing is left (no IP, netns, veth, cgroup dir, shim)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time

import pytest

from tests.daemon.conftest import wait_for

pytestmark = pytest.mark.integration


def violations(d, ids=(), wait: float = 30) -> list[dict]:
    """The daemon's consistency check (retried while its containerd is coming back)."""
    deadline = time.monotonic() + wait
    while True:
        status, body = d.api("GET", "/system/consistency" + (f"?ids={','.join(ids)}" if ids else ""), timeout=60)
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 200, body
    return body["Violations"]


def _parallel_runs(d, n: int, names: list[str]) -> list:
    results: list = [None] * n

    def one(i):
        try:
            results[i] = d.cli("run", "-d", "--name", names[i], "busybox", "sleep", "600", timeout=90)
        except Exception as e:  # noqa: BLE001 - a CLI stuck past its timeout is a finding
            results[i] = e
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    return threads


def _all_ids(d) -> list[str]:
    return d.cli("ps", "-aq", "--no-trunc").stdout.split()


def _shown(d) -> list[dict]:
    ids = _all_ids(d)
    if not ids:
        return []
    import json
    r = d.cli("inspect", *ids)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _assert_consistent_then_clean(d):
    deadline = time.monotonic() + 40
    while True:
        found = violations(d)
        if not found or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert found == [], found
    shown = _shown(d)
    for c in shown:
        if c["State"]["Running"]:
            assert c["NetworkSettings"]["IPAddress"], c["Name"]
    netns_dir = os.path.join(d.run_dir, "netns")
    netns = len(os.listdir(netns_dir)) if os.path.isdir(netns_dir) else 0
    brif = f"/sys/class/net/{d.bridge}/brif"
    veths = len(os.listdir(brif)) if os.path.isdir(brif) else 0
    running = sum(1 for c in shown if c["State"]["Running"])
    assert netns == veths == running, (netns, veths, running, os.listdir(netns_dir) if netns else [],
                                       [(c["Id"][:12], c["State"]["Status"], c["NetworkSettings"].get("SandboxKey"))
                                        for c in shown], d.log()[-3000:])
    ids = [c["Id"] for c in shown]
    if ids:
        r = d.cli("rm", "-f", *ids, timeout=180)
        assert r.returncode == 0, r.stderr
    assert _all_ids(d) == []
    deadline = time.monotonic() + 20
    while True:
        found = violations(d, ids)
        if not found or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert found == [], found
    ipam = os.path.join(d.home, "network", "ipam")
    leftover_ips = [f for _, _, fs in os.walk(ipam) for f in fs if f[0].isdigit()] if os.path.isdir(ipam) else []
    assert leftover_ips == []


def test_consistency_check_is_clean_on_a_healthy_daemon(pouchd, box):
    box.run_d("busybox", "sleep", "300")
    box.track(pouchd.cli("create", "busybox", "true").stdout)
    mine = {c["Id"] for c in _shown(pouchd)}
    assert [v for v in violations(pouchd) if v["subject"] in mine or v["kind"] == "network"] == []


def test_run_rm_is_gone_at_once_and_its_containerd_objects_follow(pouchd, box):
    """`run --rm` returns once the container is gone for the user (its name is free at once);
    containerd's container and snapshot, deleted right after the answer, leave no orphan."""
    n = box.name()
    ids = []
    for _ in range(2):
        r = pouchd.cli("run", "--rm", "--name", n, "busybox", "cat", "/proc/self/cgroup")
        assert r.returncode == 0, r.stderr
        ids.append(re.findall(r"[0-9a-f]{64}", r.stdout)[-1])
    assert ids[0] != ids[1]
    assert pouchd.cli("inspect", n).returncode != 0
    sock = os.path.join(pouchd.run_dir, "containerd", "containerd.sock")

    def containerd_has() -> list[str]:
        out = "".join(subprocess.run(["ctr", "-a", sock, "-n", "default", what, "ls"], capture_output=True,
                                     text=True, check=False).stdout for what in ("containers", "snapshots"))
        return [i for i in ids if i in out]
    wait_for(lambda: containerd_has() == [], timeout=15, what="containerd objects of run --rm")
    assert [v for v in violations(pouchd, ids) if v["subject"] in ids] == []


def test_containerd_sigkilled_during_parallel_runs(fresh_pouchd):
    d = fresh_pouchd
    names = [f"rc{i}" for i in range(20)]
    threads = _parallel_runs(d, 20, names)
    time.sleep(1)
    with open(os.path.join(d.run_dir, "containerd", "containerd.pid")) as f:
        pid = int(f.read())
    os.kill(pid, signal.SIGKILL)  # this daemon's own containerd
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a run -d never answered"
    _assert_consistent_then_clean(d)


def test_pouchd_sigkilled_during_parallel_runs(fresh_pouchd):
    d = fresh_pouchd
    names = [f"rp{i}" for i in range(20)]
    threads = _parallel_runs(d, 20, names)
    time.sleep(1)
    d.kill9()
    for t in threads:
        t.join(120)
    d.start()
    _assert_consistent_then_clean(d)
    # and after one more clean restart, still nothing to find
    d.stop()
    d.start()
    assert violations(d) == []
