"""A tiny threaded fake pouchd on a temp unix socket: records requests, returns canned Moby JSON.

Routes are (method, regex on the path without /vX.Y) -> handler(req) returning
(status, body) where body is a dict/list (JSON), bytes, or HIJACK(fn) to take over the socket
after `101 UPGRADED`.
"""
import http.server
import json
import os
import re
import socketserver
import struct
import tempfile
import threading
from urllib.parse import parse_qs, urlsplit


class Hijack:
    """Return value asking the server to upgrade and hand the raw socket to fn(sock)."""

    def __init__(self, fn):
        self.fn = fn


class Stream:
    """Return value for a chunked streaming reply: an iterable of bytes."""

    def __init__(self, chunks, content_type="application/json"):
        self.chunks = chunks
        self.content_type = content_type


def frame(stream, payload):
    return struct.pack(">BxxxL", stream, len(payload)) + payload


class Request:
    def __init__(self, method, path, query, body, headers):
        self.method, self.path, self.query, self.raw, self.headers = method, path, query, body, headers

    @property
    def json(self):
        return json.loads(self.raw) if self.raw else None

    def q(self, key, default=None):
        return self.query.get(key, [default])[0]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def setup(self):
        super().setup()
        with self.server.fake.lock:
            self.server.fake.connections += 1

    def _handle(self):
        url = urlsplit(self.path)
        path = re.sub(r"^/v\d+\.\d+", "", url.path)
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding") == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if not size:
                    self.rfile.readline()
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = self.rfile.read(length) if length else b""
        req = Request(self.command, path, parse_qs(url.query), body, dict(self.headers))
        srv = self.server.fake
        with srv.lock:
            srv.requests.append(req)
        for method, pattern, fn in srv.routes:
            m = re.fullmatch(pattern, path)
            if method == self.command and m:
                status, payload = fn(req, *m.groups())
                break
        else:
            status, payload = 404, {"message": "page not found: %s %s" % (self.command, path)}
        if isinstance(payload, Hijack):
            self.wfile.write(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream"
                             b"\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
            self.wfile.flush()
            payload.fn(self.connection)
            self.close_connection = True
            return
        if isinstance(payload, Stream):
            self.send_response(status)
            self.send_header("Content-Type", payload.content_type)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in payload.chunks:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            return
        data = payload if isinstance(payload, bytes) else (
            json.dumps(payload).encode() if payload is not None else b"")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PUT = do_HEAD = _handle


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        request, _ = super().get_request()
        return request, ("local", 0)


class FakePouchd:
    """Start with `with FakePouchd() as fake:`; `fake.host` is the -H value."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="fakepouchd")
        self.path = os.path.join(self.dir, "pouchd.sock")
        self.host = "unix://" + self.path
        self.routes = []
        self.requests = []
        self.connections = 0
        self.lock = threading.Lock()
        self.started = threading.Event()

    def route(self, method, pattern, fn=None, reply=None, status=200):
        """Register a handler, or a fixed (status, reply)."""
        if fn is None:
            fn = lambda req, *groups: (status, reply)  # noqa: E731
        self.routes.insert(0, (method, pattern, fn))

    def find(self, method, pattern):
        return [r for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)]

    def __enter__(self):
        self.server = _Server(self.path, _Handler)
        self.server.fake = self
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        os.unlink(self.path)
        os.rmdir(self.dir)
