"""Attach sessions: one client's streams joined to a process (a container's or an exec's).

One ``AttachSession`` serves ``attach`` and ``exec start`` alike: output the process writes goes
to the client (the streams it asked for), the client's bytes go to the process's stdin through a
``DetachScanner``, and the session ends when the process's output ends, when the client detaches
(the detach keys), or when the client is gone.  A detached or gone client never keeps its
handler waiting on the process.

The face (HTTP hijack, CRI streaming) supplies the client connection, duck-typed:

- ``input``: an ``asyncio.Queue`` of the client's bytes, ``None`` at its EOF;
- ``write(stream, data)`` ("stdout"/"stderr"), ``async drain()``, ``close()`` and ``closed``.

``open_stream(tty) -> connection`` (an awaitable factory) lets the manager decide the framing
(a TTY process has one raw stream) before the face answers its client.
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from pouch.errtypes import InvalidArgument

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"

OpenStream = Callable[[bool], Awaitable[object]]


def detach_sequence(keys: str | None) -> bytes:
    """``ctrl-p,ctrl-q`` (Docker's default) -> b'\\x10\\x11'; a bad spelling is InvalidArgument."""
    keys = keys or DEFAULT_DETACH_KEYS
    out = bytearray()
    for k in keys.split(","):
        k = k.strip()
        if k.startswith("ctrl-") and len(k) == 6:
            c = k[5]
            code = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}.get(c)
            if code is None and not c.isalpha():
                raise InvalidArgument(f"Invalid detach keys ({keys}) provided")
            out.append(code if code is not None else (ord(c.lower()) - ord("a") + 1))
        elif len(k) == 1:
            out.append(ord(k))
        else:
            raise InvalidArgument(f"Invalid detach keys ({keys}) provided")
    return bytes(out)


class DetachScanner:
    """Finds the detach key sequence in a client's stdin, across reads.

    A partial match is held back; when the next byte breaks it, the held bytes are passed on
    except for the longest suffix that still starts the sequence (so ctrl-p ctrl-p ctrl-q
    detaches, and the first ctrl-p reaches the process).
    """

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """-> (bytes to pass on to the process, whether the client detached)."""
        if not self.keys:
            return data, False
        out = bytearray()
        keys = self.keys
        held = self.held
        for i in range(len(data)):
            held += data[i:i + 1]
            while held and not keys.startswith(held):
                out.append(held[0])
                held = held[1:]
            if held == keys:
                self.held = b""
                return bytes(out), True
        self.held = held
        return bytes(out), False


class AttachSession:
    """Pump one client <-> one process until the output ends, the client detaches or goes.

    ``subscribers`` is the process's output fan-out set (ProcessIO.subscribers, kept across
    restarts for a container); ``write_stdin(data)`` and ``close_stdin()`` reach the process;
    ``backlog`` is output to send first (``attach --logs``).
    """

    def __init__(self, conn, subscribers: set, want: set[str], keys: bytes, *,
                 write_stdin: Callable[[bytes], Awaitable[None]] | None = None,
                 close_stdin: Callable[[], Awaitable[None]] | None = None) -> None:
        self.conn = conn
        self.subscribers = subscribers
        self.want = want
        self.scanner = DetachScanner(keys)
        self.write_stdin = write_stdin
        self.close_stdin = close_stdin
        self.queue: asyncio.Queue = asyncio.Queue()
        self.subscribed = False

    def subscribe(self) -> None:
        """Start collecting output now (before the process starts, so none is missed)."""
        if not self.subscribed:
            self.subscribers.add(self.queue)
            self.subscribed = True

    def send(self, stream: str, data: bytes) -> None:
        if stream in self.want:
            self.conn.write(stream, data)

    async def _forward(self, item, ended: Callable[[], None] | None) -> str | None:
        """Deliver one item of the output queue: the session's end (``"ended"`` at the end of
        the output, ``"gone"`` once the client went away), or None to go on."""
        if item is None:
            if ended is not None:
                ended()
            return "ended"
        self.send(*item)
        await self.conn.drain()
        return "gone" if getattr(self.conn, "closed", False) else None

    async def run(self, stream_output: bool = True, ended: Callable[[], None] | None = None) -> str:
        """-> "ended" (the process's output ended), "detached", or "gone" (the client left).

        ``ended()`` is called once the process's output has ended, before the connection closes
        (exec's exit code trailer)."""
        pump = asyncio.ensure_future(self._stdin()) if self.write_stdin is not None else None
        try:
            if not stream_output:
                return "ended"
            self.subscribe()
            if pump is None:  # no stdin to watch: just the output (exec without -i)
                while True:
                    end = await self._forward(await self.queue.get(), ended)
                    if end:
                        return end
            getter: asyncio.Future | None = None
            while True:
                if getter is None:
                    getter = asyncio.ensure_future(self.queue.get())
                waiters = {getter} | ({pump} if pump is not None else set())
                done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                if pump is not None and pump in done:
                    result = pump.result()
                    pump = None
                    if result == "detach":
                        getter.cancel()
                        return "detached"
                if getter not in done:
                    continue
                item, getter = getter.result(), None
                end = await self._forward(item, ended)
                if end:
                    return end
        finally:
            if self.subscribed:
                self.subscribers.discard(self.queue)
            if pump is not None and not pump.done():
                pump.cancel()
            self.conn.close()

    async def _stdin(self) -> str:
        """Client -> process stdin; -> "eof" or "detach"."""
        while True:
            data = await self.conn.input.get()
            if data is None:
                if self.close_stdin is not None:
                    await self.close_stdin()
                return "eof"
            data, detached = self.scanner.feed(data)
            if data:
                await self.write_stdin(data)
            if detached:
                return "detach"
