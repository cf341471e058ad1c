"""Checkpoint and restore (`pouch checkpoint create|ls|rm`, `start --checkpoint`) through CRIU.
Where `criu check` fails (this machine's kernel: vdso), every call answers 501 naming CRIU's
report and changes nothing; the round trip itself needs a working CRIU and skips without it."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.daemon.conftest import inspect

pytestmark = pytest.mark.integration


def _criu() -> tuple[bool, str]:
    exe = shutil.which("criu") or "/usr/sbin/criu"
    if not os.path.exists(exe):
        return False, "criu is not installed"
    r = subprocess.run([exe, "check"], capture_output=True, text=True)
    text = (r.stdout + r.stderr).strip()
    return r.returncode == 0 and "Error" not in text, text


def test_checkpoint_calls_answer_criu_report_when_criu_does_not_work(pouchd, box):
    ok, report = _criu()
    if ok:
        pytest.skip("criu check passes here: the error path is not reachable")
    n = box.run_d("busybox", "sleep", "300")
    cdir = os.path.join(pouchd.home, "containers", inspect(pouchd, n)["Id"], "checkpoints")
    for args in (["create", n, "cp0"], ["ls", n], ["rm", n, "cp0"]):
        r = pouchd.cli("checkpoint", *args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode != 0 and len(lines) == 1 and "criu check" in lines[0], (args, r.stderr)
        assert "vdso" in lines[0] or "not installed" in lines[0], lines  # CRIU's own words
    status, out = pouchd.api("POST", f"/containers/{n}/checkpoints", {"CheckpointID": "cp0"})
    assert status == 501 and "criu check" in out["message"]
    status, _ = pouchd.api("GET", f"/containers/{n}/checkpoints")
    assert status == 501
    status, _ = pouchd.api("DELETE", f"/containers/{n}/checkpoints/cp0")
    assert status == 501
    assert inspect(pouchd, n)["State"]["Running"] and not os.path.exists(cdir)
    assert pouchd.cli("stop", "-t", "1", n).returncode == 0
    r = pouchd.cli("start", "--checkpoint", "cp0", n)
    assert r.returncode != 0 and "criu check" in r.stderr
    assert not inspect(pouchd, n)["State"]["Running"]
    # bad input is refused before CRIU is asked: 400 / 404
    status, out = pouchd.api("POST", f"/containers/{n}/checkpoints", {"CheckpointID": "../x"})
    assert status == 400 and "checkpoint name" in out["message"]
    status, _ = pouchd.api("POST", f"/containers/{n}/checkpoints", {"CheckpointID": "a", "CheckpointDir": "rel"})
    assert status == 400
    status, _ = pouchd.api("POST", "/containers/nosuchcontainer/checkpoints", {"CheckpointID": "a"})
    assert status == 404


def test_checkpoint_and_restore_round_trip(pouchd, box, tmp_path):
    ok, report = _criu()
    if not ok:
        pytest.skip(f"CRIU does not work on this host (`criu check`: {report.splitlines()[-1] if report else '?'})")
    n = box.run_d("busybox", "sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.1; done")
    assert pouchd.cli("checkpoint", "create", "--checkpoint-dir", str(tmp_path), n, "cp1").returncode == 0
    assert "cp1" in pouchd.cli("checkpoint", "ls", "--checkpoint-dir", str(tmp_path), n).stdout
    assert not inspect(pouchd, n)["State"]["Running"]
    r = pouchd.cli("start", "--checkpoint", "cp1", "--checkpoint-dir", str(tmp_path), n)
    assert r.returncode == 0, r.stderr
    assert int(pouchd.cli("exec", n, "cat", "/tmp/n").stdout) > 1
    assert pouchd.cli("checkpoint", "rm", "--checkpoint-dir", str(tmp_path), n, "cp1").returncode == 0
