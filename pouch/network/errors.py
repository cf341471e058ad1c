"""Typed errors of the network subsystem (networks, endpoints, CNI plugins, netns)."""
from __future__ import annotations

from pouch.errtypes import Conflict, InUse, InvalidArgument, NotFound, PouchError


class NetworkError(PouchError):
    """500: the host refused a network operation (netns, iptables, bridge)."""


class InvalidNetworkConfig(InvalidArgument):
    """400: a subnet, gateway, ip-range, port spec or option is malformed or inconsistent."""


class NetworkNotFound(NotFound):
    """404: no network (or endpoint) by that name or id."""


class NetworkConflict(Conflict):
    """409: name taken, subnet overlaps, address or host port already allocated."""


class NetworkInUse(InUse):
    """409: the network still has endpoints attached."""


class CNIError(NetworkError):
    """A CNI plugin failed; carries the plugin's own error code, msg and details."""

    def __init__(self, plugin: str, command: str, code: int, msg: str, details: str = "") -> None:
        text = f"CNI plugin {plugin} {command} failed: {msg}"
        if details:
            text += f" ({details})"
        super().__init__(text)
        self.plugin = plugin
        self.command = command
        self.code = code
        self.msg = msg
        self.details = details


__all__ = [
    "NetworkError", "InvalidNetworkConfig", "NetworkNotFound", "NetworkConflict",
    "NetworkInUse", "CNIError",
]
