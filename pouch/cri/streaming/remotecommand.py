"""Serving exec and attach over SPDY (streams named by ``streamType``) and over WebSocket
(channels 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize), as kubelet's streaming server does.

The transport is hidden from the runtime: it gets an ``asyncio.StreamReader`` for stdin, writers
with ``async write(bytes)`` for stdout and stderr, and an ``asyncio.Queue`` of (width, height) for
a TTY. When the command ends, its outcome goes on the error stream (see
:mod:`pouch.cri.streaming.protocol`) and the connection is closed. When the client goes away first,
the runtime's coroutine is cancelled.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from aiohttp import WSMsgType, web

from pouch.cri.streaming import protocol
from pouch.cri.streaming.flow import ReadGate, gated_reader
from pouch.cri.streaming.session import SpdyStream, StreamClosed
from pouch.cri.streaming.upgrade import upgrade_spdy

log = logging.getLogger(__name__)

INITIAL_SIZE_WAIT = 0.5

#: run(stdin, stdout, stderr, resize) -> status dict for the error stream
Runner = Callable[..., Awaitable[dict]]


class _Sink:
    """stdout/stderr handed to the runtime: writes that fail once the client is gone are dropped,
    so a runtime never dies of a vanished client (it is cancelled instead)."""

    def __init__(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        self._write = write

    async def write(self, data: bytes) -> None:
        if not data:
            return
        try:
            await self._write(bytes(data))
        except (StreamClosed, ConnectionError, RuntimeError):
            pass


async def _run_until_lost(run: Awaitable[dict], lost: asyncio.Event) -> dict | None:
    """The runtime's status, or None if the client went away or the server is stopping (the
    runtime's coroutine is then cancelled, and waited for so that it can clean up)."""
    task = asyncio.ensure_future(run)
    waiter = asyncio.ensure_future(lost.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
            try:
                await task
            except BaseException:
                pass
    if task.cancelled():
        return None
    return task.result()


async def _pump_resize(reader: asyncio.StreamReader, queue: asyncio.Queue,
                       got: asyncio.Event) -> None:
    decoder = protocol.ResizeDecoder()
    while True:
        data = await reader.read(4096)
        if not data:
            return
        for size in decoder.feed(data):
            queue.put_nowait(size)
            got.set()


async def _initial_size(got: asyncio.Event) -> None:
    """Clients send the terminal's size right after opening the streams: wait a moment for it,
    so that the runtime finds it queued and can start the process with the right size (a shell
    that asks at once would otherwise see 0x0)."""
    try:
        await asyncio.wait_for(got.wait(), INITIAL_SIZE_WAIT)
    except asyncio.TimeoutError:
        pass


async def serve_spdy(request: web.Request, opts, run: Runner, *,
                     stream_creation_timeout: float) -> web.StreamResponse:
    resp, session, proto = await upgrade_spdy(request, protocol.SPDY_REMOTECOMMAND_PROTOCOLS)
    if session is None:
        return resp
    with_resize = opts.tty and proto in (protocol.V3, protocol.V4)
    expected = 1 + opts.stdin + opts.stdout + opts.stderr + with_resize
    streams: dict[str, SpdyStream] = {}
    try:
        async with asyncio.timeout(stream_creation_timeout):
            while len(streams) < expected:
                stream = await session.next_stream()
                if stream is None:
                    raise StreamClosed("connection closed while waiting for streams")
                kind = stream.header(protocol.STREAM_TYPE)
                if kind not in protocol.CHANNELS or kind in streams:
                    log.warning("exec/attach: unexpected stream type %r", kind)
                    stream.reset()
                    await session.close(wait_peer=False)
                    return resp
                streams[kind] = stream
    except (TimeoutError, StreamClosed):
        log.warning("exec/attach: timed out waiting for %d streams (got %s)", expected,
                    sorted(streams))
        await session.close(wait_peer=False)
        return resp

    resize = None
    pumps = []
    if protocol.RESIZE in streams:
        resize = asyncio.Queue()
        got_size = asyncio.Event()
        pumps.append(asyncio.create_task(_pump_resize(streams[protocol.RESIZE].reader, resize,
                                                      got_size)))
        await _initial_size(got_size)
    stdin = streams[protocol.STDIN].reader if protocol.STDIN in streams else None
    stdout = _Sink(streams[protocol.STDOUT].write) if protocol.STDOUT in streams else None
    stderr = _Sink(streams[protocol.STDERR].write) if protocol.STDERR in streams else None
    status = await _run_until_lost(run(stdin, stdout, stderr, resize), session.closed)
    for p in pumps:
        p.cancel()
    if status is not None:
        err = streams[protocol.ERROR]
        payload = protocol.encode_status(status, protocol.uses_status_json(proto))
        try:
            if payload:
                await err.write(payload)
            for kind in (protocol.STDOUT, protocol.STDERR, protocol.ERROR, protocol.STDIN,
                         protocol.RESIZE):
                if kind in streams:
                    await streams[kind].close()
        except StreamClosed:
            pass
    await session.close()
    return resp


async def serve_websocket(request: web.Request, opts, run: Runner) -> web.StreamResponse:
    ws = web.WebSocketResponse(protocols=list(protocol.WS_REMOTECOMMAND_PROTOCOLS),
                               max_msg_size=0)
    await ws.prepare(request)
    proto = ws.ws_protocol or ""
    binary, json_status, can_close = protocol.WS_REMOTECOMMAND_PROTOCOLS.get(
        proto, (True, False, False))
    send_lock = asyncio.Lock()

    def sender(channel: int):
        async def send(data: bytes) -> None:
            msg = protocol.ws_encode(channel, data, binary)
            async with send_lock:
                if ws.closed:
                    raise StreamClosed("websocket closed")
                if binary:
                    await ws.send_bytes(msg)
                else:
                    await ws.send_str(msg)
        return send

    # an empty message on the lowest writable channel tells the client the streams are ready
    first = protocol.CHANNELS[protocol.STDOUT if opts.stdout else
                              protocol.STDERR if opts.stderr else protocol.ERROR]
    await sender(first)(b"")

    gate = ReadGate()
    stdin = gated_reader(gate) if opts.stdin else None
    resize = asyncio.Queue() if opts.tty else None
    got_size = asyncio.Event()
    lost = asyncio.Event()

    async def read_loop() -> None:
        decoder = protocol.ResizeDecoder()
        try:
            async for msg in ws:
                if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                    continue
                await gate.wait()                 # stdin is full: the runtime reads slower
                data = msg.data
                if can_close and isinstance(data, bytes) and data[:1] == bytes(
                        [protocol.CLOSE_CHANNEL]):
                    if data[1:2] == bytes([protocol.CHANNELS[protocol.STDIN]]) and stdin:
                        stdin.feed_eof()
                    continue
                try:
                    channel, payload = protocol.ws_decode(data)
                except ValueError:
                    continue
                if channel == protocol.CHANNELS[protocol.STDIN] and stdin is not None:
                    if not stdin.at_eof():
                        stdin.feed_data(payload)
                elif channel == protocol.CHANNELS[protocol.RESIZE] and resize is not None:
                    for size in decoder.feed(payload):
                        resize.put_nowait(size)
                        got_size.set()
        finally:
            if stdin is not None and not stdin.at_eof():
                stdin.feed_eof()
            lost.set()

    reader = asyncio.create_task(read_loop())
    if resize is not None:
        await _initial_size(got_size)
    stdout = _Sink(sender(protocol.CHANNELS[protocol.STDOUT])) if opts.stdout else None
    stderr = _Sink(sender(protocol.CHANNELS[protocol.STDERR])) if opts.stderr else None
    try:
        status = await _run_until_lost(run(stdin, stdout, stderr, resize), lost)
        if status is not None:
            payload = protocol.encode_status(status, json_status)
            try:
                if payload:
                    await sender(protocol.CHANNELS[protocol.ERROR])(payload)
            except (StreamClosed, ConnectionError):
                pass
        await ws.close()
    finally:
        reader.cancel()
    return ws
