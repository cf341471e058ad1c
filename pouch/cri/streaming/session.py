"""A SPDY/3.1 connection over asyncio: streams, their readers and writers, ping, goaway.

One :class:`SpdySession` runs one upgraded connection, in the server role (the streaming server
after a ``101 Switching Protocols``) or the client role (:mod:`pouch.cri.streaming.client`).
Bytes come in through :meth:`SpdySession.feed_data`; frames go out, in order, through one writer
task calling the ``write`` coroutine given at construction, so the header compressor's state
always matches what the peer receives.

A stream whose reader holds more than 2 x READ_LIMIT unread bytes pauses reading from the
connection until it is read down (TCP backpressure instead of unbounded buffering, e.g. for a
``kubectl cp`` into a slow container). SPDY's own flow control is not enforced and no WINDOW_UPDATE is sent: the only SPDY peer of this protocol in
the Kubernetes world (moby/spdystream, under client-go and kubelet) neither sends nor honours
windows; received WINDOW_UPDATE and SETTINGS frames are accepted and ignored.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from pouch.cri.streaming import spdy

log = logging.getLogger(__name__)

_CHUNK = 32 * 1024
_HIGH_WATER = 256 * 1024
#: a stream's unread input above twice this pauses reading from the connection
READ_LIMIT = 512 * 1024


class StreamClosed(ConnectionError):
    """Writing to a stream that was reset, finished on our side, or whose connection is gone."""


class _Valve:
    """What a stream's StreamReader takes for its transport: asyncio's StreamReader asks it to
    pause when its buffer passes 2*limit and to resume once read below limit; the session pauses
    the connection while any stream is full."""

    def __init__(self, session: "SpdySession") -> None:
        self._session = session
        self.paused = False

    def pause_reading(self) -> None:
        if not self.paused:
            self.paused = True
            self._session._full_streams(+1)

    def resume_reading(self) -> None:
        if self.paused:
            self.paused = False
            self._session._full_streams(-1)


class SpdyStream:
    """One SPDY stream: ``headers`` from its SYN_STREAM, ``reader`` for the peer's data."""

    def __init__(self, session: "SpdySession", stream_id: int, headers: spdy.Headers) -> None:
        self.session = session
        self.id = stream_id
        self.headers = headers
        self.reader = asyncio.StreamReader(limit=READ_LIMIT)
        self._valve = _Valve(session)
        self.reader.set_transport(self._valve)
        self.reply: asyncio.Future = asyncio.get_running_loop().create_future()
        self.local_closed = False
        self.remote_closed = False
        self.was_reset = False

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower()) or [""]
        return values[0]

    async def write(self, data: bytes) -> None:
        if self.local_closed or self.session.lost:
            raise StreamClosed(f"stream {self.id} is closed")
        view = memoryview(bytes(data))
        for i in range(0, len(view), _CHUNK):
            self.session.send(spdy.DataFrame(self.id, bytes(view[i:i + _CHUNK])))
        await self.session.drain()

    async def close(self) -> None:
        """Half-close: a DATA frame with FLAG_FIN (nothing more will be written)."""
        if self.local_closed or self.session.lost:
            self.local_closed = True
            return
        self.local_closed = True
        self.session.send(spdy.DataFrame(self.id, b"", spdy.FLAG_FIN))
        self._maybe_forget()
        await self.session.drain()

    def reset(self, status: int = spdy.CANCEL) -> None:
        if not self.was_reset and not self.session.lost:
            self.session.send(spdy.RstStream(self.id, status))
        self._on_reset()

    def _remote_fin(self) -> None:
        if not self.remote_closed:
            self.remote_closed = True
            self.reader.feed_eof()
        self._maybe_forget()

    def _on_reset(self) -> None:
        self._valve.resume_reading()          # nobody will read it now: do not hold the rest
        self.was_reset = True
        self.local_closed = True
        self._remote_fin()
        if not self.reply.done():
            self.reply.set_exception(StreamClosed(f"stream {self.id} was reset"))

    def _maybe_forget(self) -> None:
        if self.local_closed and self.remote_closed:
            self.session.streams.pop(self.id, None)


class SpdySession:
    def __init__(self, write: Callable[[bytes], Awaitable[None]], *, server: bool,
                 pause_reading: Callable[[], None] | None = None,
                 resume_reading: Callable[[], None] | None = None) -> None:
        self.server = server
        self._pause_reading = pause_reading
        self._resume_reading = resume_reading
        self._full = 0
        self.streams: dict[int, SpdyStream] = {}
        self.incoming: asyncio.Queue[SpdyStream] = asyncio.Queue()
        self.lost = False
        self.closed = asyncio.Event()        # the connection ended (peer EOF or error)
        self.goaway_received = False
        self._write = write
        self._encoder = spdy.FrameEncoder()
        self._decoder = spdy.FrameDecoder()
        self._out: list[bytes] = []
        self._out_size = 0
        self._wakeup = asyncio.Event()
        self._flushed = asyncio.Event()
        self._flushed.set()
        self._next_id = 2 if server else 1
        self._last_peer_id = 0
        self._next_ping = 2 if server else 1
        self._pings: dict[int, asyncio.Future] = {}
        self._writer = asyncio.create_task(self._write_loop())

    def _full_streams(self, delta: int) -> None:
        self._full += delta
        if delta > 0 and self._full == 1 and self._pause_reading is not None:
            self._pause_reading()
        elif delta < 0 and self._full == 0 and self._resume_reading is not None:
            self._resume_reading()

    # ---- output
    def send(self, frame) -> None:
        if self.lost:
            return
        data = self._encoder.encode(frame)
        self._out.append(data)
        self._out_size += len(data)
        self._flushed.clear()
        self._wakeup.set()

    async def drain(self) -> None:
        """Wait while much output is queued (backpressure for stream writers)."""
        while self._out_size > _HIGH_WATER and not self.lost:
            await self._flushed.wait()

    async def flush(self) -> None:
        if not self.lost:
            await self._flushed.wait()

    async def _write_loop(self) -> None:
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._out:
                    data = b"".join(self._out)
                    self._out.clear()
                    await self._write(data)
                    self._out_size -= len(data)
                self._flushed.set()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the transport went away
            log.debug("spdy write failed: %s", e)
            self.connection_lost()

    # ---- input
    def feed_data(self, data: bytes) -> None:
        if self.lost:
            return
        try:
            frames = self._decoder.feed(data)
        except spdy.SpdyProtocolError as e:
            log.warning("SPDY protocol error from peer: %s", e)
            self.send(spdy.GoAway(self._last_peer_id, spdy.GOAWAY_PROTOCOL_ERROR))
            self.connection_lost()
            return
        for frame in frames:
            self._dispatch(frame)

    def feed_eof(self) -> None:
        self.connection_lost()

    def connection_lost(self) -> None:
        if self.lost:
            return
        self.lost = True
        for stream in list(self.streams.values()):
            stream._on_reset()
        self.streams.clear()
        for fut in self._pings.values():
            if not fut.done():
                fut.set_exception(StreamClosed("connection lost"))
        self._flushed.set()
        self.closed.set()
        self._writer.cancel()

    def _dispatch(self, frame) -> None:
        if isinstance(frame, spdy.DataFrame):
            stream = self.streams.get(frame.stream_id)
            if stream is None or stream.remote_closed:
                self.send(spdy.RstStream(frame.stream_id, spdy.INVALID_STREAM))
                return
            if frame.data:
                stream.reader.feed_data(frame.data)
            if frame.flags & spdy.FLAG_FIN:
                stream._remote_fin()
        elif isinstance(frame, spdy.SynStream):
            self._on_syn_stream(frame)
        elif isinstance(frame, spdy.SynReply):
            stream = self.streams.get(frame.stream_id)
            if stream is None:
                return
            if not stream.reply.done():
                stream.reply.set_result(frame.headers)
            if frame.flags & spdy.FLAG_FIN:
                stream._remote_fin()
        elif isinstance(frame, spdy.HeadersFrame):
            stream = self.streams.get(frame.stream_id)
            if stream is not None:
                for k, v in frame.headers.items():
                    stream.headers.setdefault(k, []).extend(v)
                if frame.flags & spdy.FLAG_FIN:
                    stream._remote_fin()
        elif isinstance(frame, spdy.RstStream):
            stream = self.streams.pop(frame.stream_id, None)
            if stream is not None:
                stream._on_reset()
        elif isinstance(frame, spdy.Ping):
            if frame.ping_id % 2 != self._next_ping % 2:
                self.send(frame)                       # the peer's ping: echo it
            else:
                fut = self._pings.pop(frame.ping_id, None)
                if fut is not None and not fut.done():
                    fut.set_result(None)
        elif isinstance(frame, spdy.GoAway):
            self.goaway_received = True
        # SETTINGS and WINDOW_UPDATE: nothing to do (see the module docstring)

    def _on_syn_stream(self, frame: spdy.SynStream) -> None:
        sid = frame.stream_id
        peer_parity = 1 if self.server else 0
        if sid % 2 != peer_parity or sid <= self._last_peer_id:
            self.send(spdy.RstStream(sid, spdy.PROTOCOL_ERROR))
            return
        self._last_peer_id = sid
        if self.goaway_received:
            self.send(spdy.RstStream(sid, spdy.REFUSED_STREAM))
            return
        stream = SpdyStream(self, sid, frame.headers)
        self.streams[sid] = stream
        stream.reply.set_result({})
        self.send(spdy.SynReply(sid, {}))
        if frame.flags & spdy.FLAG_UNIDIRECTIONAL:
            stream.local_closed = True
        if frame.flags & spdy.FLAG_FIN:
            stream._remote_fin()
        self.incoming.put_nowait(stream)

    async def next_stream(self) -> SpdyStream | None:
        """The next stream the peer opens, or None once the connection has ended."""
        get = asyncio.ensure_future(self.incoming.get())
        lost = asyncio.ensure_future(self.closed.wait())
        try:
            await asyncio.wait({get, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not get.done():
                get.cancel()
        if get.done() and not get.cancelled():
            return get.result()
        return None

    # ---- client-side operations
    async def open_stream(self, headers: dict, *, fin: bool = False) -> SpdyStream:
        """Create a stream (SYN_STREAM) and wait for the peer's SYN_REPLY."""
        if self.lost:
            raise StreamClosed("connection lost")
        sid = self._next_id
        self._next_id += 2
        hdrs = {k.lower(): ([v] if isinstance(v, str) else list(v)) for k, v in headers.items()}
        stream = SpdyStream(self, sid, hdrs)
        self.streams[sid] = stream
        self.send(spdy.SynStream(sid, hdrs, spdy.FLAG_FIN if fin else 0))
        if fin:
            stream.local_closed = True
        await stream.reply
        return stream

    async def ping(self) -> None:
        pid = self._next_ping
        self._next_ping += 2
        fut = asyncio.get_running_loop().create_future()
        self._pings[pid] = fut
        self.send(spdy.Ping(pid))
        await fut

    async def close(self, timeout: float = 2.0, *, wait_peer: bool = True) -> None:
        """Send GOAWAY, flush what is queued and (``wait_peer``) wait up to ``timeout`` for the
        peer to hang up first, so that closing never discards data the peer has not read."""
        if not self.lost:
            self.send(spdy.GoAway(self._last_peer_id, spdy.GOAWAY_OK))
            try:
                await asyncio.wait_for(self.flush(), timeout)
                if wait_peer:
                    await asyncio.wait_for(self.closed.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        self.connection_lost()
