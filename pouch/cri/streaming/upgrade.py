"""Upgrading an aiohttp request to SPDY/3.1 (``101 Switching Protocols``) or to a WebSocket.

aiohttp upgrades only to WebSocket; for SPDY the handler installs a payload parser on the request's
connection before answering 101, so that every byte that follows goes to a
:class:`~pouch.cri.streaming.session.SpdySession` instead of the HTTP parser, and the session
writes its frames through the prepared response. The handler keeps running for the life of the
session; when it returns, aiohttp closes the connection.
"""
from __future__ import annotations

from aiohttp import web

from pouch.cri.streaming import protocol
from pouch.cri.streaming.session import SpdySession

SPDY_UPGRADE = "SPDY/3.1"


class _SessionFeeder:
    """The 'payload parser' aiohttp feeds raw connection bytes to after the upgrade."""

    def __init__(self, session: SpdySession) -> None:
        self._session = session

    def feed_data(self, data: bytes):
        self._session.feed_data(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self._session.feed_eof()


def is_websocket(request: web.Request) -> bool:
    return (request.headers.get("Upgrade", "").lower() == "websocket"
            and "upgrade" in request.headers.get("Connection", "").lower())


def is_spdy(request: web.Request) -> bool:
    return (request.headers.get("Upgrade", "").lower() == SPDY_UPGRADE.lower()
            and "upgrade" in request.headers.get("Connection", "").lower())


async def upgrade_spdy(request: web.Request, supported: list[str]):
    """Negotiate the stream protocol and switch to SPDY.

    Returns (response, session, protocol) on success, or (error_response, None, None): 403 when no
    protocol matches (with the accepted ones listed), 400 without SPDY upgrade headers."""
    offered = protocol.client_protocols(request.headers.getall(protocol.PROTOCOL_HEADER, []))
    try:
        proto = protocol.negotiate(offered, supported)
    except protocol.NegotiationError as e:
        headers = {protocol.ACCEPTED_PROTOCOLS_HEADER: ", ".join(supported)}
        return web.Response(status=403, text=str(e) + "\n", headers=headers), None, None
    if not is_spdy(request):
        return web.Response(status=400, text="unable to upgrade: missing upgrade headers in "
                            "request (want Connection: Upgrade, Upgrade: SPDY/3.1)\n"), None, None
    headers = {"Connection": "Upgrade", "Upgrade": SPDY_UPGRADE}
    if proto:
        headers[protocol.PROTOCOL_HEADER] = proto
    resp = web.StreamResponse(status=101, headers=headers)
    resp.force_close()
    transport = request.transport
    session = SpdySession(resp.write, server=True, pause_reading=transport.pause_reading,
                          resume_reading=transport.resume_reading)
    request.protocol.set_parser(_SessionFeeder(session))
    await resp.prepare(request)
    return resp, session, proto
