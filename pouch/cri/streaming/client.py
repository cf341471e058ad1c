"""A client of the streaming server: exec/attach and port forward over SPDY/3.1 or WebSocket.

It speaks what client-go's remotecommand and portforward packages speak (the SPDY upgrade with
X-Stream-Protocol-Version, one stream per ``streamType``; the channel.k8s.io WebSocket
protocols), so it can drive this server or kubelet's. Used by the tests; small enough to serve a
future ``pouch`` CRI command.
"""
from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from pouch.cri.streaming import protocol
from pouch.cri.streaming.session import SpdySession


class UpgradeFailed(Exception):
    def __init__(self, status: int, body: str, headers: dict) -> None:
        super().__init__(f"upgrade failed: HTTP {status}: {body.strip()}")
        self.status = status
        self.body = body
        self.headers = headers


@dataclass
class RemoteCommandResult:
    stdout: bytes
    stderr: bytes
    error: bytes          # the raw error-stream payload
    protocol: str

    @property
    def exit_code(self) -> int:
        """Exit code as client-go reports it (v4+ status JSON; older protocols: 0 or raise)."""
        if protocol.uses_status_json(self.protocol):
            return protocol.exit_code_from_status(self.error)
        if self.error:
            raise RuntimeError(self.error.decode(errors="replace"))
        return 0


class SpdyConnection:
    """An upgraded SPDY connection (client role)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 headers: dict) -> None:
        self.headers = headers
        self.protocol = headers.get(protocol.PROTOCOL_HEADER.lower(), "")
        self._writer = writer

        async def write(data: bytes) -> None:
            writer.write(data)
            await writer.drain()

        self.session = SpdySession(write, server=False,
                                   pause_reading=writer.transport.pause_reading,
                                   resume_reading=writer.transport.resume_reading)
        self._pump = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                self.session.feed_data(data)
        except (ConnectionError, OSError):
            pass
        self.session.feed_eof()

    async def close(self) -> None:
        await self.session.close(1.0, wait_peer=False)
        self._writer.close()
        self._pump.cancel()


async def spdy_connect(url: str, protocols: list[str], method: str = "POST") -> SpdyConnection:
    """Open ``url`` and upgrade it to SPDY/3.1 offering ``protocols`` (in order)."""
    u = urlsplit(url)
    reader, writer = await asyncio.open_connection(u.hostname, u.port or 80)
    lines = [f"{method} {u.path or '/'}{'?' + u.query if u.query else ''} HTTP/1.1",
             f"Host: {u.netloc}", "Connection: Upgrade", "Upgrade: SPDY/3.1",
             "Content-Length: 0"]
    lines += [f"{protocol.PROTOCOL_HEADER}: {p}" for p in protocols]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    for line in header_lines:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if status != 101:
        n = int(headers.get("content-length", "0") or 0)
        body = (await reader.readexactly(n)).decode(errors="replace") if n else ""
        writer.close()
        raise UpgradeFailed(status, body, headers)
    return SpdyConnection(reader, writer, headers)


async def _copy_in(data, stream) -> None:
    """Send ``data`` (bytes or an async iterable of bytes) on ``stream`` then close it."""
    if isinstance(data, (bytes, bytearray)):
        if data:
            await stream.write(bytes(data))
    else:
        async for chunk in data:
            await stream.write(chunk)
    await stream.close()


async def spdy_remote_command(url: str, *, stdin=None, stdout: bool = True, stderr: bool = True,
                              tty: bool = False, resizes: list | None = None,
                              protocols: list[str] | None = None) -> RemoteCommandResult:
    """Run an exec/attach URL the way client-go does (error stream first, then stdin, stdout,
    stderr and, with a TTY on v3+, resize); ``stdin`` is bytes or an async iterable of bytes,
    ``resizes`` a list or an async iterable of (width, height)."""
    conn = await spdy_connect(url, protocols if protocols is not None
                              else protocol.SPDY_REMOTECOMMAND_PROTOCOLS)
    proto = conn.protocol
    s = conn.session
    try:
        err = await s.open_stream({protocol.STREAM_TYPE: protocol.ERROR})
        await err.close()
        sin = await s.open_stream({protocol.STREAM_TYPE: protocol.STDIN}) if stdin is not None \
            else None
        sout = await s.open_stream({protocol.STREAM_TYPE: protocol.STDOUT}, fin=True) \
            if stdout else None
        serr = await s.open_stream({protocol.STREAM_TYPE: protocol.STDERR}, fin=True) \
            if stderr and (not tty or proto in ("", protocol.V1)) else None
        rsz = sizer = None
        if tty and proto in (protocol.V3, protocol.V4):
            rsz = await s.open_stream({protocol.STREAM_TYPE: protocol.RESIZE})
            if isinstance(resizes, (list, tuple)) or resizes is None:
                for w, h in resizes or []:
                    await rsz.write(protocol.encode_resize(w, h))
            else:
                sizer = asyncio.create_task(_copy_in(_sizes(resizes), rsz))
        feeder = asyncio.create_task(_copy_in(stdin, sin)) if sin is not None else None
        out, errout, status = await asyncio.gather(
            sout.reader.read() if sout else _empty(),
            serr.reader.read() if serr else _empty(),
            err.reader.read())
        for t in (feeder, sizer):
            if t is not None:
                t.cancel()
        return RemoteCommandResult(out, errout, status, proto)
    finally:
        await conn.close()


async def _sizes(resizes):
    async for w, h in resizes:
        yield protocol.encode_resize(w, h)


async def _empty() -> bytes:
    return b""


async def spdy_port_forward(url: str, port: int, payload: bytes,
                            conn: SpdyConnection | None = None,
                            request_id: int = 0) -> tuple[bytes, bytes]:
    """Forward one connection to ``port``: send ``payload``, half-close, and return (what came
    back, the error stream's text)."""
    own = conn is None
    if own:
        conn = await spdy_connect(url, [protocol.PORTFORWARD_PROTOCOL])
    try:
        hdrs = {protocol.PORT_HEADER: str(port), protocol.REQUEST_ID_HEADER: str(request_id)}
        err = await conn.session.open_stream({**hdrs, protocol.STREAM_TYPE: protocol.ERROR})
        await err.close()
        data = await conn.session.open_stream({**hdrs, protocol.STREAM_TYPE: protocol.DATA})
        await data.write(payload)
        await data.close()
        back, errtext = await asyncio.gather(data.reader.read(), err.reader.read())
        return back, errtext
    finally:
        if own:
            await conn.close()


async def ws_remote_command(url: str, *, stdin: bytes | None = None, stdout: bool = True,
                            stderr: bool = True, tty: bool = False,
                            resizes: list | None = None, protocols: list[str] | None = None,
                            close_stdin: bool = True) -> RemoteCommandResult:
    """Run an exec/attach URL over a WebSocket (channel.k8s.io family)."""
    protocols = protocols or ["v4.channel.k8s.io"]
    outs = {1: bytearray(), 2: bytearray(), 3: bytearray()}
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, protocols=protocols, method="GET") as ws:
            proto = ws.protocol or ""
            binary = protocol.WS_REMOTECOMMAND_PROTOCOLS.get(proto, (True,))[0]

            async def send(channel: int, data: bytes) -> None:
                msg = protocol.ws_encode(channel, data, binary)
                await (ws.send_bytes(msg) if binary else ws.send_str(msg))

            for w, h in resizes or []:
                await send(4, protocol.encode_resize(w, h))
            if stdin is not None:
                if stdin:
                    await send(0, stdin)
                if close_stdin and proto == protocol.V5:
                    await ws.send_bytes(bytes([protocol.CLOSE_CHANNEL, 0]))
            async for msg in ws:
                if msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                    channel, payload = protocol.ws_decode(msg.data)
                    if channel in outs:
                        outs[channel] += payload
    return RemoteCommandResult(bytes(outs[1]), bytes(outs[2]), bytes(outs[3]), proto)


async def ws_port_forward(url: str, ports: list[int], payloads: list[bytes],
                          protocols: list[str] | None = None) -> list[tuple[bytes, bytes, int]]:
    """Send payloads[i] to ports[i] over one WebSocket; returns per port (data received after the
    port prefix, error text, the port the prefix announced). Ends when the server closes."""
    protocols = protocols or ["v4.channel.k8s.io"]
    data = [bytearray() for _ in ports]
    errs = [bytearray() for _ in ports]
    announced = [0 for _ in ports]
    seen: set[int] = set()
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, protocols=protocols) as ws:
            binary = protocol.WS_PORTFORWARD_PROTOCOLS.get(ws.protocol or "", True)
            for i, p in enumerate(payloads):
                msg = protocol.ws_encode(2 * i, p, binary)
                await (ws.send_bytes(msg) if binary else ws.send_str(msg))
            async for msg in ws:
                if msg.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                    continue
                channel, payload = protocol.ws_decode(msg.data)
                i = channel // 2
                if channel not in seen:     # first message per channel: the port
                    seen.add(channel)
                    announced[i] = struct.unpack("<H", payload[:2])[0]
                    payload = payload[2:]
                (data if channel % 2 == 0 else errs)[i].extend(payload)
    return [(bytes(d), bytes(e), a) for d, e, a in zip(data, errs, announced)]
