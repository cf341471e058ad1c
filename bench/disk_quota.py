"""Benchmark: what `--disk-quota 1g` costs on `pouch run --rm busybox true`, and whether a 2 GB
write into a 1 GB quota stops at ~1 GB.

Starts a private pouchd (`--quota-backend auto`: project quota where the home has it, else a
loop-mounted filesystem per container), alternates `pouch run --rm --net none busybox true` with
and without `--disk-quota 1g` and prints the medians and their difference (issue 17 target:
<= +60 ms).  No docker column: Docker's counterpart (`--storage-opt size=`) needs overlay2 on
xfs with project quota, which a kernel without quota cannot give.  Then runs `dd bs=1M count=2048` in a 1 GB-quota container and reports where it
stopped, the error, the time, and how much host disk the container's image took.

    sudo .venv/bin/python bench/disk_quota.py [--runs 21] [--backend auto|loop|prjquota] [--size 1g]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.engines import paired  # noqa: E402
from tests.fixtures.daemon import POUCH  # noqa: E402
from tests.fixtures.daemon import PouchDaemon  # noqa: E402
from tests.fixtures.images import busybox_archive  # noqa: E402


def _host_bytes(home: str) -> int:
    total = 0
    """Host blocks of the containers' quota images (not what is inside their mounted filesystems)."""
    loop = os.path.join(home, "quota", "loop")
    for owner in os.listdir(loop) if os.path.isdir(loop) else []:
        for rec in os.listdir(os.path.join(loop, owner)):
            try:
                total += os.stat(os.path.join(loop, owner, rec, "disk.img")).st_blocks * 512
            except OSError:
                pass
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--size", default="1g", help="quota of the timed runs (the dd test is always 1g)")
    opts = ap.parse_args()
    d = PouchDaemon(extra_args=["--quota-backend", opts.backend])
    try:
        d.start()
        d.cli("load", "-i", busybox_archive(), check=True)
        dq = json.loads(d.cli("info", "-f", "{{json .Features}}", check=True).stdout)["DiskQuota"]
        print(f"backend: {dq['Backend']} ({dq['Detail']})")
        run = [POUCH, "run", "--rm", "--net", "none"]
        p, q = paired(run + ["busybox", "true"], run + ["--disk-quota", opts.size, "busybox", "true"],
                      dict(os.environ, POUCH_HOST=d.host), opts.runs)
        print(f"pouch run --rm busybox true:                 median {p:.1f} ms ({opts.runs} runs)")
        print(f"pouch run --rm --disk-quota {opts.size} busybox true: median {q:.1f} ms")
        print(f"--disk-quota {opts.size} overhead: {q - p:+.1f} ms (target <= 60 ms)")

        d.cli("run", "-d", "--name", "fill", "--net", "none", "--disk-quota", "1g", "busybox",
              "sleep", "600", check=True)
        t = time.perf_counter()
        r = d.cli("exec", "fill", "dd", "if=/dev/zero", "of=/big", "bs=1M", "count=2048", timeout=600)
        dt = time.perf_counter() - t
        size = d.cli("exec", "fill", "stat", "-c", "%s", "/big", check=True).stdout.strip()
        err = [l for l in r.stderr.splitlines() if "No space" in l]
        copied = re.search(r"(\d+)\+\d+ records out", r.stderr)
        host = _host_bytes(d.home)
        print(f"dd of 2048 MiB into a 1 GiB quota: exit {r.returncode}, stopped at "
              f"{int(size) / 2 ** 20:.0f} MiB ({copied.group(1) if copied else '?'} MiB records), "
              f"{dt:.1f} s; error: {err[0] if err else 'none'}")
        print(f"host disk taken by the container's quota image: {host / 2 ** 20:.0f} MiB")
        d.cli("rm", "-f", "fill", check=True)
        print(f"after rm: quota files left on the host: {_host_bytes(d.home) / 2 ** 20:.0f} MiB")
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()
