"""TLS of pouchd's TCP listeners (``--tlsverify --tlscacert --tlscert --tlskey``, as dockerd's).

asyncio's TLS layer (CPython 3.11's ``asyncio.sslproto``) drops the alert OpenSSL writes when a
handshake fails (an unknown CA, an expired or missing client certificate) and just closes the
connection, so a refused client sees a bare EOF instead of the reason that Go's crypto/tls (dockerd)
sends.  ``server_context`` therefore wraps ``SSLProtocol._on_handshake_complete`` once to flush the
pending alert record before asyncio aborts the connection.  No library offers this; the wrapper is
guarded so that a Python without that internal keeps working, only without the alert.
"""
from __future__ import annotations

import ssl


def server_context(cert: str, key: str, cacert: str | None, verify: bool) -> ssl.SSLContext:
    """The listener's context: TLS 1.2+, our certificate, and with ``verify`` a client
    certificate from ``cacert`` required."""
    _send_handshake_alerts()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if verify:
        ctx.load_verify_locations(cacert)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _send_handshake_alerts() -> None:
    from asyncio import sslproto
    proto = getattr(sslproto, "SSLProtocol", None)
    original = getattr(proto, "_on_handshake_complete", None)
    if original is None or getattr(original, "_pouch_flushes_alerts", False) \
            or not hasattr(proto, "_process_outgoing"):
        return

    def on_handshake_complete(self, handshake_exc):
        if handshake_exc is not None:
            try:
                self._process_outgoing()  # the alert, written before the transport is aborted
            except Exception:  # noqa: BLE001 - best effort: the refusal stands either way
                pass
        return original(self, handshake_exc)

    on_handshake_complete._pouch_flushes_alerts = True
    proto._on_handshake_complete = on_handshake_complete
