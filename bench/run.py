"""Core-engine benchmark (issue 3): pouch side by side with Debian's dockerd and with ctr.

One run starts a private pouchd (own containerd, busybox loaded) and a private
dockerd 20.10 (own --data-root/--exec-root/--pidfile/socket, --iptables=false,
same busybox archive via `docker load`), then reports medians over N runs:

* `pouch run --rm busybox true` vs `docker run --rm busybox true`   (target <= 0.6x)
* the same vs `ctr run --rm` against pouchd's containerd             (target <= 1.3x)
* `pouch ps -a` vs `docker ps -a` with 100 containers each           (target <= 1.0x)
* `pouch version` wall time                                          (target < 50 ms)
* pouchd idle RSS (< 80 MiB) and RSS growth per stopped container at 1,000 containers
  (< 200 KiB each)

Both engines run containers with their default network mode (printed).
Everything is stopped and removed at the end.

    sudo .venv/bin/python bench/run.py [--runs 20] [--many 1000]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.engines import CTR, DOCKER, DOCKERD, HEADER, Dockerd, median_ms, row, rss_kib, timed  # noqa: E402
from tests.fixtures.daemon import POUCH, PouchDaemon  # noqa: E402
from tests.fixtures.images import busybox_archive  # noqa: E402


def netns_mode(run_cmd: list[str], env: dict | None) -> str:
    """'host' when the container shares the host's network namespace, else 'own netns'."""
    r = subprocess.run(run_cmd + ["readlink", "/proc/self/ns/net"], capture_output=True, text=True, env=env)
    return "host" if r.stdout.strip() == os.readlink("/proc/self/ns/net") else "own netns (bridge)"


def create_many(d: PouchDaemon, n: int, prefix: str, workers: int = 8) -> None:
    body = {"Image": "busybox", "Cmd": ["true"]}

    def one(i: int) -> None:
        status, resp = d.api("POST", f"/containers/create?name={prefix}{i}", body, timeout=120)
        if status != 201:
            raise RuntimeError(f"create {i}: {status} {resp}")
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        list(ex.map(one, range(n)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--many", type=int, default=1000, help="containers for the RSS-per-container number")
    ap.add_argument("--no-docker", action="store_true", help="skip the dockerd side")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")

    archive = busybox_archive()
    d = PouchDaemon()
    dk = None
    lines: list[str] = []
    try:
        d.start()
        if d.cli("load", "-i", archive).returncode != 0:
            raise SystemExit("pouch load failed")
        penv = dict(os.environ, POUCH_HOST=d.host)
        ctr_sock = os.path.join(d.run_dir, "containerd", "containerd.sock")
        have_docker = not args.no_docker and os.path.exists(DOCKERD) and os.path.exists(DOCKER)
        if have_docker:
            dk = Dockerd(tempfile.mkdtemp(prefix="pouch-bench-docker-"))
            dk.start()
            r = dk.docker("load", "-i", archive)
            if r.returncode != 0:
                raise SystemExit("docker load failed: " + r.stderr)

        pouch_run = [POUCH, "run", "--rm", "busybox"]
        docker_run = [DOCKER, "run", "--rm", "busybox"]
        pouch_net = netns_mode(pouch_run, penv)
        docker_net = netns_mode(docker_run, dk.env) if dk else "-"
        ctr_net = "own netns, lo only (ctr run default)"

        # -- run --rm true, interleaved so drift hits all alike -----------------
        for _ in range(2):  # warm-up
            timed(pouch_run + ["true"], penv)
            if dk:
                timed(docker_run + ["true"], dk.env)
        p_run, d_run, c_run, pn_run = [], [], [], []
        pouch_run_nonet = [POUCH, "run", "--rm", "--net", "none", "busybox", "true"]
        for i in range(args.runs):
            p_run.append(timed(pouch_run + ["true"], penv))
            pn_run.append(timed(pouch_run_nonet, penv))
            if dk:
                d_run.append(timed(docker_run + ["true"], dk.env))
            c_run.append(timed([CTR, "-a", ctr_sock, "-n", "default", "run", "--rm",
                                "docker.io/library/busybox:latest", f"bench-ctr-{os.getpid()}-{i}", "true"]))

        # -- version ------------------------------------------------------------
        timed([POUCH, "version"], penv)
        p_ver = [timed([POUCH, "version"], penv) for _ in range(args.runs)]

        # -- pouchd idle RSS (before any bulk containers) ------------------------
        time.sleep(1.0)
        idle_rss = rss_kib(d.proc.pid)

        # -- ps with 100 containers -----------------------------------------------
        create_many(d, 100, "ps")
        if dk:
            with concurrent.futures.ThreadPoolExecutor(8) as ex:
                list(ex.map(lambda i: dk.docker("create", "--name", f"ps{i}", "busybox", "true"), range(100)))
            assert len(dk.docker("ps", "-aq").stdout.split()) == 100
        assert len(d.cli("ps", "-aq").stdout.split()) == 100
        timed([POUCH, "ps", "-a"], penv)
        p_ps = [timed([POUCH, "ps", "-a"], penv) for _ in range(args.runs)]
        d_ps = []
        if dk:
            timed([DOCKER, "ps", "-a"], dk.env)
            d_ps = [timed([DOCKER, "ps", "-a"], dk.env) for _ in range(args.runs)]

        # -- RSS per stopped container ------------------------------------------
        time.sleep(0.5)
        rss_before = rss_kib(d.proc.pid)
        t = time.monotonic()
        create_many(d, args.many - 100, "many")
        create_s = time.monotonic() - t
        time.sleep(1.0)
        rss_after = rss_kib(d.proc.pid)
        per_container = (rss_after - idle_rss) / args.many
        per_container_incr = (rss_after - rss_before) / (args.many - 100)

        # -- report ---------------------------------------------------------------
        pr, dr, cr = median_ms(p_run), (median_ms(d_run) if d_run else None), median_ms(c_run)
        pp, dp = median_ms(p_ps), (median_ms(d_ps) if d_ps else None)
        lines += [
            f"pouch bench: {args.runs} runs each, medians (ms); {os.cpu_count()} CPUs",
            f"network mode: pouch={pouch_net}  docker={docker_net}  ctr={ctr_net}",
            f"docker: {dk.docker('version', '-f', '{{.Server.Version}}').stdout.strip() if dk else 'not run'}",
            "",
            HEADER,
            row("run --rm busybox true  vs docker", pr, dr, "ms", "ratio <= 0.60"),
            row("run --rm busybox true  vs ctr run --rm", pr, cr, "ms", "ratio <= 1.30"),
            row("run --rm --net none    vs ctr run --rm", median_ms(pn_run), cr, "ms",
                "(same network setup: lo only)"),
            row("ps -a (100 containers) vs docker ps -a", pp, dp, "ms", "ratio <= 1.00"),
            row("pouch version", median_ms(p_ver), None, "ms", "< 50 ms"),
            row("pouchd idle RSS", idle_rss / 1024, None, "MiB", "< 80 MiB"),
            row(f"pouchd RSS per container (at {args.many})", per_container, None, "KiB", "< 200 KiB"),
            row("  (increment 100 -> %d only)" % args.many, per_container_incr, None, "KiB", ""),
            f"(created {args.many - 100} containers via the API in {create_s:.1f}s; "
            f"RSS {idle_rss / 1024:.1f} -> {rss_after / 1024:.1f} MiB)",
        ]
        print("\n".join(lines))
    finally:
        if dk:
            dk.stop()
        if d.proc is not None:
            ids = d.cli("ps", "-aq").stdout.split()
            for i in range(0, len(ids), 200):
                d.cli("rm", "-f", *ids[i:i + 200], timeout=600)
        d.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
