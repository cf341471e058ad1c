"""Benchmark: what LXCFS views add to `run --rm busybox true`, pouch beside docker.

Starts a private pouchd with --enable-lxcfs (own containerd and lxcfs, busybox loaded) and a
private dockerd 20.10 (bench/engines.py).  Docker has no LXCFS option: its users bind lxcfs's
files by hand, so the docker side binds the same views from pouchd's lxcfs mount
(`-v <lxcfs>/proc/meminfo:/proc/meminfo:ro`, ...).  Per engine, alternates `run --rm --net none
busybox true` with and without the views and prints the medians and the difference, side by side.
`--net none` keeps network setup, which both variants pay equally, out of the noise.  Targets:
bench/README.md.

    sudo .venv/bin/python bench/lxcfs_overhead.py [--runs 21] [--no-docker]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.engines import DOCKER, Dockerd, have_docker, paired  # noqa: E402
from pouch.lxcfs import available_views  # noqa: E402
from tests.fixtures.daemon import POUCH, PouchDaemon  # noqa: E402
from tests.fixtures.images import busybox_archive  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--no-docker", action="store_true")
    opts = ap.parse_args()
    d = PouchDaemon(extra_args=["--enable-lxcfs"])
    dk = None
    try:
        d.start()
        d.cli("load", "-i", busybox_archive(), check=True)
        run = [POUCH, "run", "--rm", "--net", "none"]
        res = {"pouch": paired(run + ["busybox", "true"], run + ["--enableLxcfs", "busybox", "true"],
                               dict(os.environ, POUCH_HOST=d.host), opts.runs)}
        if have_docker() and not opts.no_docker:
            mnt = os.path.join(d.home, "lxcfs")
            binds = [a for v in available_views(mnt) for a in ("-v", f"{mnt}{v}:{v}:ro")]
            dk = Dockerd(tempfile.mkdtemp(prefix="pouch-bench-docker-"))
            dk.start()
            dk.docker("load", "-i", busybox_archive(), check=True)
            run = [DOCKER, "run", "--rm", "--net", "none"]
            res["docker"] = paired(run + ["busybox", "true"], run + binds + ["busybox", "true"], dk.env, opts.runs)
        print(f"run --rm --net none busybox true, {opts.runs} runs, medians (ms)")
        print(f"{'engine':<8}{'plain':>9}{'lxcfs':>9}{'overhead':>10}")
        for name, (plain, lx) in res.items():
            print(f"{name:<8}{plain:>9.1f}{lx:>9.1f}{lx - plain:>+10.1f}")
        print("target: pouch's overhead <= 15 ms (docker's: the same views bound by hand)")
    finally:
        if dk:
            dk.stop()
        d.cleanup()


if __name__ == "__main__":
    main()
