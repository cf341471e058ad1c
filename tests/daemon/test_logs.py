"""`pouch logs` and the json-file driver: follow, tail, since/until, timestamps, rotation,
and logs that survive a pouchd restart."""
from __future__ import annotations

import glob
import os
import re
import subprocess
import time

import pytest

from tests.daemon.conftest import Box, inspect, wait_for
from tests.fixtures.daemon import POUCH

pytestmark = pytest.mark.integration


def _lines(d, *args):
    r = d.cli("logs", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_logs_stdout_and_stderr(pouchd, box):
    n = box.name()
    pouchd.cli("run", "--name", n, "busybox", "sh", "-c", "echo out1; echo err1 >&2; echo out2")
    r = pouchd.cli("logs", n)
    assert r.stdout == "out1\nout2\n"
    assert r.stderr == "err1\n"


def test_logs_tail(pouchd, box):
    n = box.name()
    pouchd.cli("run", "--name", n, "busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done")
    assert _lines(pouchd, "--tail", "2", n) == ["line4", "line5"]
    assert _lines(pouchd, "--tail", "0", n) == []
    assert len(_lines(pouchd, "--tail", "all", n)) == 5


def test_logs_timestamps(pouchd, box):
    n = box.name()
    before = time.time()
    pouchd.cli("run", "--name", n, "busybox", "echo", "stamped")
    (line,) = _lines(pouchd, "-t", n)
    ts, text = line.split(" ", 1)
    assert text == "stamped"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", ts), ts
    from datetime import datetime
    t = datetime.strptime(ts[:26] + "Z", "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=__import__("datetime").timezone.utc)
    assert abs(t.timestamp() - before) < 10


def test_logs_since_until(pouchd, box):
    n = box.run_d("busybox", "sh", "-c", "echo early; sleep 2; echo late; sleep 300")
    wait_for(lambda: "late" in pouchd.cli("logs", n).stdout, timeout=10, what="late line")
    lines = _lines(pouchd, "-t", n)
    t_late = lines[1].split()[0]
    # --since the late line's timestamp keeps only it; --until excludes it
    assert [l.split(" ", 1)[1] for l in _lines(pouchd, "-t", "--since", t_late, n)] == ["late"]
    early_ts = lines[0].split()[0]
    until = early_ts[:19] + "." + str(int(early_ts[20:29]) + 500000000).zfill(9)[:9] + "Z" \
        if int(early_ts[20:29]) < 500000000 else None
    if until:
        assert _lines(pouchd, "--until", until, n) == ["early"]
    # relative: everything happened within the last 60 seconds
    assert _lines(pouchd, "--since", "60s", n) == ["early", "late"]
    assert _lines(pouchd, "--since", str(int(time.time()) + 100), n) == []
    assert _lines(pouchd, "--until", "1", n) == []


def test_logs_follow_sees_new_lines(pouchd, box):
    n = box.run_d("busybox", "sh", "-c", "echo first; sleep 1; echo second; sleep 1; echo third")
    env = dict(os.environ, POUCH_HOST=pouchd.host)
    p = subprocess.Popen([POUCH, "logs", "-f", n], stdout=subprocess.PIPE, text=True, env=env)
    try:
        out, _ = p.communicate(timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
    # follow ends when the container exits, after printing lines written later
    assert out.splitlines() == ["first", "second", "third"]


def test_logs_follow_running_container_streams(pouchd, box):
    n = box.run_d("busybox", "sh", "-c", "i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.2; done")
    env = dict(os.environ, POUCH_HOST=pouchd.host)
    p = subprocess.Popen([POUCH, "logs", "-f", "--tail", "1", n], stdout=subprocess.PIPE, text=True, env=env)
    try:
        got = [p.stdout.readline().strip() for _ in range(4)]
    finally:
        p.kill()
        p.wait()
    nums = [int(g[4:]) for g in got]
    assert nums == list(range(nums[0], nums[0] + 4)), got


def test_json_file_rotation(pouchd, box):
    n = box.name()
    r = pouchd.cli("run", "--name", n, "--log-opt", "max-size=1k", "--log-opt", "max-file=2", "busybox",
                   "sh", "-c", "i=0; while [ $i -lt 300 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done")
    assert r.returncode == 0, r.stderr
    info = inspect(pouchd, n)
    assert info["HostConfig"]["LogConfig"]["Config"] == {"max-size": "1k", "max-file": "2"}
    path = info["LogPath"]
    files = sorted(glob.glob(path + "*"))
    assert files == [path, path + ".1"], files
    for f in files:
        assert os.path.getsize(f) <= 1024 + 200, (f, os.path.getsize(f))
    lines = _lines(pouchd, n)
    assert lines and lines[-1].startswith("line-299-")  # newest kept
    assert not any(l.startswith("line-0-") for l in lines)  # oldest rotated away
    nums = [int(l.split("-")[1]) for l in lines]
    assert nums == sorted(nums) and nums == list(range(nums[0], 300))


def test_bad_log_opt_refused(pouchd, box):
    n = box.name()
    before = pouchd.cli("ps", "-aq").stdout.split()
    r = pouchd.cli("run", "--name", n, "--log-opt", "max-file=abc", "busybox", "true")
    assert r.returncode != 0
    assert pouchd.cli("ps", "-aq").stdout.split() == before


def test_logs_survive_daemon_restart(fresh_pouchd):
    d = fresh_pouchd
    b = Box(d)
    n = b.run_d("busybox", "sh", "-c", "echo before; while true; do echo tick; sleep 0.2; done")
    wait_for(lambda: "before" in d.cli("logs", n).stdout, what="first line")
    d.stop()
    time.sleep(0.6)  # the container keeps writing while pouchd is away
    d.start()
    lines = _lines(d, n)
    assert lines[0] == "before"
    count = len(lines)
    wait_for(lambda: len(_lines(d, n)) > count + 2, timeout=10, what="new lines after restart")
    assert inspect(d, n)["State"]["Status"] == "running"
    b.cleanup()


def test_logs_follow_across_rotation(pouchd, box):
    n = box.name()
    env = dict(os.environ, POUCH_HOST=pouchd.host)
    r = pouchd.cli("create", "--name", n, "--log-opt", "max-size=2k", "--log-opt", "max-file=5", "busybox",
                   "sh", "-c", "sleep 0.5; i=0; while [ $i -lt 150 ]; do echo n$i-xxxxxxxxxxxxxxxxxxxxxxxx; "
                   "i=$((i+1)); [ $((i % 10)) -eq 0 ] && sleep 0.05; done")
    assert r.returncode == 0, r.stderr
    assert pouchd.cli("start", n).returncode == 0
    p = subprocess.Popen([POUCH, "logs", "-f", n], stdout=subprocess.PIPE, text=True, env=env)
    out, _ = p.communicate(timeout=20)
    nums = [int(l.split("-")[0][1:]) for l in out.splitlines()]
    assert nums == list(range(150)), nums


def test_syslog_driver_sends_each_line_and_logs_refuses_to_read(pouchd, box, tmp_path):
    """--log-driver syslog: every line reaches the syslog socket with the tag, stderr at severity err;
    `pouch logs` says the driver cannot be read; a bad option is refused at create."""
    import socket
    path = str(tmp_path / "syslog.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)
    srv.settimeout(10)
    try:
        n = box.name()
        r = pouchd.cli("run", "--name", n, "--log-driver", "syslog", "--log-opt", f"syslog-address=unixgram://{path}",
                       "--log-opt", "tag=web1", "--log-opt", "syslog-facility=local3",
                       "busybox", "sh", "-c", "echo first; echo oops >&2; echo last")
        assert r.returncode == 0, r.stderr
        got = [srv.recv(65536).decode() for _ in range(3)]
    finally:
        srv.close()
    by_text = {m.rsplit(": ", 1)[1]: m for m in got}
    assert set(by_text) == {"first", "oops", "last"}, got
    local3 = 19 * 8
    assert by_text["first"].startswith(f"<{local3 + 6}>") and by_text["oops"].startswith(f"<{local3 + 3}>"), got
    assert all(" web1[" in m for m in got), got
    r = pouchd.cli("logs", n)
    assert r.returncode == 1 and "does not support reading" in r.stderr
    before = pouchd.cli("ps", "-aq").stdout.split()
    r = pouchd.cli("create", "--log-driver", "syslog", "--log-opt", "syslog-address=bogus", "busybox", "true")
    assert r.returncode == 1 and "syslog-address" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert pouchd.cli("ps", "-aq").stdout.split() == before
