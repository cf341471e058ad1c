"""A process's stdio: the FIFOs handed to containerd and the fan-out of what comes back.

The FIFOs live under ``<run dir>/fifo/<id>/``.  pouchd opens its ends
``O_RDWR | O_NONBLOCK`` so opening never blocks and the pipes never see EOF
or EPIPE while pouchd is away: after a restart the new pouchd reopens the
same paths and reads what the container wrote meanwhile.  Output goes to the
log driver and to every attached client; stdin comes from one attached client.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil

log = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024


class ProcessIO:
    def __init__(self, fifo_dir: str, tty: bool, stdin: bool, logger=None,
                 subscribers: set | None = None) -> None:
        self.dir = fifo_dir
        self.tty = tty
        self.has_stdin = stdin
        self.logger = logger
        self._log_failed = False
        self.stdin_path = os.path.join(fifo_dir, "stdin") if stdin else ""
        self.stdout_path = os.path.join(fifo_dir, "stdout")
        self.stderr_path = "" if tty else os.path.join(fifo_dir, "stderr")
        self._fds: dict[str, int] = {}
        self._stdin_fd: int | None = None
        self.subscribers: set[asyncio.Queue] = subscribers if subscribers is not None else set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    def open(self) -> None:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self._loop = asyncio.get_running_loop()
        for name, path in (("stdout", self.stdout_path), ("stderr", self.stderr_path)):
            if not path:
                continue
            _mkfifo(path)
            fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
            self._fds[name] = fd
            self._loop.add_reader(fd, self._readable, name, fd)
        if self.stdin_path:
            _mkfifo(self.stdin_path)
            self._stdin_fd = os.open(self.stdin_path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)

    def _readable(self, name: str, fd: int) -> None:
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            return
        if data:
            self._dispatch(name, data)

    def _dispatch(self, name: str, data: bytes) -> None:
        if self.logger is not None:
            try:
                self.logger.write(name, data)
            except OSError as e:  # a full disk loses log lines, never the attached client's output
                if not self._log_failed:
                    log.warning("container log %s: %s; lines are dropped until it can be written",
                                self.dir, e)
                self._log_failed = True
            else:
                self._log_failed = False
        for q in list(self.subscribers):
            q.put_nowait((name, data))

    def drain(self) -> None:
        """Read whatever is left in the pipes (after the shim has flushed them)."""
        for name, fd in self._fds.items():
            while True:
                try:
                    data = os.read(fd, READ_CHUNK)
                except (BlockingIOError, OSError):
                    break
                if not data:
                    break
                self._dispatch(name, data)

    def subscribe(self) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue()
        self.subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        self.subscribers.discard(q)

    async def write_stdin(self, data: bytes) -> None:
        fd = self._stdin_fd
        view = memoryview(data)
        while view and fd is not None:
            try:
                n = os.write(fd, view)
                view = view[n:]
            except BlockingIOError:
                await asyncio.sleep(0.005)
            except OSError as e:
                if e.errno == errno.EPIPE:
                    return
                raise
            fd = self._stdin_fd

    def close_stdin(self) -> None:
        if self._stdin_fd is not None:
            os.close(self._stdin_fd)
            self._stdin_fd = None

    def close(self, remove: bool = True) -> None:
        """Drain, notify subscribers of the end, release the fds (and FIFOs)."""
        if self.closed:
            return
        self.drain()
        self.closed = True
        if self.logger is not None:
            self.logger.flush()
        for name, fd in self._fds.items():
            if self._loop is not None:
                self._loop.remove_reader(fd)
            os.close(fd)
        self._fds.clear()
        self.close_stdin()
        for q in list(self.subscribers):
            q.put_nowait(None)
        self.subscribers.clear()
        if remove:
            self.remove_fifos()

    def remove_fifos(self) -> None:
        """Unlink our FIFOs and their directory (cheaper than rmtree's walk); rmtree whatever else."""
        for path in (self.stdin_path, self.stdout_path, self.stderr_path):
            if path:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
                except OSError:
                    break
        try:
            os.rmdir(self.dir)
        except FileNotFoundError:
            pass
        except OSError:
            shutil.rmtree(self.dir, ignore_errors=True)


def _mkfifo(path: str) -> None:
    try:
        os.mkfifo(path, 0o600)
    except FileExistsError:
        pass
