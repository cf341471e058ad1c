"""`pouch logs --tail 10` vs `docker logs --tail 10` on a container that wrote ~60 MB (issue 10).

Starts a private pouchd (busybox loaded) and a private dockerd (bench/engines.py's Dockerd, with
--bridge=none), runs in each a container printing ~60 MB of 100-byte lines to its json-file log,
then times `logs --tail 10` alternately on both (median of --runs) and reports the ratio
(target <= 1.0x) and pouchd's RSS growth over the logs calls (target < 20 MB).

    sudo .venv/bin/python bench/logs_tail.py [--runs 20] [--mb 60]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.engines import DOCKER, DOCKERD, Dockerd, rss_kib, timed  # noqa: E402
from tests.fixtures.daemon import POUCH, PouchDaemon  # noqa: E402
from tests.fixtures.images import busybox_archive  # noqa: E402

LINE = "x" * 99  # + newline: 100 bytes a line


def hwm_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--mb", type=int, default=60, help="megabytes the container prints")
    ap.add_argument("--no-docker", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    size = a.mb * 1000 * 1000
    cmd = ["sh", "-c", f"yes {LINE} | head -c {size}"]
    archive = busybox_archive()
    d, dk = PouchDaemon(), None
    try:
        d.start()
        assert d.cli("load", "-i", archive).returncode == 0
        penv = dict(os.environ, POUCH_HOST=d.host)
        r = d.cli("run", "--name", "bench-logs", "--net", "none", "busybox", *cmd, timeout=900)
        assert r.returncode == 0, r.stderr
        log_path = d.cli("inspect", "-f", "{{.LogPath}}", "bench-logs").stdout.strip()
        if not a.no_docker and os.path.exists(DOCKERD) and os.path.exists(DOCKER):
            dk = Dockerd(tempfile.mkdtemp(prefix="pouch-bench-docker-"), bridge=False)
            dk.start()
            assert dk.docker("load", "-i", archive).returncode == 0
            r = dk.docker("run", "--name", "bench-logs", "--network", "none", "busybox", *cmd, timeout=900)
            assert r.returncode == 0, r.stderr[-500:]
        p_cmd = [POUCH, "logs", "--tail", "10", "bench-logs"]
        d_cmd = [DOCKER, "logs", "--tail", "10", "bench-logs"]
        for _ in range(2):  # warm-up (page cache, both CLIs)
            timed(p_cmd, penv)
            if dk:
                timed(d_cmd, dk.env)
        rss0, hwm0 = rss_kib(d.proc.pid), hwm_kib(d.proc.pid)
        pt, dt = [], []
        for _ in range(a.runs):
            pt.append(timed(p_cmd, penv))
            if dk:
                dt.append(timed(d_cmd, dk.env))
        rss1, hwm1 = rss_kib(d.proc.pid), hwm_kib(d.proc.pid)
        pm = statistics.median(pt) * 1000
        print(f"log: {a.mb} MB printed, pouch json log {os.path.getsize(log_path) / 1e6:.0f} MB on disk")
        print(f"{'logs --tail 10 (median of %d)' % a.runs:<36}{'pouch':>10}{'docker':>10}{'ratio':>8}")
        if dk:
            dm = statistics.median(dt) * 1000
            print(f"{'':<36}{pm:>8.1f}ms{dm:>8.1f}ms{pm / dm:>8.2f}   (target <= 1.0)")
        else:
            print(f"{'':<36}{pm:>8.1f}ms{'-':>10}{'-':>8}")
        print(f"pouchd RSS growth over the logs calls: {(rss1 - rss0) / 1024:.1f} MiB "
              f"(peak RSS growth {(hwm1 - hwm0) / 1024:.1f} MiB; target < 20)")
    finally:
        d.cli("rm", "-f", "bench-logs")
        d.cleanup()
        if dk:
            dk.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
