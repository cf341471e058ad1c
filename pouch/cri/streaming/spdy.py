"""SPDY/3.1 framing: frame types, their wire encoding, and the zlib-compressed header blocks.

Why this is hand-written: kubectl, crictl and kubelet (client-go's remotecommand and portforward
over k8s.io/apimachinery's httpstream) still speak SPDY/3.1 to a CRI streaming server, and no
maintained Python library implements SPDY (the old ones died with the protocol in 2016). The
Kubernetes streaming protocols use a small subset: this module encodes and decodes exactly the
SPDY/3 frames (SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE
and DATA) following the SPDY/3 draft's frame layouts; stream state lives in
:mod:`pouch.cri.streaming.session`.

Header blocks are compressed with one zlib stream per direction for the whole connection, primed
with the SPDY/3 dictionary (:data:`HEADER_DICTIONARY`, a protocol constant of the SPDY/3 spec) and
flushed with Z_SYNC_FLUSH after each block, so a :class:`FrameEncoder` / :class:`FrameDecoder`
belongs to exactly one connection direction.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3

SYN_STREAM = 1
SYN_REPLY = 2
RST_STREAM = 3
SETTINGS = 4
PING = 6
GOAWAY = 7
HEADERS = 8
WINDOW_UPDATE = 9

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02

# RST_STREAM status codes
PROTOCOL_ERROR = 1
INVALID_STREAM = 2
REFUSED_STREAM = 3
UNSUPPORTED_VERSION = 4
CANCEL = 5
INTERNAL_ERROR = 6
FLOW_CONTROL_ERROR = 7
STREAM_IN_USE = 8
STREAM_ALREADY_CLOSED = 9

# GOAWAY status codes
GOAWAY_OK = 0
GOAWAY_PROTOCOL_ERROR = 1
GOAWAY_INTERNAL_ERROR = 2

MAX_FRAME_LENGTH = 0xFFFFFF
MAX_STREAM_ID = 0x7FFFFFFF

_DICT_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base "
    "content-encoding content-language content-length content-location content-md5 "
    "content-range content-type date etag expect expires from host if-match if-modified-since "
    "if-none-match if-range if-unmodified-since last-modified location max-forwards pragma "
    "proxy-authenticate proxy-authorization range referer retry-after server te trailer "
    "transfer-encoding upgrade user-agent vary via warning www-authenticate method get status"
).split() + ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive",
             "origin"]
_DICT_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
#: The SPDY/3 header compression dictionary (SPDY Protocol draft 3, section 2.6.10.1):
#: length-prefixed common header names and values, then common value fragments.
HEADER_DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _DICT_WORDS) \
    + _DICT_TAIL.encode()

Headers = dict  # lower-case name -> list of values


class SpdyProtocolError(Exception):
    """The peer sent bytes that are not valid SPDY/3 (the connection cannot continue)."""


@dataclass
class DataFrame:
    stream_id: int
    data: bytes = b""
    flags: int = 0


@dataclass
class SynStream:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    flags: int = 0
    associated_id: int = 0
    priority: int = 0
    slot: int = 0


@dataclass
class SynReply:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    flags: int = 0


@dataclass
class RstStream:
    stream_id: int
    status: int


@dataclass
class Settings:
    entries: list = field(default_factory=list)  # (flags, id, value)
    flags: int = 0


@dataclass
class Ping:
    ping_id: int


@dataclass
class GoAway:
    last_good_stream_id: int
    status: int = GOAWAY_OK


@dataclass
class HeadersFrame:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    flags: int = 0


@dataclass
class WindowUpdate:
    stream_id: int
    delta: int


def encode_header_block(headers: Headers) -> bytes:
    """The uncompressed name/value block: count, then length-prefixed lower-case names and
    NUL-joined values."""
    out = [struct.pack(">I", len(headers))]
    for name, values in headers.items():
        if isinstance(values, str):
            values = [values]
        n = name.lower().encode()
        v = "\x00".join(values).encode()
        out.append(struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v)
    return b"".join(out)


def decode_header_block(block: bytes) -> Headers:
    try:
        (count,) = struct.unpack_from(">I", block, 0)
        pos = 4
        headers: Headers = {}
        for _ in range(count):
            (ln,) = struct.unpack_from(">I", block, pos)
            name = block[pos + 4:pos + 4 + ln].decode().lower()
            pos += 4 + ln
            (lv,) = struct.unpack_from(">I", block, pos)
            value = block[pos + 4:pos + 4 + lv].decode()
            pos += 4 + lv
            if pos > len(block):
                raise SpdyProtocolError("truncated header block")
            headers.setdefault(name, []).extend(value.split("\x00"))
    except (struct.error, UnicodeDecodeError) as e:
        raise SpdyProtocolError(f"bad header block: {e}") from None
    if pos != len(block):
        raise SpdyProtocolError("trailing bytes in header block")
    return headers


class FrameEncoder:
    """Encodes frames for one direction of one connection (owns the header compressor)."""

    def __init__(self) -> None:
        self._z = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY,
                                   HEADER_DICTIONARY)

    def _headers(self, headers: Headers) -> bytes:
        block = encode_header_block(headers)
        return self._z.compress(block) + self._z.flush(zlib.Z_SYNC_FLUSH)

    @staticmethod
    def _control(ftype: int, flags: int, payload: bytes) -> bytes:
        if len(payload) > MAX_FRAME_LENGTH:
            raise ValueError("SPDY control frame too long")
        return struct.pack(">HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(payload)) + payload

    def encode(self, frame) -> bytes:
        if isinstance(frame, DataFrame):
            if len(frame.data) > MAX_FRAME_LENGTH:
                raise ValueError("SPDY data frame too long")
            return struct.pack(">II", frame.stream_id & MAX_STREAM_ID,
                               (frame.flags << 24) | len(frame.data)) + bytes(frame.data)
        if isinstance(frame, SynStream):
            body = struct.pack(">IIBB", frame.stream_id, frame.associated_id,
                               (frame.priority & 7) << 5, frame.slot)
            return self._control(SYN_STREAM, frame.flags, body + self._headers(frame.headers))
        if isinstance(frame, SynReply):
            return self._control(SYN_REPLY, frame.flags,
                                 struct.pack(">I", frame.stream_id) + self._headers(frame.headers))
        if isinstance(frame, HeadersFrame):
            return self._control(HEADERS, frame.flags,
                                 struct.pack(">I", frame.stream_id) + self._headers(frame.headers))
        if isinstance(frame, RstStream):
            return self._control(RST_STREAM, 0, struct.pack(">II", frame.stream_id, frame.status))
        if isinstance(frame, Settings):
            body = struct.pack(">I", len(frame.entries)) + b"".join(
                struct.pack(">II", (f << 24) | i, v) for f, i, v in frame.entries)
            return self._control(SETTINGS, frame.flags, body)
        if isinstance(frame, Ping):
            return self._control(PING, 0, struct.pack(">I", frame.ping_id))
        if isinstance(frame, GoAway):
            return self._control(GOAWAY, 0, struct.pack(">II", frame.last_good_stream_id,
                                                        frame.status))
        if isinstance(frame, WindowUpdate):
            return self._control(WINDOW_UPDATE, 0, struct.pack(">II", frame.stream_id,
                                                               frame.delta))
        raise TypeError(f"not a SPDY frame: {frame!r}")


class FrameDecoder:
    """Incremental decoder for one direction of one connection: feed bytes, get whole frames.

    Unknown control frame types are skipped, as the spec asks."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._z = zlib.decompressobj(zdict=HEADER_DICTIONARY)

    def _headers(self, data: bytes) -> Headers:
        try:
            block = self._z.decompress(data)
        except zlib.error as e:
            raise SpdyProtocolError(f"bad compressed header block: {e}") from None
        return decode_header_block(block)

    def feed(self, data: bytes) -> list:
        self._buf += data
        frames = []
        while len(self._buf) >= 8:
            w1, w2 = struct.unpack_from(">II", self._buf, 0)
            length = w2 & 0xFFFFFF
            if len(self._buf) < 8 + length:
                break
            flags = w2 >> 24
            payload = bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            if not w1 & 0x80000000:
                frames.append(DataFrame(w1 & MAX_STREAM_ID, payload, flags))
                continue
            version, ftype = (w1 >> 16) & 0x7FFF, w1 & 0xFFFF
            if version != VERSION:
                raise SpdyProtocolError(f"unsupported SPDY version {version}")
            frame = self._control(ftype, flags, payload)
            if frame is not None:
                frames.append(frame)
        return frames

    def _control(self, ftype: int, flags: int, p: bytes):
        try:
            if ftype == SYN_STREAM:
                sid, assoc, prio, slot = struct.unpack_from(">IIBB", p, 0)
                return SynStream(sid & MAX_STREAM_ID, self._headers(p[10:]), flags,
                                 assoc & MAX_STREAM_ID, prio >> 5, slot)
            if ftype in (SYN_REPLY, HEADERS):
                (sid,) = struct.unpack_from(">I", p, 0)
                cls = SynReply if ftype == SYN_REPLY else HeadersFrame
                return cls(sid & MAX_STREAM_ID, self._headers(p[4:]), flags)
            if ftype == RST_STREAM:
                sid, status = struct.unpack_from(">II", p, 0)
                return RstStream(sid & MAX_STREAM_ID, status)
            if ftype == SETTINGS:
                (n,) = struct.unpack_from(">I", p, 0)
                entries = []
                for i in range(n):
                    fid, value = struct.unpack_from(">II", p, 4 + 8 * i)
                    entries.append((fid >> 24, fid & 0xFFFFFF, value))
                return Settings(entries, flags)
            if ftype == PING:
                return Ping(struct.unpack_from(">I", p, 0)[0])
            if ftype == GOAWAY:
                last, status = struct.unpack_from(">II", p, 0)
                return GoAway(last & MAX_STREAM_ID, status)
            if ftype == WINDOW_UPDATE:
                sid, delta = struct.unpack_from(">II", p, 0)
                return WindowUpdate(sid & MAX_STREAM_ID, delta & 0x7FFFFFFF)
        except struct.error:
            raise SpdyProtocolError(f"short SPDY control frame of type {ftype}") from None
        return None
