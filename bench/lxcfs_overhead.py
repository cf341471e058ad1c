"""Benchmark: what `--enableLxcfs` adds to `pouch run --rm busybox true`.

Starts a private pouchd with --enable-lxcfs (own containerd, busybox loaded), warms up, then
alternates `pouch run --rm --net none busybox true` with and without `--enableLxcfs`, and
prints the medians and their difference (FEATURES.md / issue 6 target: <= 15 ms).  `--net none`
keeps network setup, which both variants pay equally, out of the noise.

    sudo .venv/bin/python bench/lxcfs_overhead.py [--runs 21]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.daemon import PouchDaemon  # noqa: E402
from bench.timing import paired_medians  # noqa: E402
from tests.fixtures.images import busybox_archive  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=21)
    opts = ap.parse_args()
    d = PouchDaemon(extra_args=["--enable-lxcfs"])
    try:
        d.start()
        d.cli("load", "-i", busybox_archive(), check=True)
        p, l = paired_medians(d, ("--net", "none"), ("--net", "none", "--enableLxcfs"), opts.runs)
        print(f"pouch run --rm busybox true:               median {p:.1f} ms ({opts.runs} runs)")
        print(f"pouch run --rm --enableLxcfs busybox true: median {l:.1f} ms")
        print(f"--enableLxcfs overhead: {l - p:+.1f} ms (target <= 15 ms)")
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()
