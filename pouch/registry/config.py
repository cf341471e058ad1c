"""Options of the registry client: insecure registries, mirrors, TLS material, concurrency."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidReference

DOCKER_HUB_ENDPOINT = "https://registry-1.docker.io"


# what pouchd lists as insecure before its --insecure-registries, as Docker does
LOOPBACK_INSECURE = ("127.0.0.0/8", "::1/128")


@dataclass
class RegistryConfig:
    """What pouchd's ``--insecure-registries``, ``--registry-mirrors`` and friends set.

    insecure_registries: ``host[:port]`` or CIDR entries; only these may use plain http or
        untrusted TLS. (pouchd adds LOOPBACK_INSECURE first, as Docker does; this class does not.)
    mirrors: base URLs (``https://mirror.example``) tried in order before the origin, for
        docker.io only unless ``mirror_all_registries``. A failing mirror falls back to the next.
    certs_dir: ``<certs_dir>/<host[:port]>/ca.crt`` (and client.cert/client.key) trusted for that host.
    """

    insecure_registries: list[str] = field(default_factory=list)
    mirrors: list[str] = field(default_factory=list)
    mirror_all_registries: bool = False
    certs_dir: str | None = None
    max_concurrent_downloads: int = 3
    max_concurrent_uploads: int = 5
    download_retries: int = 5
    chunk_size: int = 1024 * 1024  # 1 MiB: fewer, larger gRPC writes into containerd (~20% faster pulls than 256 KiB)
    upload_chunk_size: int | None = None  # None: monolithic upload; else chunked PATCHes of this size
    mirror_down_seconds: float = 30.0
    proxy: str = ""     # HTTP proxy every registry request goes through (pouchd --image-proxy)
    p2p_peer: str = ""  # base URL of the local P2P peer (pouch.p2p.peer): first stop for every registry
    p2p_tls: tuple[str, str, str] | None = None  # (CA, cert, key): mutual TLS with an https:// p2p_peer

    def __post_init__(self) -> None:
        self._hosts: set[str] = set()
        self._nets: list = []
        for entry in self.insecure_registries:
            entry = entry.strip().removeprefix("http://").removeprefix("https://").rstrip("/")
            if "/" in entry:
                try:
                    self._nets.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    raise InvalidReference(f"invalid insecure registry CIDR {entry!r}") from None
            elif entry:
                self._hosts.add(entry.lower())
        self.mirrors = [m.rstrip("/") for m in self.mirrors]
        for m in self.mirrors:
            if not m.startswith(("http://", "https://")):
                raise InvalidReference(f"registry mirror {m!r} must be an http:// or https:// URL")

    def is_insecure(self, hostport: str) -> bool:
        """Whether ``host[:port]`` is listed (by exact entry, host name, or CIDR)."""
        hostport = hostport.lower()
        if hostport.startswith("[") and "]" in hostport:   # [::1]:5000
            host = hostport[1:hostport.index("]")]
        else:
            host = hostport.rsplit(":", 1)[0] if hostport.count(":") == 1 else hostport
        if hostport in self._hosts or host in self._hosts:
            return True
        try:
            addr = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        return any(addr in net for net in self._nets)

    def host_certs(self, hostport: str) -> Path | None:
        if not self.certs_dir:
            return None
        path = Path(self.certs_dir) / hostport
        return path if path.is_dir() else None
