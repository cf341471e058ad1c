"""Stream decoders: JSON message streams, multiplexed stdout/stderr frames, raw chunks."""
import struct

from pouch.client import jsonlite

STDIN, STDOUT, STDERR = 0, 1, 2
_HEADER = struct.Struct(">BxxxL")


def read_chunks(reader, size=32768):
    """Yield byte chunks as they arrive from an HTTPResponse or a socket-like reader."""
    read = getattr(reader, "read1", None) or getattr(reader, "recv", None) or reader.read
    while True:
        data = read(size)
        if not data:
            return
        yield data


def json_stream(reader):
    """Yield each JSON value of a stream of concatenated / newline-separated JSON documents."""
    buf = ""
    for chunk in read_chunks(reader):
        buf += chunk.decode("utf-8", "replace")
        while True:
            buf = buf.lstrip()
            if not buf:
                break
            try:
                obj, end = jsonlite.raw_decode(buf)
            except ValueError:
                break
            yield obj
            buf = buf[end:]
    if buf.strip():
        yield jsonlite.loads(buf)


def frames(reader):
    """Yield (stream, payload) from Docker's multiplexed stream (8-byte header per frame)."""
    buf = b""
    for chunk in read_chunks(reader):
        buf += chunk
        while len(buf) >= _HEADER.size:
            stream, size = _HEADER.unpack_from(buf)
            if len(buf) < _HEADER.size + size:
                break
            yield stream, buf[_HEADER.size:_HEADER.size + size]
            buf = buf[_HEADER.size + size:]


def encode_frame(stream, payload):
    """Build one multiplexed frame (used by tests and fakes)."""
    return _HEADER.pack(stream, len(payload)) + payload


def demux_output(reader, tty):
    """Yield (stream, bytes): raw chunks as STDOUT when tty, else decoded frames."""
    if tty:
        for chunk in read_chunks(reader):
            yield STDOUT, chunk
    else:
        yield from frames(reader)
