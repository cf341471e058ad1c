"""The bridge driver: validate/complete a bridge network's addressing and build its CNI conflist.

bridge plugin (veth + Linux bridge, gateway address on the bridge, hairpin so a container
reaches itself through a published port) -> host-local IPAM (own dataDir) -> portmap (only
when ports are published; `snat: true` so 127.0.0.1:hostport reaches the container).
Masquerade is done by our own POUCH-POSTROUTING rule (iptables.py), one rule per network,
instead of the plugin's per-container CNI-* chains.
"""
from __future__ import annotations

import ipaddress
import subprocess

from .errors import InvalidNetworkConfig
from .store import Network

OPT_BRIDGE_NAME = "com.docker.network.bridge.name"
OPT_MTU = "com.docker.network.driver.mtu"
OPT_MASQ = "com.docker.network.bridge.enable_ip_masquerade"
KNOWN_OPTIONS = {OPT_BRIDGE_NAME, OPT_MTU, OPT_MASQ, "com.docker.network.bridge.enable_icc",
                 "com.docker.network.bridge.host_binding_ipv4"}


def complete_addressing(subnet: str, gateway: str, ip_range: str) -> tuple[str, str, str]:
    """Normalise subnet, default the gateway to the first host, check ip_range/gateway fit."""
    try:
        net = ipaddress.IPv4Network(subnet, strict=False)
    except ValueError:
        raise InvalidNetworkConfig(f"invalid subnet {subnet!r}") from None
    if net.prefixlen > 30:
        raise InvalidNetworkConfig(f"subnet {subnet} is too small (prefix must be /30 or larger)")
    if gateway:
        try:
            gw = ipaddress.IPv4Address(gateway)
        except ValueError:
            raise InvalidNetworkConfig(f"invalid gateway {gateway!r}") from None
        if gw not in net or gw in (net.network_address, net.broadcast_address):
            raise InvalidNetworkConfig(f"gateway {gateway} is not a host address of subnet {net}")
    else:
        gw = net.network_address + 1
    if ip_range:
        try:
            rng = ipaddress.IPv4Network(ip_range, strict=False)
        except ValueError:
            raise InvalidNetworkConfig(f"invalid ip-range {ip_range!r}") from None
        if not rng.subnet_of(net):
            raise InvalidNetworkConfig(f"ip-range {rng} is not inside subnet {net}")
        ip_range = str(rng)
    return str(net), str(gw), ip_range


def complete_ipv6(subnet: str, gateway: str) -> tuple[str, str]:
    """An --enable-ipv6 network's v6 subnet (a /64 .. /120) and gateway (first host by default)."""
    try:
        net = ipaddress.IPv6Network(subnet, strict=False)
    except ValueError:
        raise InvalidNetworkConfig(f"invalid IPv6 subnet {subnet!r}") from None
    if net.prefixlen > 120:
        raise InvalidNetworkConfig(f"IPv6 subnet {subnet} is too small (prefix must be /120 or larger)")
    if gateway:
        try:
            gw = ipaddress.IPv6Address(gateway)
        except ValueError:
            raise InvalidNetworkConfig(f"invalid IPv6 gateway {gateway!r}") from None
        if gw not in net or gw == net.network_address:
            raise InvalidNetworkConfig(f"gateway {gateway} is not a host address of subnet {net}")
    else:
        gw = net.network_address + 1
    return str(net), str(gw)


def conflist(net: Network, ipam_dir: str, with_portmap: bool) -> dict:
    subnet = ipaddress.IPv4Network(net.subnet)
    rng: dict = {"subnet": str(subnet), "gateway": net.gateway}
    if net.ip_range:
        r = ipaddress.IPv4Network(net.ip_range)
        lo = max(r.network_address, subnet.network_address + 1)
        hi = min(r.broadcast_address, subnet.broadcast_address - 1)
        rng["rangeStart"], rng["rangeEnd"] = str(lo), str(hi)
    ranges = [[rng]]
    if net.enable_ipv6 and net.subnet6:
        ranges.append([{"subnet": net.subnet6, "gateway": net.gateway6}])
    ipam: dict = {"type": "host-local", "ranges": ranges, "dataDir": ipam_dir}
    if not net.internal:
        ipam["routes"] = [{"dst": "0.0.0.0/0"}] + ([{"dst": "::/0"}] if net.enable_ipv6 and net.subnet6 else [])
    br: dict = {"type": "bridge", "bridge": net.bridge, "isGateway": True, "ipMasq": False,
                "hairpinMode": True, "ipam": ipam, "capabilities": {"ips": True, "mac": True}}
    if net.options.get(OPT_MTU):
        br["mtu"] = int(net.options[OPT_MTU])
    plugins = [br]
    if with_portmap:
        plugins.append({"type": "portmap", "snat": True, "capabilities": {"portMappings": True}})
    return {"cniVersion": "1.0.0", "name": net.name, "plugins": plugins}


def host_routes() -> list[ipaddress.IPv4Network]:
    """IPv4 networks already routed on the host (docker0, LAN...): new subnets must avoid them."""
    try:
        out = subprocess.run(["ip", "-4", "-o", "route", "show", "table", "all"], capture_output=True,
                             text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    nets = []
    for line in out.splitlines():
        f = line.split()
        if f and f[0] in ("local", "broadcast", "unreachable", "blackhole", "prohibit"):
            f = f[1:]
        if not f or f[0] == "default":
            continue
        try:
            n = ipaddress.IPv4Network(f[0], strict=False)
        except ValueError:
            continue
        if n.prefixlen >= 8 and not n.is_loopback:
            nets.append(n)
    return nets
