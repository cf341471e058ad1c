"""Stream decoders: JSON message streams, multiplexed stdout/stderr frames, raw chunks."""
from pouch.client import jsonlite

STDIN, STDOUT, STDERR = 0, 1, 2
SYSTEM = 3  # pouchd's exit code trailer ({"ExitCode": N}) on an exec stream that asked for it
_HEADER_SIZE = 8  # stream id, 3 zero bytes, payload length (big-endian uint32)


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
        while len(buf) >= _HEADER_SIZE:
            stream, size = buf[0], int.from_bytes(buf[4:8], "big")
            if len(buf) < _HEADER_SIZE + size:
                break
            yield stream, buf[_HEADER_SIZE:_HEADER_SIZE + size]
            buf = buf[_HEADER_SIZE + size:]


def encode_frame(stream, payload):
    """Build one multiplexed frame (used by tests and fakes)."""
    return bytes((stream, 0, 0, 0)) + len(payload).to_bytes(4, "big") + payload


def demux_output(reader, tty):
    """Yield (stream, bytes): raw chunks as STDOUT when tty, else decoded frames."""
    if tty:
        for chunk in read_chunks(reader):
            yield STDOUT, chunk
    else:
        yield from frames(reader)


def exit_code_of(payload):
    """The exit code a SYSTEM frame carries, or None when it is not an exit code trailer."""
    try:
        value = jsonlite.loads(payload)
    except ValueError:
        return None
    code = value.get("ExitCode") if isinstance(value, dict) else None
    return code if isinstance(code, int) else None


def copy_output(reader, tty, stdout, stderr):
    """Write a non-interactive session's output to the binary files stdout/stderr until the
    stream ends; return the exit code of a SYSTEM trailer, or None (no trailer)."""
    code = None
    for stream, data in demux_output(reader, tty):
        if stream == SYSTEM:
            code = exit_code_of(data)
            continue
        target = stderr if stream == STDERR else stdout
        target.write(data)
        target.flush()
    return code
