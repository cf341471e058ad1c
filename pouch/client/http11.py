"""A minimal HTTP/1.1 client connection (keep-alive, chunked, streaming reads).

Hand-written instead of http.client because importing http.client pulls in `email` and
`ssl` (~18 ms), over a third of the CLI's 50 ms start-up budget. It speaks only what
pouchd needs: one request at a time per connection, Content-Length or chunked bodies.
Unix sockets are opened with `_socket` (the C module): `import socket` costs ~2.5 ms (it
imports enum and selectors) and is only imported for TCP addresses.
"""
import io

import _socket


class RemoteDisconnected(ConnectionResetError):
    """The server closed the connection before sending a status line."""


class Response:
    """A response whose body is read lazily from the connection's socket file."""

    def __init__(self, conn, fp, method):
        self._conn = conn
        self.fp = fp
        line = fp.readline(65537)
        if not line:
            raise RemoteDisconnected("Remote end closed connection without response")
        parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise ConnectionResetError("bad status line: %r" % line)
        self.version = parts[0]
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        self.headers = {}
        while True:
            h = fp.readline(65537)
            if h in (b"\r\n", b"\n", b""):
                break
            key, _, value = h.decode("latin-1").partition(":")
            self.headers[key.strip().lower()] = value.strip()
        te = self.headers.get("transfer-encoding", "").lower()
        self.chunked = "chunked" in te
        cl = self.headers.get("content-length")
        self.length = int(cl) if cl is not None and not self.chunked else None
        if method == "HEAD" or self.status in (204, 304) or 100 <= self.status < 200:
            self.length = 0
        self.will_close = self.headers.get("connection", "").lower() == "close" or \
            (self.length is None and not self.chunked)
        self._chunk_left = 0
        self._done = self.length == 0
        if self._done:
            self._finish()

    def getheader(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def _finish(self):
        self._done = True
        if self._conn is not None:
            self._conn._response_done(self.will_close)
            self._conn = None

    def _read_chunked(self, amt):
        if self._chunk_left == 0:
            line = self.fp.readline(65537)
            if not line:
                self._finish()
                return b""
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.fp.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                self._finish()
                return b""
            self._chunk_left = size
        n = self._chunk_left if amt is None or amt < 0 else min(amt, self._chunk_left)
        data = self.fp.read(n)
        self._chunk_left -= len(data)
        if self._chunk_left == 0:
            self.fp.readline(3)
        if not data:
            self._finish()
        return data

    def read1(self, amt=32768):
        """Return up to amt bytes as soon as some are available (b"" at the end)."""
        if self._done:
            return b""
        if self.chunked:
            return self._read_chunked(amt)
        if self.length is not None:
            data = self.fp.read1(min(amt, self.length))
            self.length -= len(data)
            if self.length <= 0 or not data:
                self._finish()
            return data
        data = self.fp.read1(amt)
        if not data:
            self._finish()
        return data

    def read(self, amt=None):
        """Read amt bytes, or everything when amt is None."""
        if amt is not None:
            out = b""
            while len(out) < amt:
                data = self.read1(amt - len(out))
                if not data:
                    break
                out += data
            return out
        parts = []
        while True:
            data = self.read1(65536)
            if not data:
                return b"".join(parts)
            parts.append(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if not self._done:
            self.will_close = True
            self._finish()


class Connection:
    """One HTTP/1.1 connection; connect_fn() returns a connected socket."""

    def __init__(self, connect_fn, host_header="pouchd"):
        self.connect_fn = connect_fn
        self.host_header = host_header
        self.sock = None
        self.fp = None

    def connect(self):
        self.sock = self.connect_fn()
        self.fp = io.BufferedReader(_SocketReader(self.sock))

    def request(self, method, url, body=None, headers=None, encode_chunked=False):
        if self.sock is None:
            self.connect()
        head = ["%s %s HTTP/1.1" % (method, url), "Host: " + self.host_header,
                "User-Agent: pouch-cli"]
        headers = dict(headers or {})
        if isinstance(body, (bytes, bytearray)):
            headers["Content-Length"] = str(len(body))
        elif body is None and method in ("POST", "PUT"):
            headers["Content-Length"] = "0"
        head += ["%s: %s" % kv for kv in headers.items()]
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if isinstance(body, (bytes, bytearray)):
            self.sock.sendall(data + body)
        else:
            self.sock.sendall(data)
            if body is not None:
                self._send_stream(body, encode_chunked)

    def _send_stream(self, fileobj, chunked):
        while True:
            block = fileobj.read(65536)
            if not block:
                break
            if chunked:
                self.sock.sendall(b"%x\r\n" % len(block) + block + b"\r\n")
            else:
                self.sock.sendall(block)
        if chunked:
            self.sock.sendall(b"0\r\n\r\n")

    def take_socket(self):
        """Hand the idle keep-alive socket over (for an upgrade request) and forget it; None when
        there is none or when bytes are pending on it (a reply the caller has not read)."""
        sock, fp = self.sock, self.fp
        if sock is None:
            return None
        timeout = sock.gettimeout()
        sock.setblocking(False)
        try:
            data = fp.read1(65536)  # what the buffer holds, else one non-blocking recv
        except (BlockingIOError, InterruptedError):
            data = None  # nothing pending: the socket is ours to reuse
        except OSError:
            data = b""
        sock.settimeout(timeout)
        if data is not None:  # unread bytes, or b"": the daemon has closed it
            self.close()
            return None
        self.fp, self.sock = None, None
        fp.detach()
        return sock

    def getresponse(self, method="GET"):
        return Response(self, self.fp, method)

    def _response_done(self, will_close):
        if will_close:
            self.close()

    def close(self):
        if self.fp is not None:
            self.fp.close()
            self.fp = None
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None


class _SocketReader(io.RawIOBase):
    """The raw side of sock.makefile("rb") for a `_socket.socket` (which has no makefile)."""

    def __init__(self, sock):
        super().__init__()
        self._sock = sock

    def readable(self):
        return True

    def readinto(self, buf):
        return self._sock.recv_into(buf)

    def fileno(self):
        return self._sock.fileno()


def open_unix(path, timeout=None):
    """A connected AF_UNIX stream socket (a `_socket.socket`: sendall/recv/shutdown/close)."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock


def unix_connector(path, timeout=None):
    def connect():
        return open_unix(path, timeout)
    return connect


def tcp_connector(host, port, timeout=None, tls=None):
    """``tls``: a transport.TLSConfig, or None for plain TCP."""
    def connect():
        import socket
        sock = socket.create_connection((host, port), timeout=timeout)
        if tls is None:
            return sock
        try:
            return tls.context().wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
    return connect
