"""Core-engine benchmark (issue 16): pouch side by side with Debian's dockerd and with ctr.

One run starts a private pouchd (own containerd, busybox loaded) and a private
dockerd 20.10 (own --data-root/--exec-root/--pidfile/socket, --iptables=false,
same busybox archive via `docker load`), then prints one table (bench.engines.row) of medians
over N alternating runs, each with its target and met / NOT MET:

* `pouch run --rm busybox true` vs `docker run --rm`                     (<= 0.6x)
* the same (bridge) vs `ctr run --rm` against pouchd's containerd         (<= 1.0x)
* `pouch exec C true` in a running container vs `docker exec`            (<= 0.6x)
* the same vs `ctr task exec` on the same container (pouchd's containerd) (<= 0.9x)
* `pouch ps -a` vs `docker ps -a` with 100 containers each               (<= 1.0x)
* `pouch version` vs `docker version` (CLI start + one request)          (~20 ms)
* pouchd idle RSS (< 80 MiB) and RSS growth per stopped container at --many containers
  (< 200 KiB each; --many 0 skips it)

Both engines run containers with their default network mode (printed).  bench/density.py and
bench/throughput.py (1,000 containers; 8 concurrent clients) print their own rows.
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


def interleaved(cmds: dict, runs: int, warmup: int = 2) -> dict[str, float]:
    """Median ms of each command, run in turn (drift hits all alike) after `warmup` rounds.
    ``cmds``: name -> (argv or argv(i) callable, env)."""
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for i in range(-warmup, runs):
        for name, (argv, env) in cmds.items():
            dt = timed(argv(i + warmup) if callable(argv) else argv, env)  # argv(n): n >= 0, unique
            if i >= 0:
                times[name].append(dt)
    return {name: median_ms(ts) for name, ts in times.items()}


def verdict(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


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
        ns = "default"  # the containerd namespace pouchd's containers live in
        ctr = [CTR, "-a", ctr_sock, "-n", ns]
        pid = os.getpid()
        cmds = {"pouch": (pouch_run + ["true"], penv),
                "pouch_nonet": ([POUCH, "run", "--rm", "--net", "none", "busybox", "true"], penv),
                "ctr": (lambda i: ctr + ["run", "--rm", "docker.io/library/busybox:latest",
                                         f"bench-ctr-{pid}-{i}", "true"], None)}
        if dk:
            cmds["docker"] = (docker_run + ["true"], dk.env)
        run_ms = interleaved(cmds, args.runs)

        # -- exec true in a running container ------------------------------------
        r = d.cli("run", "-d", "--name", "bench-exec", "busybox", "sleep", "100000")
        if r.returncode != 0:
            raise SystemExit("pouch run -d failed: " + r.stderr)
        pouch_cid = r.stdout.strip()
        cmds = {"pouch": ([POUCH, "exec", "bench-exec", "true"], penv),
                "ctr": (lambda i: ctr + ["task", "exec", "--exec-id", f"bench-{pid}-{i}", pouch_cid, "true"], None)}
        if dk:
            r = dk.docker("run", "-d", "--name", "bench-exec", "busybox", "sleep", "100000")
            if r.returncode != 0:
                raise SystemExit("docker run -d failed: " + r.stderr)
            cmds["docker"] = ([DOCKER, "exec", "bench-exec", "true"], dk.env)
        exec_ms = interleaved(cmds, args.runs)

        # -- version (CLI start + one request) -------------------------------------
        cmds = {"pouch": ([POUCH, "version"], penv), "help": ([POUCH, "--help"], penv)}
        if dk:
            cmds["docker"] = ([DOCKER, "version"], dk.env)
        ver_ms = interleaved(cmds, args.runs)
        d.cli("rm", "-f", "bench-exec")
        if dk:
            dk.docker("rm", "-f", "bench-exec")

        # -- pouchd idle RSS (before any bulk containers) ------------------------
        time.sleep(1.0)
        idle_rss = rss_kib(d.proc.pid)

        # -- ps with 100 containers -----------------------------------------------
        create_many(d, 100, "ps")
        cmds = {"pouch": ([POUCH, "ps", "-a"], penv)}
        if dk:
            with concurrent.futures.ThreadPoolExecutor(8) as ex:
                list(ex.map(lambda i: dk.docker("create", "--name", f"ps{i}", "busybox", "true"), range(100)))
            assert len(dk.docker("ps", "-aq").stdout.split()) == 100
            cmds["docker"] = ([DOCKER, "ps", "-a"], dk.env)
        assert len(d.cli("ps", "-aq").stdout.split()) == 100
        ps_ms = interleaved(cmds, args.runs, warmup=1)

        # -- RSS per stopped container ------------------------------------------
        per_container = per_container_incr = None
        if args.many > 100:
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
        def ratio(table: dict, other: str) -> float | None:
            return table["pouch"] / table[other] if table.get(other) else None

        pv = ver_ms["pouch"]
        lines += [
            (f"pouch bench (issue 16): {args.runs} alternating runs each, medians (ms); "
             f"{os.cpu_count()} CPUs; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"),
            f"network mode: pouch={pouch_net}  docker={docker_net}  ctr={ctr_net}",
            f"docker: {dk.docker('version', '-f', '{{.Server.Version}}').stdout.strip() if dk else 'not run'}",
            "",
            HEADER,
            row("run --rm busybox true  vs docker run --rm", run_ms["pouch"], run_ms.get("docker"), "ms",
                "ratio <= 0.60", verdict(ratio(run_ms, "docker"), 0.60)),
            row("run --rm (bridge)      vs ctr run --rm", run_ms["pouch"], run_ms["ctr"], "ms",
                "ratio <= 1.00", verdict(ratio(run_ms, "ctr"), 1.00)),
            row("run --rm --net none    vs ctr run --rm", run_ms["pouch_nonet"], run_ms["ctr"], "ms",
                "(both lo only)"),
            row("exec true              vs docker exec", exec_ms["pouch"], exec_ms.get("docker"), "ms",
                "ratio <= 0.60", verdict(ratio(exec_ms, "docker"), 0.60)),
            row("exec true              vs ctr task exec", exec_ms["pouch"], exec_ms["ctr"], "ms",
                "ratio <= 0.90", verdict(ratio(exec_ms, "ctr"), 0.90)),
            row("ps -a (100 containers) vs docker ps -a", ps_ms["pouch"], ps_ms.get("docker"), "ms",
                "ratio <= 1.00", verdict(ratio(ps_ms, "docker"), 1.00)),
            row("pouch version          vs docker version", pv, ver_ms.get("docker"), "ms",
                "~20 ms (<= 22)", pv <= 22.0),
            row("  (pouch --help: interpreter + CLI only)", ver_ms["help"], None, "ms", ""),
            row("pouchd idle RSS", idle_rss / 1024, None, "MiB", "< 80 MiB", idle_rss / 1024 < 80),
        ]
        if per_container is not None:
            lines += [
                row(f"pouchd RSS per container (at {args.many})", per_container, None, "KiB", "< 200 KiB",
                    per_container < 200),
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
