"""The Kubernetes remote-command and port-forward channel protocols, independent of transport.

Facts from k8s.io/apimachinery (util/remotecommand, util/httpstream, util/wsstream) and kubelet's
streaming server: protocol names and their negotiation, the stream types and WebSocket channel
numbers, the error-stream payloads (plain text up to v3, a metav1.Status JSON from v4 on, with the
exit code of a non-zero exit as a cause), the JSON terminal-size messages of the resize stream and
the one-byte channel prefix (or ASCII digit + base64 text) of WebSocket messages.
"""
from __future__ import annotations

import base64
import json

# SPDY remote command (X-Stream-Protocol-Version), preferred first
V1 = "channel.k8s.io"
V2 = "v2.channel.k8s.io"
V3 = "v3.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V5 = "v5.channel.k8s.io"
SPDY_REMOTECOMMAND_PROTOCOLS = [V4, V3, V2, V1]
PORTFORWARD_PROTOCOL = "portforward.k8s.io"

# WebSocket subprotocols (Sec-WebSocket-Protocol) -> (binary?, JSON status?, stdin close?)
WS_REMOTECOMMAND_PROTOCOLS = {
    V5: (True, True, True),
    "v4.channel.k8s.io": (True, True, False),
    "v4.base64.channel.k8s.io": (False, True, False),
    "channel.k8s.io": (True, False, False),
    "base64.channel.k8s.io": (False, False, False),
}
WS_PORTFORWARD_PROTOCOLS = {
    "v4.channel.k8s.io": True,
    "v4.base64.channel.k8s.io": False,
    PORTFORWARD_PROTOCOL: True,
}

PROTOCOL_HEADER = "X-Stream-Protocol-Version"
ACCEPTED_PROTOCOLS_HEADER = "X-Accepted-Stream-Protocol-Versions"

STREAM_TYPE = "streamType"
PORT_HEADER = "port"
REQUEST_ID_HEADER = "requestID"

STDIN, STDOUT, STDERR, ERROR, RESIZE = "stdin", "stdout", "stderr", "error", "resize"
DATA = "data"
CHANNELS = {STDIN: 0, STDOUT: 1, STDERR: 2, ERROR: 3, RESIZE: 4}
CLOSE_CHANNEL = 255


class NegotiationError(Exception):
    def __init__(self, client: list[str], server: list[str]) -> None:
        super().__init__(f"unable to upgrade: unable to negotiate protocol: client supports "
                         f"{client}, server supports {server}")
        self.server = server


def client_protocols(header_values: list[str]) -> list[str]:
    """All protocols a client offered (repeated headers and comma-separated lists)."""
    out = []
    for v in header_values:
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return out


def negotiate(offered: list[str], supported: list[str]) -> str:
    """The first protocol the client offered that the server supports; "" when the client offered
    none (legacy clients); NegotiationError when nothing matches."""
    if not offered:
        return ""
    for p in offered:
        if p in supported:
            return p
    raise NegotiationError(offered, supported)


def uses_status_json(protocol: str) -> bool:
    return protocol in (V4, V5) or protocol.startswith("v4.") or protocol.startswith("v5.")


def success_status() -> dict:
    return {"metadata": {}, "status": "Success"}


def exit_status(cmd: list[str], code: int) -> dict:
    return {
        "metadata": {}, "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command "
                   f"{cmd}, exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def internal_error_status(message: str) -> dict:
    return {"metadata": {}, "status": "Failure",
            "message": f"Internal error occurred: {message}", "reason": "InternalError",
            "details": {"causes": [{"message": message}]}, "code": 500}


def encode_status(status: dict, json_protocol: bool) -> bytes:
    """What goes on the error stream: the Status JSON (v4+), or for older protocols the message
    of a failure and nothing for success."""
    if json_protocol:
        return json.dumps(status, separators=(",", ":")).encode()
    if status.get("status") == "Success":
        return b""
    return status.get("message", "").encode()


def exit_code_from_status(payload: bytes) -> int:
    """The exit code a v4 error-stream payload reports (0 for success), as client-go reads it."""
    if not payload:
        return 0
    st = json.loads(payload)
    if st.get("status") == "Success":
        return 0
    if st.get("reason") == "NonZeroExitCode":
        for cause in (st.get("details") or {}).get("causes", []):
            if cause.get("reason") == "ExitCode":
                return int(cause["message"])
    raise RuntimeError(st.get("message", "remote command failed"))


class ResizeDecoder:
    """Terminal sizes from a resize stream: concatenated JSON objects {"Width":W,"Height":H}."""

    def __init__(self) -> None:
        self._buf = ""
        self._json = json.JSONDecoder()

    def feed(self, data: bytes) -> list[tuple[int, int]]:
        self._buf += data.decode("utf-8", "replace")
        sizes = []
        while True:
            text = self._buf.lstrip()
            if not text:
                self._buf = ""
                return sizes
            try:
                obj, end = self._json.raw_decode(text)
            except json.JSONDecodeError:
                self._buf = text
                return sizes
            self._buf = text[end:]
            if isinstance(obj, dict):
                try:
                    sizes.append((int(obj.get("Width", 0)), int(obj.get("Height", 0))))
                except (TypeError, ValueError):
                    pass


def encode_resize(width: int, height: int) -> bytes:
    return json.dumps({"Width": width, "Height": height}).encode() + b"\n"


def ws_encode(channel: int, data: bytes, binary: bool):
    """One WebSocket message for ``channel``: bytes for binary protocols, str for base64 ones."""
    if binary:
        return bytes([channel]) + data
    return chr(ord("0") + channel) + base64.b64encode(data).decode()


def ws_decode(message) -> tuple[int, bytes]:
    """(channel, payload) of a received message (bytes: binary protocol; str: base64)."""
    if isinstance(message, (bytes, bytearray)):
        if not message:
            raise ValueError("empty message")
        return message[0], bytes(message[1:])
    if not message:
        raise ValueError("empty message")
    return ord(message[0]) - ord("0"), base64.b64decode(message[1:])
