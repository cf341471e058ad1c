"""On-disk state of the network manager: network objects and per-container sandbox records.

Layout under the root dir given to the manager:
  networks/<id>.json     one Network each
  sandboxes/<cid>.json   a container's endpoints and its /etc files config (for restore)
Every write is an atomic rename (see atomic.py), so a crash leaves the old or the new file;
sandbox records are not fsynced (they describe kernel state that a power loss ends anyway).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from . import atomic


@dataclass
class Network:
    name: str
    id: str
    driver: str = "bridge"          # bridge | host | null
    subnet: str = ""
    gateway: str = ""
    ip_range: str = ""
    bridge: str = ""                # bridge device name
    options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    internal: bool = False
    enable_ipv6: bool = False
    subnet6: str = ""               # the IPv6 subnet of an --enable-ipv6 network
    gateway6: str = ""
    ipam_options: dict[str, str] = field(default_factory=dict)   # --ipam-opt (recorded, shown)
    builtin: bool = False           # bridge/host/none: never removed
    created: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Network":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def is_user_bridge(self) -> bool:
        return self.driver == "bridge" and not self.builtin


@dataclass
class PortBinding:
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""
    host_port: int = 0
    host_port_end: int = 0          # "-p 8000-8010:80": pick one free port of host_port..host_port_end

    def key(self) -> tuple[str, str, int]:
        return (self.protocol, self.host_ip or "0.0.0.0", self.host_port)


@dataclass
class Endpoint:
    container_id: str
    network_id: str
    network_name: str
    ifname: str
    netns: str
    ip: str = ""                    # address without prefix
    prefix_len: int = 0
    gateway: str = ""
    mac: str = ""
    container_name: str = ""
    hostname: str = ""
    aliases: list[str] = field(default_factory=list)
    ports: list[PortBinding] = field(default_factory=list)
    static_ip: str = ""
    ip6: str = ""                   # IPv6 address (networks with IPv6)
    prefix_len6: int = 0
    gateway6: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Endpoint":
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        d["ports"] = [PortBinding(**p) for p in d.get("ports", [])]
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FilesConfig:
    """What a container's /etc/hosts, /etc/hostname and /etc/resolv.conf are made from."""

    dir: str = ""
    hostname: str = ""
    domainname: str = ""
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    extra_hosts: list[str] = field(default_factory=list)   # "name:ip"
    host_network: bool = False


@dataclass
class Sandbox:
    container_id: str
    netns: str = ""
    own_netns: bool = False         # created by the manager (so deleted by it)
    endpoints: list[Endpoint] = field(default_factory=list)
    files: FilesConfig | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Sandbox":
        return cls(container_id=d["container_id"], netns=d.get("netns", ""),
                   own_netns=d.get("own_netns", False),
                   endpoints=[Endpoint.from_dict(e) for e in d.get("endpoints", [])],
                   files=FilesConfig(**d["files"]) if d.get("files") else None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Store:
    def __init__(self, root: str) -> None:
        self.root = root
        self.net_dir = os.path.join(root, "networks")
        self.sb_dir = os.path.join(root, "sandboxes")
        os.makedirs(self.net_dir, exist_ok=True)
        os.makedirs(self.sb_dir, exist_ok=True)

    def _load_dir(self, d: str) -> list[dict]:
        out = []
        for fn in sorted(os.listdir(d)):
            if fn.endswith(".json") and not fn.startswith("."):
                data = atomic.read_json(os.path.join(d, fn))
                if data is not None:
                    out.append(data)
        return out

    def networks(self) -> list[Network]:
        return [Network.from_dict(d) for d in self._load_dir(self.net_dir)]

    def put_network(self, net: Network) -> None:
        atomic.write_json(os.path.join(self.net_dir, net.id + ".json"), net.to_dict())

    def delete_network(self, net: Network) -> None:
        atomic.remove(os.path.join(self.net_dir, net.id + ".json"))

    def sandboxes(self) -> list[Sandbox]:
        return [Sandbox.from_dict(d) for d in self._load_dir(self.sb_dir)]

    def put_sandbox(self, sb: Sandbox) -> None:
        # renamed into place but not fsynced (as the CNI result cache): a killed pouchd finds
        # the old or the new record, and what a record describes (netns, veth, rules) does not
        # outlive a power loss anyway, whose leftovers are reconciled at start.  An fsync here
        # stalled the whole event loop twice per start under concurrent runs.
        atomic.write_json(os.path.join(self.sb_dir, sb.container_id + ".json"), sb.to_dict(), sync=False)

    def delete_sandbox(self, container_id: str) -> None:
        atomic.remove(os.path.join(self.sb_dir, container_id + ".json"))
