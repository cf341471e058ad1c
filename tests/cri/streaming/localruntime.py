"""A runtime for protocol tests of the streaming server: its "containers" are local processes.

exec runs the command as a real subprocess (pipes, or a pseudo-terminal for a TTY, resized with
TIOCSWINSZ); attach runs the command registered for the container id; port_forward connects to
127.0.0.1:port. The CRI's own runtime (containers in pods) is tested with the CRI service.
"""
from __future__ import annotations

import asyncio
import fcntl
import os
import struct
import termios


async def _pump_in(reader, write, close) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            await write(data)
    except (BrokenPipeError, ConnectionError, OSError):
        pass
    finally:
        await close()


class LocalRuntime:
    def __init__(self) -> None:
        self.containers: dict[str, list[str]] = {}
        self.cancelled = 0

    async def exec(self, container_id, cmd, stdin, stdout, stderr, tty, resize) -> int:
        if container_id not in self.containers:
            raise LookupError(f"no such container: {container_id}")
        try:
            if tty:
                return await self._run_tty(cmd, stdin, stdout, resize)
            return await self._run_pipes(cmd, stdin, stdout, stderr)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    async def attach(self, container_id, stdin, stdout, stderr, tty, resize) -> None:
        await self.exec(container_id, self.containers[container_id], stdin, stdout, stderr, tty,
                        resize)

    async def port_forward(self, sandbox_id, port, reader, writer) -> None:
        r, w = await asyncio.open_connection("127.0.0.1", port)

        async def write(data):
            w.write(data)
            await w.drain()

        async def close():
            if w.can_write_eof():
                w.write_eof()

        up = asyncio.create_task(_pump_in(reader, write, close))
        try:
            while True:
                data = await r.read(65536)
                if not data:
                    break
                await writer.write(data)
        finally:
            up.cancel()
            w.close()

    async def _run_pipes(self, cmd, stdin, stdout, stderr) -> int:
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if stdout else asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE if stderr else asyncio.subprocess.DEVNULL)
        tasks = []
        if stdin:
            async def write(data):
                proc.stdin.write(data)
                await proc.stdin.drain()

            async def close():
                proc.stdin.close()
            tasks.append(asyncio.create_task(_pump_in(stdin, write, close)))

        async def out(src, dst):
            while data := await src.read(65536):
                await dst.write(data)
        copies = [out(proc.stdout, stdout)] if stdout else []
        copies += [out(proc.stderr, stderr)] if stderr else []
        try:
            await asyncio.gather(*copies)
            return await proc.wait()
        finally:
            for t in tasks:
                t.cancel()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    async def _run_tty(self, cmd, stdin, stdout, resize) -> int:
        master, slave = os.openpty()
        while resize is not None and not resize.empty():   # the client's initial size
            w, h = resize.get_nowait()
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", h, w, 0, 0))

        def child_setup():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        proc = await asyncio.create_subprocess_exec(*cmd, stdin=slave, stdout=slave,
                                                    stderr=slave, preexec_fn=child_setup)
        os.close(slave)
        loop = asyncio.get_running_loop()
        tasks = []
        if resize is not None:
            async def apply():
                while True:
                    w, h = await resize.get()
                    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", h, w, 0, 0))
            tasks.append(asyncio.create_task(apply()))
        if stdin is not None:
            async def write(data):
                os.write(master, data)

            async def close():
                os.write(master, b"\x04")
            tasks.append(asyncio.create_task(_pump_in(stdin, write, close)))
        queue: asyncio.Queue = asyncio.Queue()

        def readable():
            try:
                data = os.read(master, 65536)
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(master)
            queue.put_nowait(data)
        loop.add_reader(master, readable)
        try:
            while data := await queue.get():
                if stdout is not None:
                    await stdout.write(data)
            return await proc.wait()
        finally:
            loop.remove_reader(master)
            for t in tasks:
                t.cancel()
            os.close(master)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
