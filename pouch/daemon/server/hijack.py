"""Hijacked connections: Docker's ``Upgrade: tcp`` streams for attach and exec.

The handler answers ``101 UPGRADED`` and then owns the socket: output is
written raw to the transport (``stdcopy`` frames unless the process has a
TTY), and input bytes are fed by aiohttp's protocol into a queue through a
parser we install, the way aiohttp's own WebSocket support does.  A client
half-close (stdin EOF) keeps the connection open for the rest of the output.

Exit code trailer (a pouch extension, opt-in): a client that sends ``X-Pouch-Exit-Code: 1``
with ``exec start`` gets, on a multiplexed stream, one last frame on stream 3 (``system``)
holding ``{"ExitCode": N}`` once the process has exited, and needs no ``exec inspect``
afterwards.  Clients that do not ask (Docker's CLI reads stream 3 as an error) never see it;
a TTY's raw stream has no frames, so it never carries one.
"""
from __future__ import annotations

import asyncio
import struct

from aiohttp import web

STREAM_IDS = {"stdin": 0, "stdout": 1, "stderr": 2, "system": 3}
EXIT_CODE_HEADER = "X-Pouch-Exit-Code"


def frame(stream: str, data: bytes) -> bytes:
    return struct.pack(">BxxxL", STREAM_IDS[stream], len(data)) + data


class _InputParser:
    """Receives the client's bytes after the upgrade (aiohttp calls feed_data)."""

    def __init__(self, queue: asyncio.Queue) -> None:
        self.queue = queue
        self.eof = False

    def feed_data(self, data):
        self.queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self):
        if not self.eof:
            self.eof = True
            self.queue.put_nowait(None)


class _HalfCloseProtocol(asyncio.Protocol):
    """Stands in for aiohttp's protocol on a hijacked transport."""

    def __init__(self, inner, parser: _InputParser) -> None:
        self.inner = inner
        self.parser = parser

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def eof_received(self) -> bool:
        self.parser.feed_eof()
        return True

    def connection_lost(self, exc) -> None:
        self.parser.feed_eof()
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class Hijacked:
    def __init__(self, request: web.Request, multiplexed: bool) -> None:
        self.request = request
        self.multiplexed = multiplexed
        self.input: asyncio.Queue = asyncio.Queue()
        self.transport = request.transport
        self.closed = False
        self.exit_trailer = multiplexed and request.headers.get(EXIT_CODE_HEADER) == "1"

    async def start(self, upgrade: bool) -> None:
        ctype = ("application/vnd.docker.multiplexed-stream" if self.multiplexed
                 else "application/vnd.docker.raw-stream")
        if upgrade:
            head = ("HTTP/1.1 101 UPGRADED\r\nContent-Type: " + ctype +
                    "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        else:
            head = "HTTP/1.1 200 OK\r\nContent-Type: " + ctype + "\r\n\r\n"
        proto = self.request.protocol
        parser = _InputParser(self.input)
        proto.set_parser(parser)   # takes any bytes aiohttp already buffered
        proto.keep_alive(False)
        # from now on bytes go straight to us; a half-closed client (stdin
        # EOF) must not close our side, which aiohttp's protocol would do
        self.transport.set_protocol(_HalfCloseProtocol(proto, parser))
        self._allow_tls_half_close()
        self.transport.write(head.encode())

    def _allow_tls_half_close(self) -> None:
        """Keep writing after a TLS client's close_notify, as Go's CloseWrite expects.

        docker's CLI half-closes its side once stdin is done (at once without -i); over TLS that
        is a close_notify, on which asyncio's SSL transport (3.11) shuts the whole connection
        down, and the container's output would be lost.  TLS allows writing on after it
        (OpenSSL too, until we call SSL_shutdown), so the shutdown waits for our own close.
        """
        sslp = getattr(self.transport, "_ssl_protocol", None)
        start_shutdown = getattr(sslp, "_start_shutdown", None)
        if start_shutdown is None:
            return
        sslp._start_shutdown = lambda: start_shutdown() if self.closed else None

    def write(self, stream: str, data: bytes) -> None:
        if self.closed or self.transport is None or self.transport.is_closing():
            self.closed = True
            return
        self.transport.write(frame(stream, data) if self.multiplexed else data)

    def send_exit_code(self, code: int) -> None:
        """The exit code trailer, when the client asked for it (see the module's docstring)."""
        if self.exit_trailer:
            self.write("system", b'{"ExitCode": %d}' % code)

    async def drain(self) -> None:
        # the transport buffers; give the loop a chance to flush large outputs
        t = self.transport
        while t is not None and not t.is_closing() and t.get_write_buffer_size() > 1 << 20:
            await asyncio.sleep(0.005)

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()


async def hijack(request: web.Request, multiplexed: bool) -> Hijacked:
    upgrade = request.headers.get("Upgrade", "").lower() == "tcp"
    h = Hijacked(request, multiplexed)
    await h.start(upgrade)
    return h
