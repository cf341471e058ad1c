"""Start and supervise pouchd's own containerd.

pouchd runs a private containerd (own socket, root and state directories
under pouchd's home and run dir) so it never collides with a system
containerd.  containerd runs in its own session: killing pouchd leaves it and
every shim running, and the next pouchd adopts the same containerd through
its pid file instead of starting a second one.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import time

log = logging.getLogger(__name__)

# Plugins pouchd never uses: skipping them makes containerd start faster.
DISABLED_PLUGINS = [
    "io.containerd.grpc.v1.cri",
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
    "io.containerd.tracing.processor.v1.otlp",
    "io.containerd.internal.v1.tracing",
]


def render_config(root: str, state: str, address: str) -> str:
    disabled = ", ".join(f'"{p}"' for p in DISABLED_PLUGINS)
    return f"""version = 2
root = "{root}"
state = "{state}"
oom_score = 0
disabled_plugins = [{disabled}]

[grpc]
  address = "{address}"
  max_recv_message_size = 16777216
  max_send_message_size = 16777216

[ttrpc]
  address = "{address}.ttrpc"

[debug]
  level = "warn"

[plugins."io.containerd.gc.v1.scheduler"]
  pause_threshold = 0.02
  deletion_threshold = 0
  mutation_threshold = 100
  schedule_delay = "0s"
  startup_delay = "100ms"
"""


def containerd_env() -> dict[str, str]:
    """pouchd's environment, plus GOGC=400 unless the operator set GOGC.

    Pulls stream every byte through containerd twice (content write, then apply), one freshly
    allocated buffer per gRPC message; at Go's default GOGC=100 its garbage collector took ~15%
    of containerd's CPU in a pull, and cold pulls ran 10-15% slower (bench/registry_pull.py).
    400 costs about 40 MB more peak heap while pulling.
    """
    env = dict(os.environ)
    env.setdefault("GOGC", "400")
    return env


class Containerd:
    """A containerd process owned by pouchd (started, watched, restarted)."""

    def __init__(self, home: str, run_dir: str, binary: str = "containerd") -> None:
        self.root = os.path.join(home, "containerd", "root")
        self.state = os.path.join(run_dir, "containerd", "state")
        self.address = os.path.join(run_dir, "containerd", "containerd.sock")
        self.config_path = os.path.join(run_dir, "containerd", "config.toml")
        self.pid_file = os.path.join(run_dir, "containerd", "containerd.pid")
        self.log_path = os.path.join(home, "containerd", "containerd.log")
        self.binary = binary
        self.pid: int | None = None
        self._watch: asyncio.Task | None = None
        self._stopping = False
        self._proc: subprocess.Popen | None = None  # kept so it is not reaped by __del__

    # -- process helpers -------------------------------------------------
    def _alive_pid(self) -> int | None:
        try:
            with open(self.pid_file) as f:
                pid = int(f.read().strip())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except (OSError, ValueError):
            return None
        if cmd and os.path.basename(cmd[0].decode()) == os.path.basename(self.binary) \
                and self.config_path.encode() in cmd:
            return pid
        return None

    def _spawn(self) -> int:
        for d in (self.root, self.state, os.path.dirname(self.address), os.path.dirname(self.log_path)):
            os.makedirs(d, mode=0o711, exist_ok=True)
        with open(self.config_path, "w") as f:
            f.write(render_config(self.root, self.state, self.address))
        if os.path.exists(self.address):
            os.unlink(self.address)
        # subprocess forks and execs in C: no Python code runs in the child, which
        # matters because pouchd has gRPC threads (a bare os.fork() child can
        # deadlock on a lock one of them held).  Own session: never killed with pouchd.
        with open(self.log_path, "ab") as logf:
            self._proc = subprocess.Popen([self.binary, "--config", self.config_path],
                                          stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                          start_new_session=True, close_fds=True, env=containerd_env())
        pid = self._proc.pid
        with open(self.pid_file, "w") as f:
            f.write(str(pid))
        return pid

    async def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(self.address):
                try:
                    _, w = await asyncio.open_unix_connection(self.address)
                    w.close()
                    return
                except OSError:
                    pass
            if self.pid and not _pid_alive(self.pid):
                raise RuntimeError(f"containerd exited at start-up; see {self.log_path}")
            await asyncio.sleep(0.02)
        raise RuntimeError(f"containerd did not come up within {timeout}s; see {self.log_path}")

    # -- public ------------------------------------------------------------
    async def start(self) -> None:
        pid = self._alive_pid()
        if pid:
            log.info("adopting running containerd pid %d", pid)
            self.pid = pid
        else:
            self.pid = self._spawn()
            log.info("started containerd pid %d", self.pid)
        await self._wait_ready()
        self._watch = asyncio.get_running_loop().create_task(self._supervise())

    async def _supervise(self) -> None:
        while not self._stopping:
            await asyncio.sleep(0.5)
            if self._stopping:
                return
            if self.pid and not _pid_alive(self.pid):
                log.warning("containerd (pid %s) died; restarting it", self.pid)
                self.pid = self._spawn()
                try:
                    await self._wait_ready()
                except RuntimeError as e:
                    log.error("%s", e)

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        if self._watch:
            self._watch.cancel()
        if not self.pid:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _pid_alive(self.pid):
            await asyncio.sleep(0.05)
        if _pid_alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)
        try:
            os.unlink(self.pid_file)
        except OSError:
            pass


def _pid_alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False
