"""Concurrent mutations of one container serialize on its lock: no orphan, no stuck state.

Each race runs ROUNDS times against the session daemon, the two requests sent at once from two
threads; afterwards neither containerd (containers, tasks, snapshots) nor pouchd (meta, names,
container directories) keeps anything of the containers the rounds made.
"""
from __future__ import annotations

import os
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.integration

ROUNDS = int(os.environ.get("POUCH_RACE_ROUNDS", "50"))
SLEEPER = {"Image": "busybox", "Cmd": ["sleep", "1000"], "StopSignal": "SIGKILL",
           "HostConfig": {"NetworkMode": "none"}}


def _ctr(d, *args) -> str:
    sock = os.path.join(d.run_dir, "containerd", "containerd.sock")
    r = subprocess.run(["ctr", "-a", sock, "-n", "default", *args], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("ctr could not talk to pouchd's containerd: " + r.stderr)
    return r.stdout


def _create(d, name: str) -> str:
    status, body = d.api("POST", f"/containers/create?name={name}", SLEEPER)
    assert status == 201, body
    return body["Id"]


def _both(pool, a, b):
    fa, fb = pool.submit(*a), pool.submit(*b)
    return fa.result(), fb.result()


def _assert_nothing_left(d, ids: list[str], names: list[str]) -> None:
    status, listed = d.api("GET", "/containers/json?all=1")
    assert status == 200
    left = {c["Id"] for c in listed} & set(ids)
    assert not left, f"meta keeps {len(left)} removed containers"
    ctr_state = _ctr(d, "containers", "ls", "-q") + _ctr(d, "tasks", "ls") + _ctr(d, "snapshots", "ls")
    orphans = [i for i in ids if i in ctr_state]
    assert not orphans, f"containerd keeps {len(orphans)} of them, e.g. {orphans[0]}"
    dirs = [i for i in ids if os.path.exists(os.path.join(d.home, "containers", i))]
    assert not dirs, f"{len(dirs)} container directories left"
    for n in names:  # no stale name entry: each name is free again
        status, body = d.api("GET", f"/containers/{n}/json")
        assert status == 404, (n, body)


def test_start_races_rm_force(pouchd):
    d, tag = pouchd, uuid.uuid4().hex[:6]
    ids, names = [], []
    with ThreadPoolExecutor(2) as pool:
        for i in range(ROUNDS):
            name = f"race-s{tag}-{i}"
            cid = _create(d, name)
            ids.append(cid)
            names.append(name)
            (st, _), (rm, body) = _both(pool, (d.api, "POST", f"/containers/{cid}/start"),
                                        (d.api, "DELETE", f"/containers/{cid}?force=1"))
            assert rm == 204, body  # rm -f always wins in the end
            assert st in (204, 404, 409), st  # start ran first, or found the container gone
    _assert_nothing_left(d, ids, names)


def test_stop_races_update(pouchd):
    d, tag = pouchd, uuid.uuid4().hex[:6]
    ids, names = [], []
    try:
        with ThreadPoolExecutor(2) as pool:
            for i in range(ROUNDS):
                name = f"race-u{tag}-{i}"
                cid = _create(d, name)
                ids.append(cid)
                names.append(name)
                assert d.api("POST", f"/containers/{cid}/start")[0] == 204
                (st, _), (up, body) = _both(pool, (d.api, "POST", f"/containers/{cid}/stop?t=5"),
                                            (d.api, "POST", f"/containers/{cid}/update",
                                             {"CpuShares": 512 + i}))
                assert st == 204 and up == 200, (st, up, body)
                status, info = d.api("GET", f"/v1.41/containers/{cid}/json")  # the Moby face: exited
                assert info["State"]["Status"] == "exited" and not info["State"]["Running"], info["State"]
                assert info["HostConfig"]["CpuShares"] == 512 + i
                assert d.api("DELETE", f"/containers/{cid}?force=1")[0] == 204
    finally:
        for cid in ids:
            d.api("DELETE", f"/containers/{cid}?force=1")
    _assert_nothing_left(d, ids, names)


def test_rename_races_rm(pouchd):
    d, tag = pouchd, uuid.uuid4().hex[:6]
    ids, names = [], []
    with ThreadPoolExecutor(2) as pool:
        for i in range(ROUNDS):
            old, new = f"race-r{tag}-{i}", f"race-n{tag}-{i}"
            cid = _create(d, old)
            ids.append(cid)
            names += [old, new]
            (rn, _), (rm, body) = _both(pool, (d.api, "POST", f"/containers/{cid}/rename?name={new}"),
                                        (d.api, "DELETE", f"/containers/{cid}?force=1"))
            assert rm == 204, body
            assert rn in (204, 404), rn
    _assert_nothing_left(d, ids, names)
