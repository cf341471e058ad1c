"""Engines the benches compare pouch with: a private dockerd 20.10 (Debian's docker.io) and
helpers to time commands and read RSS.  Every bench imports these from here."""
from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import time

from tests.fixtures.daemon import lazy_umount_under

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"
CTR = shutil.which("ctr") or "/usr/bin/ctr"


def have_docker() -> bool:
    """Debian's dockerd and a docker CLI are installed (`make bench` installs docker.io)."""
    return os.path.exists(DOCKERD) and os.path.exists(DOCKER)


def timed(argv: list[str], env: dict | None = None) -> float:
    t = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, env=env)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.decode()[-500:]}")
    return dt


def paired(a: list[str], b: list[str], env: dict, runs: int) -> tuple[float, float]:
    """Median ms of commands a and b, alternated (drift hits both alike) after 3 untimed pairs."""
    for _ in range(3):
        timed(a, env), timed(b, env)
    ta, tb = [], []
    for _ in range(runs):
        ta.append(timed(a, env))
        tb.append(timed(b, env))
    return statistics.median(ta) * 1000, statistics.median(tb) * 1000


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Dockerd:
    """A private dockerd 20.10 for side-by-side numbers (own data root, exec root, socket,
    containerd namespace; no iptables rules; bridge docker0 on 172.31.251.1/24, or none)."""

    def __init__(self, base: str, extra_args: list[str] = (), bridge: bool = True) -> None:
        self.extra_args = list(extra_args) + (["--bip", "172.31.251.1/24"] if bridge else ["--bridge=none"])
        self.base = base
        self.sock = os.path.join(base, "docker.sock")
        self.proc: subprocess.Popen | None = None
        self.env = dict(os.environ, DOCKER_HOST="unix://" + self.sock,
                        DOCKER_CONFIG=os.path.join(base, "cli-config"))

    def start(self) -> None:
        self.had_docker0 = os.path.exists("/sys/class/net/docker0")
        os.makedirs(self.base, exist_ok=True)
        args = [DOCKERD, "--data-root", os.path.join(self.base, "data"),
                "--exec-root", os.path.join(self.base, "exec"),
                "--pidfile", os.path.join(self.base, "docker.pid"),
                "-H", "unix://" + self.sock, "--iptables=false", "--ip-masq=false",
                "--containerd-namespace", "bench-moby",
                "--containerd-plugins-namespace", "bench-moby-plugins", *self.extra_args]
        self.log = open(os.path.join(self.base, "dockerd.log"), "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("dockerd exited; see " + self.log.name)
            if self.docker("version").returncode == 0:
                return
            time.sleep(0.2)
        raise SystemExit("dockerd did not come up; see " + self.log.name)

    def docker(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([DOCKER, *args], capture_output=True, text=True, env=self.env, **kw)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            ids = self.docker("ps", "-aq").stdout.split()
            if ids:
                self.docker("rm", "-f", *ids)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not getattr(self, "had_docker0", True):  # the bridge dockerd made for the bench
            subprocess.run(["ip", "link", "del", "docker0"], capture_output=True)
        lazy_umount_under(self.base)
        shutil.rmtree(self.base, ignore_errors=True)


def median_ms(xs: list[float]) -> float:
    return statistics.median(xs) * 1000


HEADER = f"{'measure':<46}{'pouch':>10}{'other':>10}{'ratio':>8}  {'unit':<5} {'target':<16} verdict"


def row(name: str, a: float, b: float | None, unit: str, target: str = "",
        met: bool | None = None) -> str:
    """One line of the bench table: pouch's figure, the other engine's, the ratio, the target
    and, where the target is a number, `met` / `NOT MET` (met=None: informational)."""
    ratio = f"{a / b:.2f}" if b else "-"
    bs = f"{b:.1f}" if b is not None else "-"
    verdict = "" if met is None else ("met" if met else "NOT MET")
    return f"{name:<46}{a:>10.1f}{bs:>10}{ratio:>8}  {unit:<5} {target:<16} {verdict}"
