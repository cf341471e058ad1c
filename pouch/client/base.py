"""Shared request plumbing for every resource mixin: URLs, requests, results, typed errors.

One keep-alive HTTP connection serves the plain calls; streaming calls get their own
connection so that an unread stream never blocks the next request.
"""
from pouch.client import jsonlite, transport
from pouch.client.errors import ConnectionFailed, error_for_status
from pouch.client.http11 import RemoteDisconnected

API_VERSION = "1.24"  # the Pouch face (pouch.daemon.server.face); the docker CLI uses newer ones
DEFAULT_HOST = "unix://" + transport.DEFAULT_UNIX_SOCKET
_RETRYABLE = (RemoteDisconnected, BrokenPipeError, ConnectionResetError)


_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def quote(text, safe=""):
    """Percent-encode like urllib.parse.quote (kept local: urllib.parse costs start-up time)."""
    ok = _SAFE | frozenset(safe.encode())
    return "".join(chr(b) if b in ok else "%%%02X" % b for b in str(text).encode("utf-8"))


def urlencode(pairs):
    return "&".join("%s=%s" % (quote(k), quote(v)) for k, v in pairs)


def encode_params(params):
    """urlencode the set parameters only; bools become 1/0, dicts/lists become JSON."""
    out = []
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "1" if value else "0"
        elif isinstance(value, (dict, list)):
            value = jsonlite.dumps(value)
        out.append((key, str(value)))
    return urlencode(out)


class BaseClient:
    """Holds the address, the keep-alive connection and the request helpers."""

    def __init__(self, host=None, version=API_VERSION, timeout=None, tls=None):
        self.host = host or DEFAULT_HOST
        self.address = transport.parse_host(self.host)
        self.tls = tls  # transport.TLSConfig for a TCP daemon behind TLS
        self.api_version = version
        self.timeout = timeout
        self._conn = None

    # -- URLs --------------------------------------------------------------
    def _url(self, template, *args, params=None):
        """Build '/vX.Y/<path>' with each arg quoted, plus the encoded query string."""
        path = template.format(*(quote(str(a), safe="/:") for a in args))
        url = "/v%s%s" % (self.api_version, path) if self.api_version else path
        query = encode_params(params)
        return url + ("?" + query if query else "")

    # -- connections -------------------------------------------------------
    def new_connection(self, timeout=None):
        """A fresh connection (for streams and for requests that must overlap)."""
        return transport.new_connection(self.address, timeout, self.tls)

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def send_request(self, conn, method, url, body=None, headers=None):
        """Send one request on conn (do not read the reply); JSON-encode dict/list bodies."""
        headers = dict(headers or {})
        encode_chunked = False
        if isinstance(body, (dict, list)):
            body = jsonlite.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        elif body is not None and not isinstance(body, (bytes, bytearray)) \
                and "Content-Length" not in headers:
            headers["Transfer-Encoding"] = "chunked"
            encode_chunked = True
        try:
            conn.request(method, url, body=body, headers=headers, encode_chunked=encode_chunked)
        except (FileNotFoundError, ConnectionRefusedError, PermissionError) as exc:
            conn.close()
            raise ConnectionFailed(transport.connect_error_text(self.address, exc)) from None

    def _request(self, method, url, body=None, headers=None, stream=False):
        """Make a request and return the HTTPResponse after raising for error statuses.

        Plain requests reuse the keep-alive connection (retrying once if the daemon had
        closed it); stream=True uses a dedicated connection the caller reads to the end.
        A TLS failure (the handshake, or the server's alert refusing our certificate) is a
        ConnectionFailed saying what TLS reported.
        """
        try:
            return self._request_once(method, url, body, headers, stream)
        except OSError as exc:
            if transport.is_tls_error(exc):
                if self._conn is not None:
                    self._conn.close()
                raise ConnectionFailed(transport.connect_error_text(self.address, exc)) from None
            raise

    def _request_once(self, method, url, body, headers, stream):
        if stream:
            conn = self.new_connection()
            self.send_request(conn, method, url, body, headers)
            resp = self._get_response(conn, method)
            return self._raise_for_status(resp)
        if self._conn is None:
            self._conn = self.new_connection(self.timeout)
        reused = self._conn.sock is not None
        try:
            self.send_request(self._conn, method, url, body, headers)
            resp = self._get_response(self._conn, method)
        except _RETRYABLE:
            self._conn.close()
            if not reused or (body is not None and not isinstance(body, (bytes, str, dict, list))):
                raise
            self.send_request(self._conn, method, url, body, headers)
            resp = self._get_response(self._conn, method)
        return self._raise_for_status(resp)

    def _get_response(self, conn, method="GET"):
        try:
            return conn.getresponse(method)
        except ConnectionResetError as exc:
            raise ConnectionFailed(transport.connect_error_text(self.address, exc)) from None

    @staticmethod
    def _raise_for_status(resp):
        """Raise the typed error carrying the server's `message` for statuses >= 400."""
        if resp.status < 400:
            return resp
        raw = resp.read()
        message = raw.decode("utf-8", "replace").strip()
        try:
            data = jsonlite.loads(raw)
            if isinstance(data, dict) and "message" in data:
                message = data["message"]
        except ValueError:
            pass
        raise error_for_status(resp.status, message)

    @staticmethod
    def _result(resp, as_json=True):
        """Read the whole body; decode JSON when asked and present."""
        raw = resp.read()
        if not as_json:
            return raw
        return jsonlite.loads(raw) if raw.strip() else None

    # -- verbs -------------------------------------------------------------
    def _get(self, url, **kw):
        return self._request("GET", url, **kw)

    def _post(self, url, body=None, **kw):
        return self._request("POST", url, body=body, **kw)

    def _delete(self, url, **kw):
        return self._request("DELETE", url, **kw)

    def _head(self, url, **kw):
        return self._request("HEAD", url, **kw)
