"""Density bench (issue 16): N running `sleep` containers on one small host, pouch vs docker 20.10.

Starts its own pouchd (own containerd, busybox loaded, ``--shim-group-size G``) and a private
dockerd, then reports (bench.engines.row, met / NOT MET):

* time to start N `sleep` containers (8 concurrent `run -d` clients), pouch vs docker;
* memory per running container across every process (pouchd + containerd + shims + the
  containers' own processes), PSS from /proc/<pid>/smaps_rollup (RSS beside it): total / N
  (target <= 3 MB), and each part per container; pouchd RSS and containerd RSS;
* `pouch ps` vs `docker ps` with N running each (paired, alternated; target <= 0.3x);
* pouchd SIGKILL + restart: seconds until the API answers and until `pouch ps` lists all N
  running (target < 10 s).

Both engines run the containers on their default bridge network (pouch's bridge gets a /21 so
1,000 fit; docker's too).  Everything created (containers, shims, netns, bridges, dockerd) is
removed at the end, also on failure.

    sudo flock /tmp/pouch-bench.lock .venv/bin/python bench/density.py [--count 1000] [--group-size 16]
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

from bench.engines import DOCKER, HEADER, Dockerd, have_docker, paired, row
from tests.fixtures.daemon import POUCH, PouchDaemon
from tests.fixtures.images import busybox_archive

MB = 1024.0  # KiB per MiB


def mem_kib(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in KiB; (0, 0) when it is gone."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


def processes() -> dict[int, tuple[int, list[bytes]]]:
    """pid -> (parent pid, argv) of every readable process."""
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat", "rb") as f:
                stat = f.read()
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        out[int(p)] = (int(stat[stat.rindex(b")") + 2:].split()[1]), argv)
    return out


def descendants(procs: dict, roots: set[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = set(), list(roots)
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def breakdown(engine_pid: int, containerd_pid: int, shim_match: bytes) -> dict[str, tuple[int, int, int]]:
    """part -> (processes, PSS KiB, RSS KiB): the engine daemon, its containerd, the shims whose
    argv holds ``shim_match``, and every process below those shims (the containers')."""
    procs = processes()
    shims = {pid for pid, (_, argv) in procs.items()
             if argv and b"containerd-shim" in argv[0] and shim_match in argv}
    parts = {"daemon": {engine_pid}, "containerd": {containerd_pid}, "shims": shims,
             "containers": descendants(procs, shims)}
    out = {}
    for name, pids in parts.items():
        pss = rss = 0
        for pid in pids:
            a, b = mem_kib(pid)
            pss, rss = pss + a, rss + b
        out[name] = (len(pids), pss, rss)
    return out


def run_many(argv_of, n: int, env: dict, workers: int = 8) -> tuple[float, int, str]:
    """(seconds, failures, first error) of running ``argv_of(i)`` for i < n from ``workers``
    concurrent clients."""
    errors: list[str] = []

    def one(i: int) -> None:
        r = subprocess.run(argv_of(i), check=False, capture_output=True, text=True, env=env, timeout=300)
        if r.returncode != 0:
            errors.append(f"{' '.join(argv_of(i))}: {r.returncode} {r.stderr[-300:]}")
    t = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        list(ex.map(one, range(n)))
    return time.perf_counter() - t, len(errors), (errors or [""])[0]


def count_running(argv: list[str], env: dict) -> int:
    r = subprocess.run(argv, check=False, capture_output=True, text=True, env=env, timeout=120)
    return len(r.stdout.split()) if r.returncode == 0 else -1


def pouch_containerd_pid(d: PouchDaemon) -> int:
    with open(os.path.join(d.run_dir, "containerd", "containerd.pid")) as f:
        return int(f.read().strip())


def docker_containerd_pid(dk: Dockerd) -> int:
    procs = processes()
    return next(pid for pid, (ppid, argv) in procs.items()
                if ppid == dk.proc.pid and argv and os.path.basename(argv[0]) == b"containerd")


def remove_all(d: PouchDaemon, workers: int = 8) -> None:
    r = d.cli("ps", "-aq", timeout=120)
    ids = r.stdout.split() if r.returncode == 0 else []

    def one(cid: str) -> None:
        d.api("DELETE", f"/containers/{cid}?force=1", timeout=120)
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        list(ex.map(one, ids))


def report_memory(label: str, parts: dict, n: int, lines: list[str], target: bool) -> float:
    total_pss = sum(p[1] for p in parts.values())
    per = total_pss / n / MB
    lines.append(row(f"{label}: memory per container, PSS all procs", per, None, "MiB",
                     "<= 3 MB" if target else "", (per <= 3.0) if target else None))
    lines.append(row(f"{label}:   RSS all procs / N (shared counted N x)",
                     sum(p[2] for p in parts.values()) / n / MB, None, "MiB"))
    for name, (count, pss, rss) in parts.items():
        lines.append(row(f"{label}:   {name} ({count} procs) PSS / N", pss / n / MB, None, "MiB"))
    return per


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1000, help="running containers per engine")
    ap.add_argument("--docker-count", type=int, default=None, help="docker's (default: --count)")
    ap.add_argument("--group-size", type=int, default=16, help="pouchd --shim-group-size")
    ap.add_argument("--runs", type=int, default=5, help="paired ps runs")
    ap.add_argument("--no-docker", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    n = args.count
    dn = args.docker_count if args.docker_count is not None else n
    docker = have_docker() and not args.no_docker and dn > 0
    print("machine: 2 cores, shared with other jobs (loaded): ratios, not absolute times")
    print(HEADER, flush=True)
    lines = _Lines()
    d = PouchDaemon(extra_args=["--bridge-name", "pdens0", "--bip", "10.212.0.1/21",
                                "--shim-group-size", str(args.group_size)])
    dk = None
    try:
        d.start(timeout=60)
        d.cli("load", "-i", busybox_archive(), check=True)
        penv = dict(os.environ, POUCH_HOST=d.host)
        idle = breakdown(d.proc.pid, pouch_containerd_pid(d), os.path.join(d.run_dir, "containerd", "containerd.sock").encode())
        t_pouch, failed, err = run_many(
            lambda i: [POUCH, "run", "-d", "--name", f"dens{i}", "busybox", "sleep", "36000"], n, penv)
        if failed:
            raise SystemExit(f"pouch: {failed} of {n} runs failed: {err}")
        assert count_running([POUCH, "ps", "-q"], penv) == n
        time.sleep(2)  # let the last starts' transient allocations settle
        parts = breakdown(d.proc.pid, pouch_containerd_pid(d), os.path.join(d.run_dir, "containerd", "containerd.sock").encode())
        lines.append(f"# pouch: {n} x `busybox sleep`, default bridge network, --shim-group-size {args.group_size}")
        report_memory("pouch", parts, n, lines, target=True)
        marginal = (sum(p[1] for p in parts.values()) - idle["daemon"][1] - idle["containerd"][1]) / n / MB
        lines.append(row("pouch:   less idle pouchd+containerd, per container", marginal, None, "MiB"))
        lines.append(row("pouchd RSS (idle -> with N)", parts["daemon"][2] / MB, idle["daemon"][2] / MB, "MiB"))
        lines.append(row("pouch's containerd RSS (idle -> with N)", parts["containerd"][2] / MB,
                         idle["containerd"][2] / MB, "MiB"))

        # pouchd SIGKILL + restart: adopts all N
        d.kill9()
        t0 = time.perf_counter()
        d.start(timeout=120)
        t_api = time.perf_counter() - t0
        while count_running([POUCH, "ps", "-q"], penv) != n:
            if time.perf_counter() - t0 > 300:
                raise SystemExit("restarted pouchd did not list every container in 300 s")
            time.sleep(0.05)
        t_adopt = time.perf_counter() - t0
        lines.append(row("pouchd SIGKILL+restart: API answers", t_api, None, "s"))
        lines.append(row(f"pouchd SIGKILL+restart: ps lists all {n}", t_adopt, None, "s", "< 10 s", t_adopt < 10))

        if docker:
            dk = Dockerd(tempfile.mkdtemp(prefix="pouch-bench-density-"))
            dk.extra_args = ["--bip", "172.31.248.1/21"]  # 1,000 addresses: a /21
            dk.start()
            r = dk.docker("load", "-i", busybox_archive())
            if r.returncode != 0:
                raise SystemExit("docker load: " + r.stderr)
            t_docker, failed, err = run_many(
                lambda i: [DOCKER, "run", "-d", "--name", f"dens{i}", "busybox", "sleep", "36000"], dn, dk.env)
            if failed:  # measure what runs, and say what did not
                lines.append(f"# docker: {failed} of {dn} runs failed, first: {err.strip()[:200]}")
                dn = count_running([DOCKER, "ps", "-q"], dk.env)
            lines.append(row(f"start {n} (pouch) / {dn} (docker), 8 clients", t_pouch, t_docker, "s"))
            time.sleep(2)
            dparts = breakdown(dk.proc.pid, docker_containerd_pid(dk), b"bench-moby")
            lines.append(f"# docker: {dn} x `busybox sleep`, default bridge network (a shim each)")
            report_memory("docker", dparts, dn, lines, target=False)
            lines.append(row("dockerd RSS", dparts["daemon"][2] / MB, None, "MiB"))
            env = {**dk.env, "POUCH_HOST": d.host}
            pms, dms = paired([POUCH, "ps"], [DOCKER, "ps"], env, args.runs)
            lines.append(row(f"ps with {n} (pouch) / {dn} (docker) running", pms, dms, "ms", "<= 0.3x",
                             pms / dms <= 0.3))
        else:
            lines.append(row(f"start {n}, 8 clients", t_pouch, None, "s"))
    finally:
        if dk is not None:
            dk.stop()
        if d.proc is not None:
            remove_all(d)
        d.cleanup()
    return 0


class _Lines(list):
    """The table's lines, each printed as soon as it is known (a failure later keeps them)."""

    def append(self, line: str) -> None:
        super().append(line)
        print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
