"""One pouchd per home, socket and containerd: the start-up claims and the pid file.

A pouchd holds an exclusive flock on ``<home>/pouchd.lock`` and on a lock named after its
containerd (address and namespace) for as long as it runs; both files hold its pid, so a second
pouchd refuses to start naming the running one.  A unix listen socket that still answers is
never unlinked: whoever listens on it (pid from SO_PEERCRED) is named instead.  The claims are
made before anything else at start-up, so a refused start leaves nothing behind.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import socket
import struct

LOCK_DIR = "/run/lock/pouchd"   # containerd claims of pouchds whose containerd lives elsewhere


class AlreadyRunning(Exception):
    """Another pouchd holds what this one needs; the message names its pid."""


def _read_pid(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 32).decode().strip() or "?"
    except OSError:
        return "?"


class InstanceClaims:
    """The flocks this pouchd holds (released when it exits or by release())."""

    def __init__(self) -> None:
        self._fds: list[tuple[int, str]] = []
        self._made: list[str] = []   # directories and lock files the claims created

    def claim(self, path: str, what: str) -> None:
        """Take an exclusive lock on ``path``, writing our pid into it; AlreadyRunning if held."""
        missing = []
        d = os.path.dirname(path)
        while d and not os.path.isdir(d):
            missing.append(d)
            d = os.path.dirname(d)
        os.makedirs(os.path.dirname(path), mode=0o711, exist_ok=True)
        self._made += reversed(missing)
        if not os.path.exists(path):
            self._made.append(path)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            pid = _read_pid(fd)
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise AlreadyRunning(f"another pouchd (pid {pid}) is running on {what}") from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fds.append((fd, path))

    def release(self) -> None:
        for fd, _ in self._fds:
            os.close(fd)
        self._fds.clear()

    def undo(self) -> None:
        """A refused start: release and remove what the claims created (nothing left behind)."""
        self.release()
        for path in reversed(self._made):
            try:
                os.rmdir(path) if os.path.isdir(path) else os.unlink(path)
            except OSError:
                pass
        self._made.clear()


def containerd_lock_path(address: str, namespace: str) -> str:
    key = hashlib.sha256(f"{os.path.realpath(address)}\0{namespace}".encode()).hexdigest()[:24]
    return os.path.join(LOCK_DIR, f"containerd-{key}.lock")


def socket_owner(path: str) -> int | None:
    """The pid listening on unix socket ``path`` if it accepts connections, else None (stale)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1)
    try:
        s.connect(path)
    except OSError:
        return None
    try:
        cred = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return struct.unpack("3i", cred)[0]
    finally:
        s.close()


def check_socket_free(path: str) -> None:
    """AlreadyRunning if a live server listens on ``path``; a stale socket file may be replaced."""
    if not os.path.exists(path):
        return
    pid = socket_owner(path)
    if pid is not None:
        raise AlreadyRunning(f"socket {path} is in use by a running process (pid {pid}): "
                             f"another pouchd listens there")


def write_pidfile(path: str) -> None:
    """``--pidfile``: refuse when it names a live pouchd other than us, else write our pid."""
    try:
        with open(path) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        pid = 0
    if pid and pid != os.getpid() and _is_pouchd(pid):
        raise AlreadyRunning(f"pid file {path} names a running pouchd (pid {pid})")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(tmp, path)


def remove_pidfile(path: str) -> None:
    try:
        with open(path) as f:
            if f.read().strip() != str(os.getpid()):
                return
        os.unlink(path)
    except OSError:
        pass


def _is_pouchd(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"pouchd" in f.read()
    except OSError:
        return False
