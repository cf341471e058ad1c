"""What the CRI streaming server runs: exec, attach and port forwarding on pods' containers.

The streaming server (pouch.cri.streaming) speaks kubectl's and crictl's
SPDY/WebSocket channel protocols and calls this runtime with plain asyncio
streams.  Exec and attach go through the CRI container manager's own
``exec_start`` / ``attach`` (one AttachSession, as for the HTTP face): ``_Conn``
presents the streams as the session's client connection.  Port forwarding
connects to the port from inside the pod's network namespace.
"""
from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import threading

from pouch.errtypes import NotFound

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class _Conn:
    """An AttachSession client over the streaming server's stdin reader and stdout/stderr writers."""

    def __init__(self, stdin: asyncio.StreamReader | None, stdout, stderr) -> None:
        self.input: asyncio.Queue = asyncio.Queue()
        self.out = {"stdout": stdout, "stderr": stderr}
        self.pending: list[tuple[str, bytes]] = []
        self.closed = False
        self._pump = asyncio.ensure_future(self._read(stdin)) if stdin is not None else None

    async def _read(self, stdin: asyncio.StreamReader) -> None:
        while True:
            data = await stdin.read(65536)
            self.input.put_nowait(data or None)
            if not data:
                return

    def write(self, stream: str, data: bytes) -> None:
        self.pending.append((stream, data))

    async def drain(self) -> None:
        while self.pending:
            stream, data = self.pending.pop(0)
            target = self.out.get(stream) or self.out["stdout"]
            if target is None:
                continue
            try:
                await target.write(data)
            except (ConnectionError, OSError):
                self.closed = True
                return

    def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()


class StreamRuntime:
    def __init__(self, containers, sandbox_netns) -> None:
        self.containers = containers          # the CRI's ContainerManager
        self.sandbox_netns = sandbox_netns    # sandbox id -> netns path ("" host network, None unknown)

    async def exec(self, container_id, cmd, stdin, stdout, stderr, tty, resize) -> int:
        mgr = self.containers
        body = {"Cmd": list(cmd), "AttachStdin": stdin is not None, "AttachStdout": stdout is not None,
                "AttachStderr": stderr is not None, "Tty": bool(tty)}
        first = _queued_size(resize) if tty else None
        if first is not None:  # the client's terminal size, there before the process asks for it
            body["ConsoleSize"] = [first[1], first[0]]
        e = mgr.exec_create(container_id, body)
        conn = _Conn(stdin, stdout, stderr)

        async def open_stream(_tty: bool):
            return conn
        sizer = asyncio.ensure_future(_resize(resize, lambda w, h: mgr.exec_resize(e.id, h, w))) \
            if resize is not None else None
        try:
            await mgr.exec_start(e.id, open_stream)
            await e.done.wait()
            return int(e.exit_code or 0)
        finally:
            if sizer is not None:
                sizer.cancel()
            await conn.drain()

    async def attach(self, container_id, stdin, stdout, stderr, tty, resize) -> None:
        mgr = self.containers
        conn = _Conn(stdin, stdout, stderr)

        async def open_stream(_tty: bool):
            return conn
        sizer = asyncio.ensure_future(_resize(resize, lambda w, h: mgr.resize(container_id, h, w))) \
            if resize is not None else None
        try:
            await mgr.attach(container_id, open_stream, stdin=stdin is not None, stdout=stdout is not None,
                             stderr=stderr is not None)
        finally:
            if sizer is not None:
                sizer.cancel()
            await conn.drain()

    async def port_forward(self, sandbox_id, port, reader, writer) -> None:
        path = self.sandbox_netns(sandbox_id)
        if path is None:
            raise NotFound(f"pod sandbox {sandbox_id} not found")
        sock = await _connect(path, int(port))
        r2, w2 = await asyncio.open_connection(sock=sock)

        async def up():
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                w2.write(data)
                await w2.drain()
            try:
                w2.write_eof()
            except OSError:
                pass
        t_up = asyncio.ensure_future(up())
        try:
            while True:
                data = await r2.read(65536)
                if not data:
                    break
                await writer.write(data)
        finally:
            t_up.cancel()
            w2.close()


def _queued_size(queue: asyncio.Queue | None) -> tuple[int, int] | None:
    """The last (width, height) the client has sent so far, taken off the queue, or None."""
    size = None
    while queue is not None and not queue.empty():
        w, h = queue.get_nowait()
        size = (int(w), int(h))
    return size


async def _resize(queue: asyncio.Queue, apply) -> None:
    while True:
        w, h = await queue.get()
        try:
            await apply(int(w), int(h))
        except Exception:  # not running yet, or gone: the next size will do
            pass


async def _connect(netns_path: str, port: int) -> socket.socket:
    """A TCP connection to 127.0.0.1:port made inside the network namespace at ``netns_path``
    (by a short-lived thread that joins it; the socket keeps the namespace it was made in)."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def run():
        try:
            if netns_path:
                own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
                target = os.open(netns_path, os.O_RDONLY)
                try:
                    if _libc.setns(target, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns")
                    try:
                        s = socket.create_connection(("127.0.0.1", port), timeout=5)
                    finally:
                        _libc.setns(own, CLONE_NEWNET)
                finally:
                    os.close(own)
                    os.close(target)
            else:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.setblocking(False)
            loop.call_soon_threadsafe(fut.set_result, s)
        except BaseException as e:
            loop.call_soon_threadsafe(fut.set_exception, e)
    threading.Thread(target=run, daemon=True).start()
    return await fut
