"""Port publishing: parse `-p [ip:][hostport[-end]]:containerport[-end][/proto]` and `-P`,
and allocate host ports (explicit ones checked for conflicts, free ones picked from the
kernel's ephemeral range, as Docker does)."""
from __future__ import annotations

import ipaddress
import random
import socket

from .errors import InvalidNetworkConfig, NetworkConflict
from .store import PortBinding

PROTOCOLS = ("tcp", "udp", "sctp")


def _range(text: str, what: str, spec: str) -> tuple[int, int]:
    try:
        if "-" in text:
            a, b = text.split("-", 1)
            lo, hi = int(a), int(b)
        else:
            lo = hi = int(text)
    except ValueError:
        raise InvalidNetworkConfig(f"invalid {what} {text!r} in port spec {spec!r}") from None
    if not (1 <= lo <= hi <= 65535):
        raise InvalidNetworkConfig(f"invalid {what} {text!r} in port spec {spec!r}: must be 1-65535, start <= end")
    return lo, hi


def parse_port_spec(spec: str) -> list[PortBinding]:
    """One `-p` value -> bindings (host_port 0 = pick a free one).  Raises InvalidNetworkConfig."""
    s = spec.strip()
    proto = "tcp"
    if "/" in s:
        s, proto = s.rsplit("/", 1)
        proto = proto.lower()
        if proto not in PROTOCOLS:
            raise InvalidNetworkConfig(f"invalid protocol {proto!r} in port spec {spec!r}")
    host_ip, host_part, cont_part = "", "", s
    if s.startswith("["):                      # [v6]:host:container
        end = s.find("]")
        if end < 0:
            raise InvalidNetworkConfig(f"invalid port spec {spec!r}")
        host_ip, rest = s[1:end], s[end + 2:]
        host_part, _, cont_part = rest.rpartition(":")
    else:
        parts = s.split(":")
        if len(parts) == 1:
            cont_part = parts[0]
        elif len(parts) == 2:
            host_part, cont_part = parts
        elif len(parts) == 3:
            host_ip, host_part, cont_part = parts
        else:
            raise InvalidNetworkConfig(f"invalid port spec {spec!r}")
    if host_ip:
        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise InvalidNetworkConfig(f"invalid host IP {host_ip!r} in port spec {spec!r}") from None
    if not cont_part:
        raise InvalidNetworkConfig(f"no container port in port spec {spec!r}")
    c_lo, c_hi = _range(cont_part, "container port", spec)
    if host_part:
        h_lo, h_hi = _range(host_part, "host port", spec)
        if h_hi - h_lo != c_hi - c_lo and not (h_hi > h_lo and c_lo == c_hi):
            raise InvalidNetworkConfig(f"port ranges in {spec!r} differ in size")
    else:
        h_lo = h_hi = 0
    out = []
    for i, cport in enumerate(range(c_lo, c_hi + 1)):
        hport = 0 if not host_part else h_lo + i
        out.append(PortBinding(container_port=cport, protocol=proto, host_ip=host_ip, host_port=hport))
    if host_part and h_hi > h_lo and c_lo == c_hi:
        # "-p 8000-8010:80": any one free port of the host range
        out = [PortBinding(container_port=c_lo, protocol=proto, host_ip=host_ip, host_port=h_lo, host_port_end=h_hi)]
    return out


def parse_ports(specs: list[str], publish_all: bool = False, exposed: list[str] | None = None) -> list[PortBinding]:
    """All `-p` values plus, with -P, every exposed port ("80/tcp") not already published."""
    out: list[PortBinding] = []
    for s in specs:
        out.extend(parse_port_spec(s))
    if publish_all:
        have = {(b.container_port, b.protocol) for b in out}
        for e in exposed or []:
            port, _, proto = e.partition("/")
            for b in parse_port_spec(f"{port}/{proto or 'tcp'}"):
                if (b.container_port, b.protocol) not in have:
                    out.append(b)
    return out


def ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = f.read().split()
            return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(proto: str, host_ip: str, port: int) -> bool:
    fam = socket.AF_INET6 if ":" in (host_ip or "") else socket.AF_INET
    typ = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    try:
        with socket.socket(fam, typ) as s:
            s.bind((host_ip or ("::" if fam == socket.AF_INET6 else "0.0.0.0"), port))
        return True
    except OSError:
        return False


class PortAllocator:
    """Tracks host ports held by endpoints; a port is held once per (proto, port) across IPs."""

    def __init__(self) -> None:
        self.used: dict[tuple[str, int], str] = {}   # (proto, port) -> container id

    def _taken(self, proto: str, host_ip: str, port: int) -> bool:
        return (proto, port) in self.used

    def reserve(self, container_id: str, b: PortBinding) -> None:
        self.used[(b.protocol, b.host_port)] = container_id

    def release(self, b: PortBinding) -> None:
        self.used.pop((b.protocol, b.host_port), None)

    def allocate(self, container_id: str, bindings: list[PortBinding]) -> list[PortBinding]:
        """Resolve host ports; all-or-nothing.  Raises NetworkConflict if a port is taken."""
        done: list[PortBinding] = []
        try:
            for b in bindings:
                r = (b.host_port, b.host_port_end) if b.host_port_end else None
                b = PortBinding(b.container_port, b.protocol, b.host_ip, 0 if r else b.host_port)
                if b.host_port > 0:
                    if self._taken(b.protocol, b.host_ip, b.host_port) or not _bindable(b.protocol, b.host_ip, b.host_port):
                        raise NetworkConflict(
                            f"Bind for {b.host_ip or '0.0.0.0'}:{b.host_port} failed: port is already allocated")
                else:
                    b.host_port = self._pick(b, r)
                self.reserve(container_id, b)
                done.append(b)
        except BaseException:
            for b in done:
                self.release(b)
            raise
        return done

    def _pick(self, b: PortBinding, r: tuple[int, int] | None) -> int:
        lo, hi = r or ephemeral_range()
        start = random.randint(lo, hi)
        for i in range(hi - lo + 1):
            p = lo + (start - lo + i) % (hi - lo + 1)
            if not self._taken(b.protocol, b.host_ip, p) and _bindable(b.protocol, b.host_ip, p):
                return p
        raise NetworkConflict(f"no free host port in {lo}-{hi} for {b.container_port}/{b.protocol}")
