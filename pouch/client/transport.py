"""Transport: parse a daemon address and open HTTP connections or raw sockets to it.

Supports unix:///path (default /var/run/pouchd.sock), tcp://host:port and http://host:port;
TCP with TLS when given a ``TLSConfig`` (the CLI's --tlsverify/--tlscacert/--tlscert/--tlskey).
"""
from pouch.client.errors import ConnectionFailed, InvalidArgument

DEFAULT_UNIX_SOCKET = "/var/run/pouchd.sock"


def parse_host(host):
    """Return ("unix", path) or ("tcp", (hostname, port)) for a -H style address."""
    if not host:
        return ("unix", DEFAULT_UNIX_SOCKET)
    if host.startswith("unix://"):
        return ("unix", host[len("unix://"):] or DEFAULT_UNIX_SOCKET)
    if host.startswith("/"):
        return ("unix", host)
    for scheme in ("tcp://", "http://"):
        if host.startswith(scheme):
            rest = host[len(scheme):].rstrip("/")
            name, _, port = rest.rpartition(":")
            if not name or not port.isdigit():
                raise InvalidArgument("invalid host address %r: want tcp://HOST:PORT" % host)
            return ("tcp", (name.strip("[]"), int(port)))
    raise InvalidArgument("invalid host address %r: want unix:///path or tcp://host:port" % host)


class TLSConfig:
    """Client TLS: ``ca`` to check the daemon (``verify``), ``cert``/``key`` to prove who we are."""

    def __init__(self, ca=None, cert=None, key=None, verify=True):
        self.ca, self.cert, self.key, self.verify = ca, cert, key, verify

    def context(self):
        import ssl
        ctx = ssl.create_default_context(cafile=self.ca) if self.verify else ssl._create_unverified_context()
        if self.cert:
            ctx.load_cert_chain(self.cert, self.key)
        return ctx


def new_connection(address, timeout=None, tls=None):
    """Return a fresh (lazily connecting) HTTP/1.1 Connection for a parsed address."""
    from pouch.client.http11 import Connection, tcp_connector, unix_connector
    kind, addr = address
    if kind == "unix":
        return Connection(unix_connector(addr, timeout))
    return Connection(tcp_connector(addr[0], addr[1], timeout, tls), "%s:%d" % addr)


def open_socket(address, timeout=None, tls=None):
    """Return a connected raw socket to the daemon (used for hijacked streams)."""
    kind, addr = address
    try:
        if kind == "unix":
            from pouch.client.http11 import open_unix
            return open_unix(addr, timeout)
        from pouch.client.http11 import tcp_connector
        return tcp_connector(addr[0], addr[1], timeout, tls)()
    except OSError as exc:
        raise ConnectionFailed(connect_error_text(address, exc)) from None


def connect_error_text(address, exc):
    """Human text for a failed connection (a TLS one says what the handshake or the server's
    alert reported: "tlsv1 alert unknown ca", "certificate verify failed: ...")."""
    kind, addr = address
    where = "unix://" + addr if kind == "unix" else "tcp://%s:%d" % addr
    if is_tls_error(exc):
        import re
        text = re.sub(r" \(_ssl\.c:\d+\)$", "", re.sub(r"^\[SSL: [A-Z0-9_]+\] ", "", str(exc)))
        return "TLS with pouchd at %s failed: %s" % (where, text)
    return "failed to connect to pouchd at %s: %s (is pouchd running?)" % (where, exc.strerror or exc)


def is_tls_error(exc) -> bool:
    """An ssl.SSLError (without importing ssl, which plain-socket commands never need)."""
    return isinstance(exc, OSError) and type(exc).__module__ == "ssl"
