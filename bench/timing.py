"""Timing helpers shared by the bench scripts."""
from __future__ import annotations

import statistics
import time


def timed_run(d, *args: str) -> float:
    """Wall time of `pouch run --rm ARGS busybox true` against the daemon ``d`` (PouchDaemon)."""
    t = time.perf_counter()
    r = d.cli("run", "--rm", *args, "busybox", "true")
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"pouch run {' '.join(args)} failed: {r.stderr}")
    return dt


def paired_medians(d, a: tuple[str, ...], b: tuple[str, ...], runs: int, warmup: int = 3) -> tuple[float, float]:
    """Median milliseconds of `pouch run --rm A... busybox true` and of `... B...`, alternated
    (so drift hits both alike) after ``warmup`` untimed pairs."""
    for _ in range(warmup):
        timed_run(d, *a)
        timed_run(d, *b)
    ta, tb = [], []
    for _ in range(runs):
        ta.append(timed_run(d, *a))
        tb.append(timed_run(d, *b))
    return statistics.median(ta) * 1000, statistics.median(tb) * 1000
