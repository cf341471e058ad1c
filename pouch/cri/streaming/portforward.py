"""Serving port forwarding over SPDY (portforward.k8s.io) and over WebSocket, as kubelet does.

SPDY: the client opens, per forwarded connection, an ``error`` and a ``data`` stream with the
same ``requestID`` header and the target ``port``; once both are there, the runtime connects the
data stream to the port in the sandbox; a failure is written as text on the error stream.
WebSocket: the ports come from the request; channel 2*i carries port i's data and 2*i+1 its
errors, and the server's first message on each of them is the port as uint16 little-endian.
"""
from __future__ import annotations

import asyncio
import logging
import struct
from typing import Awaitable, Callable

from aiohttp import WSMsgType, web

from pouch.cri.streaming import protocol
from pouch.cri.streaming.flow import ReadGate, gated_reader
from pouch.cri.streaming.session import SpdyStream, StreamClosed
from pouch.cri.streaming.upgrade import upgrade_spdy

log = logging.getLogger(__name__)

#: forward(port, reader, writer) -> None; raises on failure
Forwarder = Callable[[int, asyncio.StreamReader, object], Awaitable[None]]


class _StreamWriter:
    def __init__(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        self._write = write

    async def write(self, data: bytes) -> None:
        if data:
            await self._write(bytes(data))


def _parse_port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f"unable to parse '{text}' as a port") from None
    if not 0 < port < 65536:
        raise ValueError(f"port '{text}' must be between 1 and 65535")
    return port


async def serve_spdy(request: web.Request, sandbox_id: str, forward: Forwarder, *,
                     stream_creation_timeout: float) -> web.StreamResponse:
    resp, session, _ = await upgrade_spdy(request, [protocol.PORTFORWARD_PROTOCOL])
    if session is None:
        return resp
    pending: dict[str, dict[str, SpdyStream]] = {}
    tasks: set[asyncio.Task] = set()

    async def expire(request_id: str) -> None:
        await asyncio.sleep(stream_creation_timeout)
        pair = pending.pop(request_id, None)
        if pair:
            err = pair.get(protocol.ERROR)
            if err is not None:
                await _fail(err, "timed out waiting for streams")
            for s in pair.values():
                s.reset()

    async def run_pair(pair: dict[str, SpdyStream]) -> None:
        data, err = pair[protocol.DATA], pair[protocol.ERROR]
        text = data.header(protocol.PORT_HEADER)
        try:
            port = _parse_port(text)
            await forward(port, data.reader, _StreamWriter(data.write))
        except asyncio.CancelledError:
            raise
        except Exception as e:
            await _fail(err, f"error forwarding port {text} to pod {sandbox_id}: {e}")
        try:
            await data.close()
            await err.close()
        except StreamClosed:
            pass

    def spawn(coro) -> asyncio.Task:
        t = asyncio.create_task(coro)
        tasks.add(t)
        t.add_done_callback(tasks.discard)
        return t

    timers: dict[str, asyncio.Task] = {}
    try:
        while True:
            stream = await session.next_stream()
            if stream is None:
                break
            kind = stream.header(protocol.STREAM_TYPE)
            request_id = stream.header(protocol.REQUEST_ID_HEADER)
            if not request_id:        # old clients: the error stream's id names the pair
                request_id = str(stream.id if kind == protocol.ERROR else stream.id - 2)
            if kind not in (protocol.DATA, protocol.ERROR):
                log.warning("port forward: unexpected stream type %r", kind)
                stream.reset()
                continue
            pair = pending.setdefault(request_id, {})
            if kind in pair:
                stream.reset()
                continue
            pair[kind] = stream
            if len(pair) == 2:
                del pending[request_id]
                timer = timers.pop(request_id, None)
                if timer:
                    timer.cancel()
                spawn(run_pair(pair))
            else:
                timers[request_id] = spawn(expire(request_id))
    finally:
        for t in list(tasks):
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    await session.close(wait_peer=False)
    return resp


async def _fail(err: SpdyStream, message: str) -> None:
    try:
        await err.write(message.encode())
        await err.close()
    except StreamClosed:
        pass


async def serve_websocket(request: web.Request, sandbox_id: str, ports: list[int],
                          forward: Forwarder) -> web.StreamResponse:
    if not ports:
        return web.Response(status=400, text="port forwarding over WebSocket needs the ports in "
                            "the PortForward request\n")
    ws = web.WebSocketResponse(protocols=list(protocol.WS_PORTFORWARD_PROTOCOLS),
                               max_msg_size=0)
    await ws.prepare(request)
    binary = protocol.WS_PORTFORWARD_PROTOCOLS.get(ws.ws_protocol or "", True)
    lock = asyncio.Lock()

    def sender(channel: int):
        async def send(data: bytes) -> None:
            msg = protocol.ws_encode(channel, data, binary)
            async with lock:
                if ws.closed:
                    raise StreamClosed("websocket closed")
                await (ws.send_bytes(msg) if binary else ws.send_str(msg))
        return send

    gates = [ReadGate() for _ in ports]
    readers = [gated_reader(g) for g in gates]
    for i, port in enumerate(ports):
        prefix = struct.pack("<H", port)
        await sender(2 * i)(prefix)
        await sender(2 * i + 1)(prefix)

    async def run(i: int, port: int) -> None:
        try:
            await forward(port, readers[i], _StreamWriter(sender(2 * i)))
        except asyncio.CancelledError:
            raise
        except Exception as e:
            try:
                await sender(2 * i + 1)(
                    f"error forwarding port {port} to pod {sandbox_id}: {e}".encode())
            except (StreamClosed, ConnectionError):
                pass

    async def read_loop() -> None:
        try:
            async for msg in ws:
                if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                    continue
                try:
                    channel, payload = protocol.ws_decode(msg.data)
                except ValueError:
                    continue
                if channel % 2 == 0 and channel // 2 < len(readers) and payload:
                    await gates[channel // 2].wait()      # that port's reader is full
                    readers[channel // 2].feed_data(payload)
        finally:
            for r in readers:
                if not r.at_eof():
                    r.feed_eof()

    reader = asyncio.create_task(read_loop())
    forwards = asyncio.ensure_future(asyncio.gather(*(run(i, p) for i, p in enumerate(ports))))
    try:
        await asyncio.wait({reader, forwards}, return_when=asyncio.FIRST_COMPLETED)
        if not forwards.done():
            # the client hung up: let the forwards see EOF, then stop them
            await asyncio.wait({forwards}, timeout=2)
    finally:
        for t in (forwards, reader):
            t.cancel()
        await asyncio.gather(forwards, reader, return_exceptions=True)
    await ws.close()
    return ws
