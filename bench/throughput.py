"""Benchmark (issue 16): container start throughput from concurrent clients.

8 client threads each run the CLI `run -d busybox sleep 3600` 25 times (200 containers) at
once, against a private pouchd (own containerd, busybox loaded) and then against a private
dockerd 20.10 (bench/engines.py); both on their default bridge network.  Reported: containers
per second for each engine (wall time from the first command to the last reply), failed
commands, and whether every container is running afterwards.  Target: pouch >= 2x docker's
containers per second, no errors.  Everything is removed at the end.

    sudo .venv/bin/python bench/throughput.py [--count 200] [--clients 8] [--no-docker]
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

from bench.engines import DOCKER, HEADER, Dockerd, have_docker, row  # noqa: E402
from tests.fixtures.daemon import POUCH, PouchDaemon  # noqa: E402
from tests.fixtures.images import busybox_archive  # noqa: E402


def burst(cli: str, env: dict, count: int, clients: int) -> tuple[float, list[str]]:
    """Run `count` `run -d busybox sleep 3600` from `clients` threads; -> (seconds, errors)."""
    per = [count // clients + (1 if i < count % clients else 0) for i in range(clients)]
    errors: list[str] = []

    def client(n: int) -> None:
        for _ in range(n):
            r = subprocess.run([cli, "run", "-d", "busybox", "sleep", "3600"], capture_output=True,
                               text=True, env=env, timeout=300, check=False)
            if r.returncode != 0 or len(r.stdout.strip()) != 64:
                errors.append(f"rc={r.returncode} {r.stderr.strip()[-200:]}")

    t = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as ex:
        list(ex.map(client, per))
    return time.perf_counter() - t, errors


def running(cli: str, env: dict) -> int:
    r = subprocess.run([cli, "ps", "-q"], capture_output=True, text=True, env=env, timeout=120, check=False)
    return len(r.stdout.split())


def remove_all(cli: str, env: dict) -> None:
    ids = subprocess.run([cli, "ps", "-aq"], capture_output=True, text=True, env=env, check=False).stdout.split()
    for i in range(0, len(ids), 50):
        subprocess.run([cli, "rm", "-f", *ids[i:i + 50]], capture_output=True, env=env, timeout=600, check=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--no-docker", action="store_true", help="skip the dockerd side")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    archive = busybox_archive()

    d = PouchDaemon()
    try:
        d.start()
        d.cli("load", "-i", archive, check=True)
        penv = dict(os.environ, POUCH_HOST=d.host)
        subprocess.run([POUCH, "run", "--rm", "busybox", "true"], env=penv, check=True)  # warm
        p_s, p_err = burst(POUCH, penv, args.count, args.clients)
        p_up = running(POUCH, penv)
        remove_all(POUCH, penv)
    finally:
        d.cleanup()

    d_s, d_err, d_up = None, [], 0
    if not args.no_docker and have_docker():
        dk = Dockerd(tempfile.mkdtemp(prefix="pouch-bench-docker-"))
        try:
            dk.start()
            if dk.docker("load", "-i", archive).returncode != 0:
                raise SystemExit("docker load failed")
            dk.docker("run", "--rm", "busybox", "true")  # warm
            d_s, d_err = burst(DOCKER, dk.env, args.count, args.clients)
            d_up = running(DOCKER, dk.env)
            remove_all(DOCKER, dk.env)
        finally:
            dk.stop()

    p_rate = args.count / p_s
    d_rate = args.count / d_s if d_s else None
    print(f"throughput: {args.count} x `run -d busybox sleep 3600` from {args.clients} clients; "
          f"{os.cpu_count()} CPUs; both engines on their default bridge")
    print(f"pouch: {p_s:.1f} s, {len(p_err)} errors, {p_up} running; "
          + (f"docker: {d_s:.1f} s, {len(d_err)} errors, {d_up} running" if d_s else "docker: not run"))
    for e in (p_err + d_err)[:5]:
        print("  error:", e)
    print()
    print(HEADER)
    # containers per second: higher is better, so the ratio that must reach 2 is pouch / docker
    met = None if d_rate is None else (p_rate >= 2 * d_rate and not p_err and p_up == args.count)
    print(row(f"run -d x{args.count}, {args.clients} clients (ctr/s)", p_rate, d_rate, "1/s",
              "ratio >= 2.00", met))
    print(row("errors (pouch; docker in 'other')", len(p_err), len(d_err) if d_s else None, "", "0",
              not p_err))
    return 0 if met in (None, True) else 1


if __name__ == "__main__":
    sys.exit(main())
