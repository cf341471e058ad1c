"""The meta store on a full filesystem (a 1 MB tmpfs of the test's own): writes a request needs fail
with StoreFull (a 503 with a message), writes that must not fail (exits, removals) are kept and land
once there is room; reads see them meanwhile."""
from __future__ import annotations

import os
import subprocess

import pytest

from pouch.daemon.meta.store import MetaStore, StoreFull


@pytest.fixture
def tiny_fs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    d = tmp_path / "fs"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(d)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip("cannot mount a tmpfs: " + r.stderr)
    yield d
    subprocess.run(["umount", "-l", str(d)], capture_output=True)


def _fill(path) -> None:
    with open(path, "ab", buffering=0) as f:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                continue


def test_full_disk_surfaces_or_keeps_writes(tiny_fs):
    store = MetaStore(str(tiny_fs / "meta" / "meta.db"))
    store.put("c", "a", {"State": "running"})
    store.put("c", "gone", {"State": "exited"})
    _fill(tiny_fs / "ballast")
    big = {"x": "y" * 20000}
    with pytest.raises(StoreFull) as e:
        for i in range(50):  # the WAL must grow: a put that needs room fails, typed, with a message
            store.put("c", f"new{i}", big)
    assert e.value.http_status == 503 and "no space left" in e.value.message
    store.put_eventually("c", "a", {"State": "exited", **big})  # never raises
    store.delete_eventually("c", "gone")
    assert store.get("c", "a")["State"] == "exited" and store.get("c", "gone") is None
    assert {k for k, _ in store.list("c")} >= {"a"} and "gone" not in {k for k, _ in store.list("c")}
    assert store.pending
    os.unlink(tiny_fs / "ballast")
    store.flush()
    assert not store.pending
    store.close()
    again = MetaStore(str(tiny_fs / "meta" / "meta.db"))
    assert again.get("c", "a")["State"] == "exited" and again.get("c", "gone") is None
    again.close()
