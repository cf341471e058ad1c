"""What the CRI streaming server runs: exec, attach and port forwarding on pods' containers.

The streaming server (pouch.cri.streaming) speaks kubectl's and crictl's
SPDY/WebSocket channel protocols and calls this runtime with plain asyncio
streams; the work itself goes through the CRI's container and exec managers
(the same exec path as ``pouch exec``), and port forwarding connects to the
port from inside the pod's network namespace.
"""
from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import threading

from pouch.errtypes import Conflict, NotFound

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class StreamRuntime:
    def __init__(self, containers, execs, sandbox_netns) -> None:
        self.containers = containers
        self.execs = execs
        self.sandbox_netns = sandbox_netns  # sandbox id -> netns path ("" for a host-network pod)

    async def exec(self, container_id, cmd, stdin, stdout, stderr, tty, resize) -> int:
        c = self.containers.get(container_id)
        e = self.execs.create(c.id, {"Cmd": list(cmd), "AttachStdin": stdin is not None,
                                     "AttachStdout": stdout is not None, "AttachStderr": stderr is not None,
                                     "Tty": bool(tty)})
        q: asyncio.Queue = asyncio.Queue()
        e.attached.add(q)
        helpers: list[asyncio.Task] = []
        try:
            await self.execs.start(e)
            if stdin is not None:
                helpers.append(asyncio.ensure_future(self._pump_stdin(stdin, e.io.write_stdin,
                                                                      lambda: self.execs.close_stdin(e))))
            if resize is not None:
                helpers.append(asyncio.ensure_future(self._resize(resize, lambda w, h: self.execs.resize(e, h, w))))
            await _pump_out(q, stdout, stderr)
            await e.done.wait()
            return int(e.exit_code or 0)
        finally:
            for t in helpers:
                t.cancel()
            self.execs.execs.pop(e.id, None)

    async def attach(self, container_id, stdin, stdout, stderr, tty, resize) -> None:
        c = self.containers.get(container_id)
        if not c.running or c.io is None:
            raise Conflict(f"container {c.id} is not running")
        q: asyncio.Queue = asyncio.Queue()
        c.attached.add(q)
        helpers: list[asyncio.Task] = []
        try:
            if stdin is not None and c.io.has_stdin:
                io = c.io

                async def close():
                    if not c.config.get("StdinOnce"):
                        return
                    io.close_stdin()
                    try:
                        await self.containers.ctrd.task_close_stdin(c.id)
                    except Exception:
                        pass
                helpers.append(asyncio.ensure_future(self._pump_stdin(stdin, io.write_stdin, close)))
            if resize is not None:
                helpers.append(asyncio.ensure_future(self._resize(
                    resize, lambda w, h: self.containers.ctrd.task_resize(c.id, w, h))))
            await _pump_out(q, stdout, stderr)
        finally:
            c.attached.discard(q)
            for t in helpers:
                t.cancel()

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

        async def down():
            while True:
                data = await r2.read(65536)
                if not data:
                    break
                await writer.write(data)
        t_up = asyncio.ensure_future(up())
        try:
            await down()
        finally:
            t_up.cancel()
            w2.close()

    @staticmethod
    async def _pump_stdin(stdin: asyncio.StreamReader, write, close) -> None:
        while True:
            data = await stdin.read(65536)
            if not data:
                break
            await write(data)
        await close()

    @staticmethod
    async def _resize(queue: asyncio.Queue, apply) -> None:
        while True:
            w, h = await queue.get()
            try:
                await apply(int(w), int(h))
            except Exception:
                pass


async def _pump_out(q: asyncio.Queue, stdout, stderr) -> None:
    while True:
        item = await q.get()
        if item is None:
            return
        name, data = item
        target = stderr if name == "stderr" and stderr is not None else stdout
        if target is not None:
            await target.write(data)


async def _connect(netns_path: str, port: int) -> socket.socket:
    """A TCP connection to 127.0.0.1:port made inside the network namespace at ``netns_path``
    (by a short-lived thread that joins it; the socket keeps the namespace it was made in)."""
    fut = asyncio.get_running_loop().create_future()
    loop = asyncio.get_running_loop()

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
