"""Mounting a containerd mount list (a snapshot's ``Mounts``) on a temporary directory of the host."""
from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from typing import Iterator


@contextlib.contextmanager
def mounted(mounts: list[dict], prefix: str = "pouch-mnt-") -> Iterator[str]:
    """Mount the (single) mount of ``mounts`` on a fresh directory; unmount and remove it after."""
    if len(mounts) != 1:
        raise OSError(f"expected one snapshot mount, got {len(mounts)}")
    m = mounts[0]
    target = tempfile.mkdtemp(prefix=prefix)
    try:
        if m["type"] == "bind":
            cmd = ["mount", "--bind", m["source"], target]
        else:
            cmd = ["mount", "-t", m["type"], m["source"] or m["type"], "-o", ",".join(m["options"]), target]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            raise OSError(f"mounting the snapshot: {r.stderr.strip()}")
        try:
            yield target
        finally:
            if subprocess.run(["umount", target], capture_output=True).returncode:
                # still busy (a helper chrooted in it has not exited yet): detach it now, the
                # kernel frees it when the last user goes
                subprocess.run(["umount", "-l", target], capture_output=True)
    finally:
        os.rmdir(target)
