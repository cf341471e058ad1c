"""The SPDY/3 framer and session, without a network."""
from __future__ import annotations

import asyncio
import struct
import zlib

import pytest

from pouch.cri.streaming import spdy
from pouch.cri.streaming.session import READ_LIMIT, SpdySession


def test_dictionary_is_the_spdy3_one():
    # SPDY/3 section 2.6.10.1: 1423 bytes; zlib names a dictionary by its Adler-32
    assert len(spdy.HEADER_DICTIONARY) == 1423
    assert zlib.adler32(spdy.HEADER_DICTIONARY) == 0xE3C6A7C2
    assert spdy.HEADER_DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.HEADER_DICTIONARY.endswith(b",*,enq=0.")


def test_control_frame_layout():
    # PING: control bit + version 3, type 6, flags 0, length 4, 32-bit id
    assert spdy.FrameEncoder().encode(spdy.Ping(7)) == bytes.fromhex("80030006 00000004 00000007")
    # RST_STREAM: stream id, status
    assert spdy.FrameEncoder().encode(spdy.RstStream(3, spdy.CANCEL)) == bytes.fromhex(
        "80030003 00000008 00000003 00000005")
    # DATA: no control bit, stream id, flags FIN, length
    assert spdy.FrameEncoder().encode(spdy.DataFrame(5, b"ab", spdy.FLAG_FIN)) == bytes.fromhex(
        "00000005 01000002 6162")


ALL = [
    spdy.DataFrame(1, b"hello", spdy.FLAG_FIN),
    spdy.SynStream(1, {"streamtype": ["stdout"], "x": ["a", "b"]}, spdy.FLAG_UNIDIRECTIONAL,
                   0, 3, 0),
    spdy.SynReply(1, {}, 0),
    spdy.HeadersFrame(3, {"port": ["80"]}, spdy.FLAG_FIN),
    spdy.RstStream(9, spdy.REFUSED_STREAM),
    spdy.Settings([(0, 7, 65536), (1, 4, 100)]),
    spdy.Ping(2),
    spdy.GoAway(11, spdy.GOAWAY_OK),
    spdy.WindowUpdate(1, 4096),
    spdy.SynStream(3, {"streamtype": ["stdin"]}),
]


def test_every_frame_round_trips_even_byte_by_byte():
    enc = spdy.FrameEncoder()
    wire = b"".join(enc.encode(f) for f in ALL)
    assert spdy.FrameDecoder().feed(wire) == ALL
    dec, got = spdy.FrameDecoder(), []
    for i in range(len(wire)):
        got += dec.feed(wire[i:i + 1])
    assert got == ALL


def test_header_blocks_share_one_compression_context():
    enc = spdy.FrameEncoder()
    first = enc.encode(spdy.SynStream(1, {"streamtype": ["error"]}))
    second = enc.encode(spdy.SynStream(3, {"streamtype": ["error"]}))
    assert len(second) < len(first)       # the second block refers back to the first
    with pytest.raises(spdy.SpdyProtocolError):
        spdy.FrameDecoder().feed(second)  # meaningless without the first


def test_decodes_a_block_compressed_independently():
    # a header block as another implementation (zlib with the dictionary) would send it
    block = struct.pack(">I", 1) + struct.pack(">I", 10) + b"streamtype" + \
        struct.pack(">I", 6) + b"stdout"
    z = zlib.compressobj(zdict=spdy.HEADER_DICTIONARY)
    comp = z.compress(block) + z.flush(zlib.Z_SYNC_FLUSH)
    payload = struct.pack(">IIBB", 5, 0, 0, 0) + comp
    frame = struct.pack(">HHI", 0x8003, spdy.SYN_STREAM, len(payload)) + payload
    assert spdy.FrameDecoder().feed(frame) == [spdy.SynStream(5, {"streamtype": ["stdout"]})]


def test_large_data_and_unknown_control_frames():
    enc, dec = spdy.FrameEncoder(), spdy.FrameDecoder()
    big = bytes(range(256)) * 4000
    unknown = struct.pack(">HHI", 0x8003, 77, 3) + b"abc"      # skipped, as the spec says
    assert dec.feed(unknown + enc.encode(spdy.DataFrame(1, big))) == [spdy.DataFrame(1, big)]
    with pytest.raises(ValueError):
        enc.encode(spdy.DataFrame(1, b"x" * (spdy.MAX_FRAME_LENGTH + 1)))


@pytest.mark.parametrize("wire", [
    struct.pack(">HHI", 0x8002, spdy.PING, 4) + b"\0\0\0\1",       # SPDY/2
    struct.pack(">HHI", 0x8003, spdy.PING, 2) + b"\0\1",           # short PING
    struct.pack(">HHI", 0x8003, spdy.SYN_REPLY, 8) + b"\0\0\0\1garb",  # bad zlib
])
def test_malformed_input_is_a_protocol_error(wire):
    with pytest.raises(spdy.SpdyProtocolError):
        spdy.FrameDecoder().feed(wire)


async def _pair():
    """A client and a server session wired back to back."""
    box = {}

    async def to_server(data):
        box["s"].feed_data(data)

    async def to_client(data):
        box["c"].feed_data(data)
    box["c"] = SpdySession(to_server, server=False)
    box["s"] = SpdySession(to_client, server=True)
    return box["c"], box["s"]


async def test_session_streams_data_fin_and_reset():
    c, s = await _pair()
    cs = await c.open_stream({"streamType": "stdin"})
    ss = await asyncio.wait_for(s.incoming.get(), 1)
    assert ss.header("streamtype") == "stdin" and ss.id == cs.id == 1
    await cs.write(b"ping")
    await cs.close()
    assert await ss.reader.read() == b"ping"
    await ss.write(b"pong")
    await ss.close()
    assert await cs.reader.read() == b"pong"
    assert not c.streams and not s.streams            # both halves closed: forgotten
    cs2 = await c.open_stream({"streamType": "x"})
    ss2 = await s.incoming.get()
    ss2.reset()
    await asyncio.sleep(0.01)
    assert cs2.was_reset and await cs2.reader.read() == b""
    await c.ping()                                    # answered by the server session
    c.connection_lost(), s.connection_lost()


async def test_session_refuses_bad_stream_ids():
    out = []

    async def capture(data):
        out.append(data)
    s = SpdySession(capture, server=True)
    enc = spdy.FrameEncoder()
    s.feed_data(enc.encode(spdy.SynStream(2, {})))   # even id: server-initiated, not a client's
    await s.flush()
    assert s.incoming.empty()
    frames = spdy.FrameDecoder().feed(b"".join(out))
    assert frames == [spdy.RstStream(2, spdy.PROTOCOL_ERROR)]
    s.connection_lost()


async def test_an_unread_stream_pauses_the_connection_until_read():
    events = []
    box = {}

    async def to_server(data):
        box["s"].feed_data(data)

    async def to_client(data):
        box["c"].feed_data(data)
    box["c"] = c = SpdySession(to_server, server=False)
    box["s"] = s = SpdySession(to_client, server=True,
                               pause_reading=lambda: events.append("pause"),
                               resume_reading=lambda: events.append("resume"))
    a = await c.open_stream({"streamType": "stdin"})
    b = await c.open_stream({"streamType": "resize"})
    sa, sb = await s.incoming.get(), await s.incoming.get()
    chunk = b"x" * (2 * READ_LIMIT + 1)
    await a.write(chunk)
    await b.write(chunk)
    await c.flush()
    assert events == ["pause"]                      # once, though two streams are full
    assert len(await sa.reader.readexactly(len(chunk))) == len(chunk)
    assert events == ["pause"]                      # the other one is still full
    sb.reset()                                      # nobody will read it: let go
    assert events == ["pause", "resume"]
    c.connection_lost(), s.connection_lost()
