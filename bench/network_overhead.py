"""Benchmark: what the default bridge network adds to `run --rm busybox true`, pouch beside
docker, and how long the network teardown takes after the command returned.

Starts a private pouchd (own containerd, busybox loaded) and a private dockerd 20.10 (see
bench/engines.py; same busybox archive), warms up, then alternates, per engine, `run --rm
busybox true` on the default bridge and with `--net none`; prints each engine's medians, the
overhead (bridge - none) side by side, and their ratio.  `pouch run --rm` returns once the
process has exited and its exit code is known, and tears the network down after; dockerd tears
it down first.  So the bench also reports how long after the return the container's network is
released (polled every ms): for pouch, its netns file and IPAM reservation are gone; for docker,
its veth is gone from docker0 (dockerd deletes the veth at release, and removes netns files
later, on a 60 s garbage-collection timer, so those files say nothing about the release).  Targets:
bench/README.md.

    sudo .venv/bin/python bench/network_overhead.py [--runs 15] [--no-docker]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.engines import DOCKER, Dockerd, have_docker, median_ms  # noqa: E402
from tests.fixtures.daemon import POUCH, PouchDaemon  # noqa: E402
from tests.fixtures.images import busybox_archive  # noqa: E402


def files_under(*dirs: str) -> Callable[[], int]:
    """A probe: how many files the directories hold (netns bind files, IPAM reservations)."""
    return lambda: sum(len(files) for d in dirs for _, _, files in os.walk(d))


def bridge_ports(bridge: str) -> Callable[[], int]:
    """A probe: how many ports (veths) the bridge has."""
    brif = f"/sys/class/net/{bridge}/brif"
    return lambda: len(os.listdir(brif)) if os.path.isdir(brif) else 0


def run_once(argv: list[str], env: dict, held: Callable[[], int] | None) -> tuple[float, float]:
    """Wall time of the command, and (given ``held``, a probe counting what containers' networks
    hold) the time from its return until it counts no more than before."""
    before = held() if held else 0
    t = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, env=env)
    done = time.perf_counter()
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {r.stderr.decode()[-300:]}")
    if held:
        deadline = done + 10
        while held() > before and time.perf_counter() < deadline:
            time.sleep(0.001)
    return done - t, time.perf_counter() - done


def measure(cmd: list[str], env: dict, held: Callable[[], int], runs: int) -> dict[str, float]:
    for _ in range(3):  # warm-up
        run_once(cmd + ["busybox", "true"], env, held)
        run_once(cmd + ["--net", "none", "busybox", "true"], env, None)
    tb, tn, teardown = [], [], []
    for _ in range(runs):
        a, td = run_once(cmd + ["busybox", "true"], env, held)
        tb.append(a)
        teardown.append(td)
        tn.append(run_once(cmd + ["--net", "none", "busybox", "true"], env, None)[0])
    return {"bridge": median_ms(tb), "none": median_ms(tn), "teardown": median_ms(teardown)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--no-docker", action="store_true")
    opts = ap.parse_args()
    d = PouchDaemon()
    dk = None
    try:
        d.start()
        d.cli("load", "-i", busybox_archive(), check=True)
        held = files_under(os.path.join(d.run_dir, "netns"), os.path.join(d.home, "network", "ipam"))
        res = {"pouch": measure([POUCH, "run", "--rm"], dict(os.environ, POUCH_HOST=d.host), held, opts.runs)}
        if have_docker() and not opts.no_docker:
            dk = Dockerd(tempfile.mkdtemp(prefix="pouch-bench-docker-"))
            dk.start()
            dk.docker("load", "-i", busybox_archive(), check=True)
            res["docker"] = measure([DOCKER, "run", "--rm"], dk.env, bridge_ports("docker0"), opts.runs)
        print(f"runs={opts.runs}, medians (ms); {os.cpu_count()} CPUs")
        print(f"{'engine':<8}{'bridge':>9}{'none':>9}{'overhead':>10}{'teardown after return':>24}")
        for name, r in res.items():
            print(f"{name:<8}{r['bridge']:>9.0f}{r['none']:>9.0f}{r['bridge'] - r['none']:>10.0f}{r['teardown']:>24.0f}")
        if "docker" in res:
            p, k = res["pouch"], res["docker"]
            po, ko = p["bridge"] - p["none"], k["bridge"] - k["none"]
            ratio = f"{po / ko:.2f}" if ko > 0 else "n/a (docker's overhead <= 0: too noisy, rerun)"
            print(f"overhead ratio pouch/docker: {ratio}  (target: pouch overhead <= 60 ms and <= docker's)")
            print(f"run --rm on the bridge, pouch/docker: {p['bridge'] / k['bridge']:.2f}; counting pouch's "
                  f"teardown after return: {(p['bridge'] + p['teardown']) / (k['bridge'] + k['teardown']):.2f}")
    finally:
        if dk:
            dk.stop()
        d.cleanup()


if __name__ == "__main__":
    main()
