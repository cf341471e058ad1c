"""Benchmark: what networking adds to `pouch run --rm busybox true`.

Starts a private pouchd (own containerd, busybox loaded), warms up, then alternates
`pouch run --rm busybox true` on the default bridge and with `--net none`, and prints the
medians and their difference (FEATURES.md target: <= 60 ms).

    sudo .venv/bin/python bench/network_overhead.py [--runs 15]
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
    ap.add_argument("--runs", type=int, default=15)
    opts = ap.parse_args()
    d = PouchDaemon()
    try:
        d.start()
        d.cli("load", "-i", busybox_archive(), check=True)
        mb, mn = paired_medians(d, (), ("--net", "none"), opts.runs)
        print(f"runs={opts.runs} median bridge={mb:.0f} ms  none={mn:.0f} ms  overhead={mb - mn:.0f} ms "
              f"(target <= 60 ms)")
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()
