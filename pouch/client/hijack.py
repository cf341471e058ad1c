"""HIJACK: upgrade an HTTP request (attach, exec start) into a raw bidirectional socket.

`hijack()` sends the request with `Connection: Upgrade` / `Upgrade: tcp`, reads the
`101 UPGRADED` head and returns a `HijackedSocket` holding any bytes that arrived after it.
"""
from _socket import SHUT_WR

from pouch.client import jsonlite, transport
from pouch.client.errors import APIError, error_for_status


class HijackedSocket:
    """A socket whose first bytes may already be buffered from the HTTP upgrade reply."""

    def __init__(self, sock, leftover=b""):
        self.sock = sock
        self._leftover = leftover

    def recv(self, size=32768):
        if self._leftover:
            data, self._leftover = self._leftover[:size], self._leftover[size:]
            return data
        try:
            return self.sock.recv(size)
        except (ConnectionResetError, OSError):
            return b""

    read1 = recv

    def sendall(self, data):
        self.sock.sendall(data)

    def close_write(self):
        """Half-close: tell the daemon stdin has ended while still reading output."""
        try:
            self.sock.shutdown(SHUT_WR)
        except OSError:
            pass

    def fileno(self):
        return self.sock.fileno()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _ClosedBeforeReply(APIError):
    """The connection ended before any byte of a reply."""


def _read_head(sock):
    """Read up to the end of the HTTP head; return (status, headers, leftover bytes)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(4096)
        if not data:
            raise (APIError if buf else _ClosedBeforeReply)("daemon closed the connection during upgrade")
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return status, headers, rest


def _read_error(sock, headers, rest, status):
    length = int(headers.get("content-length", "0") or 0)
    while len(rest) < length:
        data = sock.recv(4096)
        if not data:
            break
        rest += data
    message = rest.decode("utf-8", "replace").strip()
    try:
        message = jsonlite.loads(rest).get("message", message)
    except (ValueError, AttributeError):
        pass
    return error_for_status(status, message)


def hijack(address, method, url, body=None, timeout=None, tls=None, headers=None, sock=None):
    """Send an upgrade request to the daemon and return the raw HijackedSocket.

    ``sock``: an idle keep-alive connection to upgrade instead of opening a new one (saves a
    connect and the daemon's accept); if the daemon had closed it, a new one is opened.
    """
    if sock is not None:
        try:
            return _upgrade(sock, method, url, body, headers)
        except (_ClosedBeforeReply, ConnectionResetError, BrokenPipeError):
            pass  # the daemon had closed the idle connection: nothing was done
    return _upgrade(transport.open_socket(address, timeout, tls), method, url, body, headers)


def _upgrade(sock, method, url, body, headers):
    payload = jsonlite.dumps(body).encode() if body is not None else b""
    extra = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
    head = (
        "%s %s HTTP/1.1\r\nHost: pouchd\r\nUser-Agent: pouch-cli\r\n"
        "Connection: Upgrade\r\nUpgrade: tcp\r\n%s"
        "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (method, url, extra, len(payload))
    )
    try:
        sock.sendall(head.encode("latin-1") + payload)
        status, headers, rest = _read_head(sock)
        if status >= 400:
            raise _read_error(sock, headers, rest, status)
    except BaseException:
        sock.close()
        raise
    sock.settimeout(None)
    return HijackedSocket(sock, rest)
