"""Timing helpers shared by the bench scripts."""
from __future__ import annotations

import time


def timed_run(d, *args: str) -> float:
    """Wall time of `pouch run --rm ARGS busybox true` against the daemon ``d`` (PouchDaemon)."""
    t = time.perf_counter()
    r = d.cli("run", "--rm", *args, "busybox", "true")
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"pouch run {' '.join(args)} failed: {r.stderr}")
    return dt
