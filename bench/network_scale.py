"""Benchmark: N containers (default 200) on one user bridge network.

Creates a user network, `pouch run -d ... sleep 600` N containers on it, checks every IP is
unique and inside the subnet, removes them with `rm -f`, and checks nothing is left: no veth on
the bridge, no iptables rule naming a container IP, no IPAM reservation, no netns file, no CNI
cache entry.  Then does the same with a private dockerd 20.10 (bench/engines.py; a user network
of its own subnet) and prints both engines' times side by side with their ratios.  Targets:
bench/README.md.

    sudo .venv/bin/python bench/network_scale.py [--count 200] [--no-docker]
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.engines import Dockerd, have_docker  # noqa: E402
from tests.daemon.nettools import bridge_of, iptables_mentions  # noqa: E402
from tests.fixtures.daemon import PouchDaemon  # noqa: E402
from tests.fixtures.images import busybox_archive  # noqa: E402

SUBNET = "10.250.0.0/22"
DOCKER_SUBNET = "10.251.0.0/22"


def docker_side(count: int) -> tuple[float, float, bool]:
    """Start-all and rm-all seconds for `count` containers on a dockerd user network, and
    whether every address was unique."""
    import tempfile
    dk = Dockerd(tempfile.mkdtemp(prefix="pouch-bench-docker-"))
    names = [f"s{i}" for i in range(count)]
    try:
        dk.start()
        dk.docker("load", "-i", busybox_archive(), check=True)
        dk.docker("network", "create", "--subnet", DOCKER_SUBNET, "scale", check=True)
        t = time.perf_counter()
        for n in names:
            dk.docker("run", "-d", "--name", n, "--net", "scale", "busybox", "sleep", "600", check=True)
        t_start = time.perf_counter() - t
        info = json.loads(dk.docker("inspect", *names, timeout=120).stdout)
        ips = [c["NetworkSettings"]["Networks"]["scale"]["IPAddress"] for c in info]
        t = time.perf_counter()
        dk.docker("rm", "-f", *names, timeout=600, check=True)
        return t_start, time.perf_counter() - t, len(set(ips)) == len(ips)
    finally:
        dk.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--no-docker", action="store_true")
    opts = ap.parse_args()
    d = PouchDaemon()
    names = [f"s{i}" for i in range(opts.count)]
    try:
        d.start()
        d.cli("load", "-i", busybox_archive(), check=True)
        d.cli("network", "create", "--subnet", SUBNET, "scale", check=True)
        d.cli("run", "--rm", "--net", "scale", "busybox", "true", check=True)  # brings the bridge up
        bridge = bridge_of(d, "scale")
        t = time.perf_counter()
        for n in names:
            d.cli("run", "-d", "--name", n, "--net", "scale", "busybox", "sleep", "600", check=True)
        t_start = time.perf_counter() - t
        info = json.loads(d.cli("inspect", *names, timeout=120).stdout)
        ips = [c["NetworkSettings"]["Networks"]["scale"]["IPAddress"] for c in info]
        ids = [c["Id"] for c in info]
        unique = len(set(ips)) == len(ips) and all(ipaddress.ip_address(i) in ipaddress.ip_network(SUBNET)
                                                   for i in ips)
        brif = f"/sys/class/net/{bridge}/brif"
        ports_before = len(os.listdir(brif)) if os.path.isdir(brif) else -1
        t = time.perf_counter()
        d.cli("rm", "-f", *names, timeout=600, check=True)
        t_rm = time.perf_counter() - t
        time.sleep(0.5)
        leaks = []
        if os.path.isdir(brif) and os.listdir(brif):
            leaks.append(f"{len(os.listdir(brif))} veths on {bridge}")
        for ip in ips:
            leaks += iptables_mentions(ip)
            if os.path.exists(os.path.join(d.home, "network", "ipam", "scale", ip)):
                leaks.append(f"ipam {ip}")
        leaks += [f"netns {c}" for c in ids if os.path.exists(os.path.join(d.run_dir, "netns", c))]
        cache = os.path.join(d.home, "network", "cni-cache")
        leaks += [f"cni cache {f}" for f in os.listdir(cache)] if os.path.isdir(cache) else []
        print(f"pouch:  count={opts.count} start-all={t_start:.1f}s ({t_start / opts.count * 1000:.0f} ms each) "
              f"veths-on-bridge={ports_before} unique-ips={unique} rm-all={t_rm:.1f}s leaks={len(leaks)}")
        for l in leaks[:20]:
            print("  leak:", l)
        if have_docker() and not opts.no_docker:
            d_start, d_rm, d_unique = docker_side(opts.count)
            print(f"docker: count={opts.count} start-all={d_start:.1f}s ({d_start / opts.count * 1000:.0f} ms each) "
                  f"unique-ips={d_unique} rm-all={d_rm:.1f}s")
            print(f"ratio pouch/docker: start-all {t_start / d_start:.2f}, rm-all {t_rm / d_rm:.2f} "
                  f"(targets: <= 1.0 each, 0 leaks)")
    finally:
        d.cli("rm", "-f", *names, timeout=600)
        d.cli("network", "rm", "scale")
        d.cleanup()


if __name__ == "__main__":
    main()
