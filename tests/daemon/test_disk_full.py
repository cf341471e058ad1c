"""A full disk under pouchd's home (a small tmpfs of the test's own): an attached run whose container
fills it returns, `rm -f` meanwhile removes the container (never left "Removing"), the daemon keeps
answering, and once there is room again what was kept in memory lands in the meta store."""
from __future__ import annotations

import os
import subprocess
import tempfile
import time

import pytest

from tests.conftest import _missing_for_daemon
from tests.fixtures.daemon import PouchDaemon
from tests.fixtures.images import busybox_archive

pytestmark = pytest.mark.integration


@pytest.fixture
def small_home_daemon():
    why = _missing_for_daemon()
    if why:
        pytest.skip(why)
    base = tempfile.mkdtemp(prefix="pouch-diskfull-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=80m", "tmpfs", base], capture_output=True, text=True)
    if r.returncode:
        pytest.skip("cannot mount a tmpfs: " + r.stderr)
    d = PouchDaemon(base=base)
    try:
        d.start()
        assert d.cli("load", "-i", busybox_archive()).returncode == 0
        yield d
    finally:
        try:
            d.cleanup()
        finally:
            subprocess.run(["umount", "-l", base], capture_output=True)
            os.rmdir(base)


def _fill(path: str) -> None:
    """Write zeros to ``path`` until the filesystem has no byte left."""
    with open(path, "ab", buffering=0) as f:
        for size in (1 << 20, 4096, 512, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                continue


def test_disk_full_nothing_hangs_and_rm_removes(small_home_daemon):
    d = small_home_daemon
    t0 = time.monotonic()
    r = d.cli("run", "--name", "filler", "busybox", "sh", "-c",
              "dd if=/dev/zero of=/fill bs=1M 2>/dev/null; echo filled; echo more", timeout=120)
    assert time.monotonic() - t0 < 90
    assert r.returncode == 0, r.stderr
    r = d.cli("rm", "-f", "filler", timeout=60)  # on the full disk
    assert r.returncode == 0, r.stderr
    # the disk fills while a container runs: the meta store cannot grow when it exits
    r = d.cli("run", "-d", "--name", "victim", "busybox", "sh", "-c", "sleep 2; echo bye", timeout=60)
    assert r.returncode == 0, r.stderr
    ballast = os.path.join(d.base, "ballast")
    _fill(ballast)
    r = d.cli("wait", "victim", timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "0", (r.stdout, r.stderr)
    assert d.cli("ps", "-a").returncode == 0
    r = d.cli("create", "--name", "second", "busybox", "true", timeout=60)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    r = d.cli("rm", "-f", "victim", timeout=60)
    assert r.returncode == 0, r.stderr
    ps = d.cli("ps", "-a", "--format", "{{.Names}} {{.Status}}").stdout
    assert "filler" not in ps and "victim" not in ps and "Removing" not in ps, ps
    # room again: what was kept lands in the meta store; a restart shows the same
    os.unlink(ballast)
    time.sleep(3)
    d.stop()
    d.start()
    ps = d.cli("ps", "-a", "--format", "{{.Names}} {{.Status}}").stdout
    assert "filler" not in ps and "victim" not in ps and "Removing" not in ps, ps
    r = d.cli("run", "--rm", "busybox", "echo", "ok", timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
