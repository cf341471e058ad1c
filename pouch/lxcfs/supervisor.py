"""LxcfsSupervisor: runs lxcfs as a child on its own mount point, notices its death, restarts it."""
import asyncio
import errno
import logging
import os
import shutil
import subprocess

from .errors import LxcfsError, LxcfsNotEnabled
from .views import available_views, oci_mounts

log = logging.getLogger(__name__)

DEFAULT_MOUNT_POINT = "/var/lib/pouch/lxcfs"


def is_mounted(mount_point: str) -> bool:
    """True when a FUSE lxcfs filesystem is mounted exactly at `mount_point` (read from mountinfo)."""
    mp = os.path.realpath(mount_point)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            if len(fields) > 4 and fields[4] == mp and right.split()[0].startswith("fuse"):
                return True
    return False


def is_alive(mount_point: str) -> bool:
    """False when the mount is gone or answers ENOTCONN ("Transport endpoint is not connected")."""
    try:
        os.stat(os.path.join(mount_point, "proc", "meminfo"))
    except OSError as e:
        if e.errno in (errno.ENOTCONN, errno.ENOENT, errno.EIO):
            return False
        raise
    return is_mounted(mount_point)


def _lazy_unmount(mount_point: str) -> None:
    """Remove a dead FUSE mount left by a killed lxcfs (fusermount -u would refuse it)."""
    if is_mounted(mount_point):
        subprocess.run(["umount", "-l", mount_point], capture_output=True)


class LxcfsSupervisor:
    """Keeps one lxcfs process serving `mount_point`.

    `start()` launches it and waits for the mount; a watcher task restarts it when it exits or
    its mount stops answering, then awaits `on_restart()` (the daemon remounts the views into
    running containers there). `stop()` ends it and unmounts.
    """

    def __init__(self, mount_point: str = DEFAULT_MOUNT_POINT, binary: str = "lxcfs",
                 on_restart=None, check_interval: float = 2.0, start_timeout: float = 10.0):
        self.mount_point = os.path.abspath(mount_point)
        self.binary = binary
        self.on_restart = on_restart
        self.check_interval = check_interval
        self.start_timeout = start_timeout
        self.proc = None
        self.restarts = 0
        self._watcher = None
        self._stopping = False

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def views(self) -> list:
        return available_views(self.mount_point)

    def oci_mounts(self) -> list:
        """OCI mounts for a container run with --enableLxcfs (LxcfsNotEnabled if lxcfs is down)."""
        if not self.proc or not is_alive(self.mount_point):
            raise LxcfsNotEnabled("lxcfs is not running: start pouchd with --enable-lxcfs")
        return oci_mounts(self.mount_point)

    async def start(self) -> None:
        path = shutil.which(self.binary)
        if not path:
            raise LxcfsNotEnabled(f"lxcfs binary {self.binary!r} not found (apt-get install lxcfs)")
        self._stopping = False
        await self._spawn(path)
        self._watcher = asyncio.get_running_loop().create_task(self._watch(path))

    async def _spawn(self, path: str) -> None:
        # detach a dead mount first: stat() of it fails with ENOTCONN, so makedirs would raise
        await asyncio.to_thread(_lazy_unmount, self.mount_point)
        os.makedirs(self.mount_point, exist_ok=True)
        pidfile = self.mount_point.rstrip("/") + ".pid"
        # -f: stay in the foreground as our child; -l: serve /proc/loadavg too;
        # --enable-cfs: cpuinfo/stat/cpu online follow the CFS quota (--cpus), not only the cpuset
        self.proc = await asyncio.create_subprocess_exec(
            path, "-f", "-l", "--enable-cfs", "-p", pidfile, self.mount_point,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        while not (is_mounted(self.mount_point) and is_alive(self.mount_point)):
            if self.proc.returncode is not None:
                err = (await self.proc.stderr.read()).decode(errors="replace").strip()
                raise LxcfsError(f"lxcfs exited with {self.proc.returncode}: {err[-400:]}")
            if loop.time() > deadline:
                raise LxcfsError(f"lxcfs did not mount {self.mount_point} within {self.start_timeout}s")
            await asyncio.sleep(0.05)
        # drain stderr so a chatty lxcfs never blocks on a full pipe
        loop.create_task(self._drain(self.proc))
        log.info("lxcfs pid %s serving %s", self.proc.pid, self.mount_point)

    @staticmethod
    async def _drain(proc):
        while await proc.stderr.read(65536):
            pass

    async def _watch(self, path: str) -> None:
        while not self._stopping:
            proc = self.proc
            try:
                await asyncio.wait_for(asyncio.shield(proc.wait()), self.check_interval)
                dead = True
            except asyncio.TimeoutError:
                dead = not await asyncio.to_thread(is_alive, self.mount_point)
            if self._stopping or not dead:
                continue
            log.warning("lxcfs died (exit %s); restarting", proc.returncode)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            try:
                await self._spawn(path)
            except LxcfsError as e:
                log.error("lxcfs restart failed: %s", e)
                await asyncio.sleep(self.check_interval)
                continue
            except Exception:   # never let supervision end on an unexpected error
                log.exception("lxcfs restart failed")
                await asyncio.sleep(self.check_interval)
                continue
            self.restarts += 1
            if self.on_restart:
                try:
                    await self.on_restart()
                except Exception:   # a failing remount must not stop supervision
                    log.exception("remounting lxcfs views after restart failed")

    async def stop(self) -> None:
        self._stopping = True
        if self._watcher:
            self._watcher.cancel()
            try:
                await self._watcher
            except (asyncio.CancelledError, Exception):
                pass
        if self.proc and self.proc.returncode is None:
            # lxcfs leaves its FUSE loop when its mount goes away; SIGTERM alone takes seconds
            await asyncio.to_thread(_lazy_unmount, self.mount_point)
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        _lazy_unmount(self.mount_point)
