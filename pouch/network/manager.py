"""NetworkManager: networks (create/ls/inspect/rm/prune), endpoints (attach/detach = connect/
disconnect), per-container netns and /etc files, and recovery after a daemon restart.

The container manager calls, per container start:
    path = await netmgr.create_netns(cid)                       # or a netns path of its own
    ep   = await netmgr.attach(cid, path, "bridge", EndpointConfig(container_name=..., ports=...))
    files = netmgr.write_files(cid, FilesConfig(dir=..., hostname=..., dns=...))  # bind-mount these
and, when the task has stopped, `await netmgr.release(cid)` (detach all + delete the netns).
Modes host / none / container:<id> need no attach: use host's netns, a fresh netns with only
loopback, or the other container's `netns_path(other)`.
"""
from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from pouch.errtypes import Forbidden

from . import bridge as bridgedrv
from . import etchosts, iptables, netns
from .cni import CNIRunner, RuntimeConf

log = logging.getLogger(__name__)
from .errors import (InvalidNetworkConfig, NetworkConflict, NetworkError, NetworkInUse,
                     NetworkNotFound)
from .ports import PortAllocator
from .store import Endpoint, FilesConfig, Network, PortBinding, Sandbox, Store

DEFAULT_BRIDGE = "p0"                 # alibaba/pouch network/mode/bridge/vars.go
DEFAULT_SUBNET = "192.168.5.0/24"
DEFAULT_GATEWAY = "192.168.5.1"
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
AUTO_POOLS = [f"192.168.{i}.0/24" for i in range(6, 255)] + [f"10.{i}.0.0/16" for i in range(200, 255)]


@dataclass
class EndpointConfig:
    """What the container manager knows about one container on one network."""

    container_name: str = ""
    hostname: str = ""
    aliases: list[str] = field(default_factory=list)
    ip: str = ""                      # --ip: static IPv4 address
    mac: str = ""                     # --mac-address
    ports: list[PortBinding] = field(default_factory=list)   # from ports.parse_ports


class NetworkManager:
    def __init__(self, root: str = "/var/lib/pouch/network", netns_dir: str = netns.DEFAULT_RUN_DIR,
                 plugin_dirs: Iterable[str] | None = None, default_bridge: str = DEFAULT_BRIDGE,
                 default_subnet: str = DEFAULT_SUBNET, default_gateway: str = DEFAULT_GATEWAY,
                 host_resolv: str = "/etc/resolv.conf", host_hosts: str = "/etc/hosts") -> None:
        self.root = root
        self.netns_dir = netns_dir
        self.ipam_dir = os.path.join(root, "ipam")
        self.store = Store(root)
        kw = {"plugin_dirs": list(plugin_dirs)} if plugin_dirs else {}
        self.cni = CNIRunner(os.path.join(root, "cni-cache"), **kw)
        self.default = (default_bridge, default_subnet, default_gateway)
        self.host_resolv, self.host_hosts = host_resolv, host_hosts
        self.networks: dict[str, Network] = {}        # id -> Network
        self.sandboxes: dict[str, Sandbox] = {}       # container id -> Sandbox
        self.ports = PortAllocator()
        self._ready: set[str] = set()                 # network ids whose iptables rules are in place
        self._base_ready = False
        self._locks: dict[str, asyncio.Lock] = {}
        self._netlock = asyncio.Lock()
        from .dns import EmbeddedDNS
        self.dns = EmbeddedDNS(self._dns_lookup, self._dns_upstream)   # 127.0.0.11 on user networks
        # (action, network id, attributes) for create/destroy/connect/disconnect: pouchd's events
        self.on_event = None

    def _emit(self, action: str, net: "Network", **attrs: str) -> None:
        if self.on_event is not None:
            self.on_event(action, net.id, {"name": net.name, "type": net.driver, **attrs})

    # -- lifecycle ------------------------------------------------------------------------
    async def init(self) -> None:
        """Load state and make sure bridge/host/none exist.  Call once before anything else."""
        for n in self.store.networks():
            self.networks[n.id] = n
        for sb in self.store.sandboxes():
            self.sandboxes[sb.container_id] = sb
            for ep in sb.endpoints:
                for b in ep.ports:
                    self.ports.reserve(sb.container_id, b)
        names = {n.name for n in self.networks.values()}
        br, sub, gw = self.default
        builtins = [Network(name="bridge", id="", driver="bridge", subnet=sub, gateway=gw, bridge=br,
                            builtin=True, options={bridgedrv.OPT_BRIDGE_NAME: br}),
                    Network(name="host", id="", driver="host", builtin=True),
                    Network(name="none", id="", driver="null", builtin=True)]
        for n in builtins:
            if n.name not in names:
                n.id = _new_id()
                n.created = _now()
                self.store.put_network(n)
                self.networks[n.id] = n

    def _lock(self, cid: str) -> asyncio.Lock:
        return self._locks.setdefault(cid, asyncio.Lock())

    # -- networks -------------------------------------------------------------------------
    def list(self, filters: dict[str, list[str]] | None = None) -> list[Network]:
        """Networks sorted by name; filters: name, id, driver, label (k or k=v), type (builtin|custom)."""
        out = []
        for n in sorted(self.networks.values(), key=lambda n: n.name):
            if filters and not _match(n, filters):
                continue
            out.append(n)
        return out

    def get(self, name_or_id: str) -> Network:
        for n in self.networks.values():
            if n.name == name_or_id or n.id == name_or_id:
                return n
        hits = [n for n in self.networks.values() if name_or_id and n.id.startswith(name_or_id)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise InvalidNetworkConfig(f"network id prefix {name_or_id!r} is ambiguous")
        raise NetworkNotFound(f"network {name_or_id} not found", "network", name_or_id)

    async def create(self, name: str, driver: str = "bridge", subnet: str = "", gateway: str = "",
                     ip_range: str = "", options: dict[str, str] | None = None,
                     labels: dict[str, str] | None = None, internal: bool = False,
                     enable_ipv6: bool = False, subnet6: str = "", gateway6: str = "",
                     ipam_options: dict[str, str] | None = None) -> Network:
        """`network create`.  Raises InvalidNetworkConfig (400) or NetworkConflict (409).
        ``enable_ipv6`` with ``subnet6``: containers get an IPv6 address there too."""
        options = dict(options or {})
        if subnet6 and not enable_ipv6:
            raise InvalidNetworkConfig(f"IPv6 subnet {subnet6} given without --enable-ipv6")
        if enable_ipv6 and not subnet6:
            raise InvalidNetworkConfig("--enable-ipv6 needs an IPv6 --subnet (pouch has no IPv6 address pool)")
        if enable_ipv6:
            subnet6, gateway6 = bridgedrv.complete_ipv6(subnet6, gateway6)
            for n in self.networks.values():
                if n.subnet6 and ipaddress.IPv6Network(n.subnet6).overlaps(ipaddress.IPv6Network(subnet6)):
                    raise NetworkConflict(f"subnet {subnet6} overlaps with network subnet {n.subnet6}")
        if not NAME_RE.match(name or ""):
            raise InvalidNetworkConfig(f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        if driver != "bridge":
            raise InvalidNetworkConfig(f"network driver {driver!r} is not supported (only bridge)")
        if (gateway or ip_range) and not subnet:
            raise InvalidNetworkConfig("--gateway and --ip-range need --subnet")
        async with self._netlock:
            if any(n.name == name for n in self.networks.values()):
                raise NetworkConflict(f"network with name {name} already exists")
            taken = [ipaddress.IPv4Network(n.subnet) for n in self.networks.values() if n.subnet]
            if subnet:
                subnet, gateway, ip_range = bridgedrv.complete_addressing(subnet, gateway, ip_range)
                for t in taken:
                    if t.overlaps(ipaddress.IPv4Network(subnet)):
                        raise NetworkConflict(f"subnet {subnet} overlaps with network subnet {t}")
            else:
                subnet = self._auto_subnet(taken + await asyncio.to_thread(bridgedrv.host_routes))
                subnet, gateway, ip_range = bridgedrv.complete_addressing(subnet, "", "")
            nid = _new_id()
            brname = options.get(bridgedrv.OPT_BRIDGE_NAME) or "pbr-" + nid[:11]
            if len(brname) > 15 or not re.match(r"^[a-zA-Z0-9_.-]+$", brname):
                raise InvalidNetworkConfig(f"invalid bridge name {brname!r} (at most 15 characters)")
            if any(n.bridge == brname for n in self.networks.values()):
                raise NetworkConflict(f"bridge {brname} is used by another network")
            mtu = options.get(bridgedrv.OPT_MTU)
            if mtu and not (mtu.isdigit() and 68 <= int(mtu) <= 65535):
                raise InvalidNetworkConfig(f"invalid mtu {mtu!r}")
            net = Network(name=name, id=nid, driver=driver, subnet=subnet, gateway=gateway, ip_range=ip_range,
                          bridge=brname, options=options, labels=dict(labels or {}), internal=internal,
                          created=_now(), enable_ipv6=enable_ipv6, subnet6=subnet6, gateway6=gateway6,
                          ipam_options=dict(ipam_options or {}))
            self.store.put_network(net)
            self.networks[nid] = net
        self._emit("create", net)
        return net

    def _auto_subnet(self, avoid: list[ipaddress.IPv4Network]) -> str:
        for p in AUTO_POOLS:
            cand = ipaddress.IPv4Network(p)
            if not any(cand.overlaps(a) for a in avoid):
                return p
        raise NetworkConflict("no free subnet left in pouch's address pools; give --subnet")

    async def remove(self, name_or_id: str) -> None:
        """`network rm`: 403 for builtins, 409 while endpoints are attached."""
        net = self.get(name_or_id)
        if net.builtin:
            raise Forbidden(f"{net.name} is a pre-defined network and cannot be removed")
        for ep in self.endpoints(net.id):  # a container's release under way finishes first
            async with self._lock(ep.container_id):
                pass
        users = self.endpoints(net.id)
        if users:
            names = ", ".join(e.container_name or e.container_id[:12] for e in users)
            raise NetworkInUse(f"network {net.name} id {net.id} has active endpoints ({names})")
        async with self._netlock:
            await self._teardown_network(net)
            self.store.delete_network(net)
            self.networks.pop(net.id, None)
        self._emit("destroy", net)

    async def _teardown_network(self, net: Network) -> None:
        await iptables.remove_network(net.bridge, net.subnet, net.internal, _masq(net))
        self._ready.discard(net.id)
        if os.path.exists(f"/sys/class/net/{net.bridge}"):
            await _ip("link", "del", net.bridge)
        shutil.rmtree(os.path.join(self.ipam_dir, net.name), ignore_errors=True)

    async def teardown_networks(self) -> None:
        """Remove every bridge network's device, iptables rules and IPAM state (pouch leaving a host)."""
        for net in list(self.networks.values()):
            if net.driver == "bridge":
                await self._teardown_network(net)

    async def prune(self, filters: dict[str, list[str]] | None = None) -> list[str]:
        """Remove user networks without endpoints; return their names."""
        gone = []
        for n in self.list(filters):
            if not n.builtin and not self.endpoints(n.id):
                await self.remove(n.id)
                gone.append(n.name)
        return gone

    def inspect(self, name_or_id: str) -> dict:
        """Moby-compatible network JSON."""
        n = self.get(name_or_id)
        cfg = [{"Subnet": n.subnet, "Gateway": n.gateway, **({"IPRange": n.ip_range} if n.ip_range else {})}] \
            if n.subnet else []
        if n.subnet6:
            cfg.append({"Subnet": n.subnet6, "Gateway": n.gateway6})
        return {
            "Name": n.name, "Id": n.id, "Created": n.created, "Scope": "local",
            "Driver": {"null": "null"}.get(n.driver, n.driver), "EnableIPv6": n.enable_ipv6,
            "IPAM": {"Driver": "default", "Options": dict(n.ipam_options), "Config": cfg},
            "Internal": n.internal, "Attachable": False, "Ingress": False,
            "Containers": {e.container_id: {
                "Name": e.container_name, "EndpointID": endpoint_id(e), "MacAddress": e.mac,
                "IPv4Address": f"{e.ip}/{e.prefix_len}" if e.ip else "",
                "IPv6Address": f"{e.ip6}/{e.prefix_len6}" if e.ip6 else ""}
                for e in self.endpoints(n.id)},
            "Options": dict(n.options), "Labels": dict(n.labels),
        }

    # -- sandboxes / netns ----------------------------------------------------------------
    async def create_netns(self, cid: str) -> str:
        """Create the container's own network namespace (loopback up); return its path."""
        async with self._lock(cid):
            sb = self.sandboxes.get(cid)
            if sb and sb.netns and netns.exists(sb.netns):
                return sb.netns
            path = await netns.acreate(cid, self.netns_dir)
            sb = sb or Sandbox(container_id=cid)
            sb.netns, sb.own_netns = path, True
            self.sandboxes[cid] = sb
            self.store.put_sandbox(sb)
            return path

    async def adopt_netns(self, cid: str, pid: int) -> str:
        """A running container lost its netns record or file: name its process's namespace again."""
        async with self._lock(cid):
            path = netns.adopt(cid, pid, self.netns_dir)
            sb = self.sandboxes.get(cid) or Sandbox(container_id=cid)
            sb.netns, sb.own_netns = path, True
            self.sandboxes[cid] = sb
            self.store.put_sandbox(sb)
            return path

    def netns_path(self, cid: str) -> str:
        """The netns path of a container (for `--network container:<id>`); 404 if it has none."""
        sb = self.sandboxes.get(cid)
        if not sb or not sb.netns:
            raise NetworkNotFound(f"container {cid} has no network namespace")
        return sb.netns

    def endpoints(self, network_id: str | None = None, cid: str | None = None) -> list[Endpoint]:
        out = []
        for sb in self.sandboxes.values():
            if cid and sb.container_id != cid:
                continue
            out.extend(e for e in sb.endpoints if network_id is None or e.network_id == network_id)
        return out

    # -- attach / detach ------------------------------------------------------------------
    async def attach(self, cid: str, netns_path: str, network: str, cfg: EndpointConfig | None = None) -> Endpoint:
        """Connect the container's netns to a bridge network; return the endpoint (ip, mac, ports).

        Raises NetworkNotFound, InvalidNetworkConfig (host/none, bad --ip), NetworkConflict (already
        connected, ip or host port taken), CNIError (plugin failure; nothing is left behind).
        """
        cfg = cfg or EndpointConfig()
        net = self.get(network)
        if net.driver != "bridge":
            raise InvalidNetworkConfig(f"container cannot be connected to network {net.name} (driver {net.driver})")
        async with self._lock(cid):
            sb = self.sandboxes.get(cid) or Sandbox(container_id=cid, netns=netns_path)
            if sb.netns and sb.netns != netns_path and sb.endpoints:
                raise NetworkConflict(f"container {cid} is attached through another netns {sb.netns}")
            sb.netns = netns_path
            if any(e.network_id == net.id for e in sb.endpoints):
                raise NetworkConflict(f"container {cid} is already connected to network {net.name}")
            static = self._check_static_ip(net, cfg.ip)
            used = {e.ifname for e in sb.endpoints}
            ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
            await self._ensure_network(net)
            bindings = self.ports.allocate(cid, cfg.ports) if cfg.ports else []
            caps: dict = {}
            if static:
                caps["ips"] = [f"{static}/{ipaddress.IPv4Network(net.subnet).prefixlen}"]
            if cfg.mac:
                caps["mac"] = cfg.mac
            if bindings:
                caps["portMappings"] = [{"hostPort": b.host_port, "containerPort": b.container_port,
                                         "protocol": b.protocol, "hostIP": b.host_ip} for b in bindings]
            rt = RuntimeConf(container_id=cid, netns=netns_path, ifname=ifname, capability_args=caps)
            try:
                res = await self.cni.add(bridgedrv.conflist(net, self.ipam_dir, bool(bindings)), rt)
            except BaseException:
                for b in bindings:
                    self.ports.release(b)
                raise
            ep = _endpoint_from_result(res, cid, net, ifname, netns_path, cfg, bindings, static)
            sb.endpoints.append(ep)
            self.sandboxes[cid] = sb
            self.store.put_sandbox(sb)
            if net.is_user_bridge:
                await self._serve_dns(cid, netns_path)
        self._refresh_hosts(net.id, cid)
        self._emit("connect", net, container=cid)
        return ep

    async def _serve_dns(self, cid: str, netns_path: str) -> None:
        try:
            await self.dns.serve(cid, netns_path)
        except OSError as e:  # the container keeps the host's nameservers (and /etc/hosts names)
            log.warning("embedded DNS for %s: %s", cid[:12], e)

    def _dns_lookup(self, cid: str, name: str) -> tuple[list[str], list[str]]:
        """Addresses of ``name`` among the containers on ``cid``'s user networks."""
        sb = self.sandboxes.get(cid)
        v4: list[str] = []
        v6: list[str] = []
        for e in sb.endpoints if sb else []:
            net = self.networks.get(e.network_id)
            if net is None or not net.is_user_bridge:
                continue
            for p in self.endpoints(e.network_id):
                names = {n.lower() for n in (p.container_name, *p.aliases, p.hostname, p.container_id[:12]) if n}
                if name in names or name.endswith("." + net.name.lower()) and name[:-len(net.name) - 1] in names:
                    if p.ip and p.ip not in v4:
                        v4.append(p.ip)
                    if p.ip6 and p.ip6 not in v6:
                        v6.append(p.ip6)
        return v4, v6

    def _dns_upstream(self, cid: str) -> list[str]:
        sb = self.sandboxes.get(cid)
        dns = list(sb.files.dns) if sb and sb.files else []
        text = etchosts.render_resolv(_read(self.host_resolv), dns, [], [])
        return [line.split()[1] for line in text.splitlines() if line.startswith("nameserver ")]

    connect = attach

    def _check_static_ip(self, net: Network, ip: str) -> str:
        if not ip:
            return ""
        try:
            addr = ipaddress.IPv4Address(ip)
        except ValueError:
            raise InvalidNetworkConfig(f"invalid IPv4 address {ip!r}") from None
        sub = ipaddress.IPv4Network(net.subnet)
        if addr not in sub or addr in (sub.network_address, sub.broadcast_address) or str(addr) == net.gateway:
            raise InvalidNetworkConfig(f"address {ip} is not a usable address of network {net.name} ({net.subnet})")
        for e in self.endpoints(net.id):
            if e.ip == str(addr):
                raise NetworkConflict(f"address {ip} is already in use on network {net.name}")
        return str(addr)

    async def ensure_default_bridge(self) -> None:
        """Bring up the default bridge (p0 with its gateway address) at daemon start, as Docker
        does with docker0, instead of at the first container's attach."""
        net = self.get("bridge")
        if not os.path.exists(f"/sys/class/net/{net.bridge}"):
            prefix = ipaddress.IPv4Network(net.subnet).prefixlen
            await _ip("link", "add", "name", net.bridge, "type", "bridge")
            await _ip("addr", "add", f"{net.gateway}/{prefix}", "dev", net.bridge)
            await _ip("link", "set", net.bridge, "up")
        await self._ensure_network(net)

    async def _ensure_network(self, net: Network) -> None:
        if net.id in self._ready:
            return
        if not self._base_ready:
            await iptables.ensure_base()
            self._base_ready = True
        await iptables.ensure_network(net.bridge, net.subnet, net.internal, _masq(net))
        self._ready.add(net.id)

    async def detach(self, cid: str, network: str) -> None:
        """Disconnect: CNI DEL (veth, IPAM, port maps), release host ports, update peers' hosts."""
        net = self.get(network)
        async with self._lock(cid):
            sb = self.sandboxes.get(cid)
            ep = next((e for e in (sb.endpoints if sb else []) if e.network_id == net.id), None)
            if ep is None:
                raise NetworkNotFound(f"container {cid} is not connected to network {net.name}")
            await self._del_endpoint(ep)
            sb.endpoints.remove(ep)
            self.store.put_sandbox(sb)
            if not any(self.networks.get(e.network_id) and self.networks[e.network_id].is_user_bridge
                       for e in sb.endpoints):
                self.dns.stop(cid)
        self._refresh_hosts(net.id, cid)
        self._emit("disconnect", net, container=cid)

    disconnect = detach

    async def _del_endpoint(self, ep: Endpoint) -> None:
        rt = RuntimeConf(container_id=ep.container_id, netns=ep.netns if netns.exists(ep.netns) else "",
                         ifname=ep.ifname)
        try:
            await self.cni.delete(rt, network_name=ep.network_name)
        finally:
            for b in ep.ports:
                self.ports.release(b)

    async def release(self, cid: str) -> None:
        """Container stopped: detach from every network, delete a netns we created, forget it."""
        async with self._lock(cid):
            sb = self.sandboxes.get(cid)
            self.dns.stop(cid)
            if sb is None:
                return
            errors = []
            for ep in list(sb.endpoints):
                try:
                    await self._del_endpoint(ep)
                except NetworkError as e:
                    errors.append(e)
                sb.endpoints.remove(ep)
                self._refresh_hosts(ep.network_id, cid)
                if ep.network_id in self.networks:
                    self._emit("disconnect", self.networks[ep.network_id], container=cid)
            if sb.own_netns and sb.netns:
                netns.delete(sb.netns)
            self.sandboxes.pop(cid, None)
            self.store.delete_sandbox(cid)
        self._locks.pop(cid, None)
        if errors:
            raise errors[0]

    # -- /etc files -----------------------------------------------------------------------
    def write_files(self, cid: str, files: FilesConfig) -> dict[str, str]:
        """Write hosts/hostname/resolv.conf into files.dir; return {"/etc/hosts": path, ...}.

        Kept up to date when peers join or leave the container's user networks.
        """
        sb = self.sandboxes.setdefault(cid, Sandbox(container_id=cid))
        sb.files = files
        self.store.put_sandbox(sb)
        return self._render(sb)

    def files_for(self, cid: str) -> dict[str, str] | None:
        sb = self.sandboxes.get(cid)
        if not sb or not sb.files:
            return None
        d = sb.files.dir
        return {"/etc/hosts": os.path.join(d, "hosts"), "/etc/hostname": os.path.join(d, "hostname"),
                "/etc/resolv.conf": os.path.join(d, "resolv.conf")}

    def _render(self, sb: Sandbox) -> dict[str, str]:
        f = sb.files
        assert f is not None
        hostname = f.hostname or sb.container_id[:12]
        names = [hostname] if not f.domainname else [f"{hostname}.{f.domainname}", hostname]
        base = etchosts.HOSTS_HEADER
        if f.host_network:
            base = _read(self.host_hosts) or base
        own = [etchosts.HostEntry(e.ip, names) for e in sb.endpoints if e.ip]
        peers = []
        for e in sb.endpoints:
            net = self.networks.get(e.network_id)
            if net is None or not net.is_user_bridge:
                continue
            for p in self.endpoints(e.network_id):
                if p.container_id != sb.container_id and p.ip:
                    pn = [n for n in dict.fromkeys([p.container_name, *p.aliases, p.hostname, p.container_id[:12]]) if n]
                    peers.append(etchosts.HostEntry(p.ip, pn))
        hosts = etchosts.render_hosts(own, f.extra_hosts, peers, base=base)
        if sb.container_id in self.dns._servers:  # user network: the embedded DNS forwards the rest
            from .dns import ADDRESS
            resolv = etchosts.render_resolv(_read(self.host_resolv), [ADDRESS], f.dns_search,
                                            f.dns_options or ["ndots:0"], keep_localhost=True)
        else:
            resolv = etchosts.render_resolv(_read(self.host_resolv), f.dns, f.dns_search, f.dns_options,
                                            keep_localhost=f.host_network)
        return etchosts.write_files(f.dir, hosts, hostname, resolv)

    def _refresh_hosts(self, network_id: str, changed_cid: str) -> None:
        net = self.networks.get(network_id)
        targets = {changed_cid}
        if net is not None and net.is_user_bridge:
            targets |= {e.container_id for e in self.endpoints(network_id)}
        for cid in targets:
            sb = self.sandboxes.get(cid)
            if sb and sb.files and sb.files.dir and os.path.isdir(sb.files.dir):
                self._render(sb)

    # -- recovery -------------------------------------------------------------------------
    async def restore(self, live: Iterable[str]) -> list[str]:
        """After a restart: keep live containers' endpoints (IPs, ports) and clean up after gone ones
        (CNI DEL from the cache, IPAM reservations, netns).  Returns the container ids cleaned up."""
        live = set(live)
        gone: set[str] = set()
        for cid in [c for c in self.sandboxes if c not in live]:
            gone.add(cid)
            try:
                await self.release(cid)
            except NetworkError:
                pass
        for att in self.cni.cached_attachments():
            cid = att["containerId"]
            if cid in live:
                continue
            gone.add(cid)
            try:
                await self.cni.delete(RuntimeConf(container_id=cid, netns="", ifname=att["ifName"]),
                                      network_name=att["networkName"])
            except NetworkError:
                pass
        for ip_file, cid in self._ipam_reservations():
            if cid not in live:
                gone.add(cid)
                os.unlink(ip_file)
        for cid in netns.list_ids(self.netns_dir):
            if cid not in live:
                gone.add(cid)
                netns.delete(os.path.join(self.netns_dir, cid))
        for n in self.networks.values():
            if n.driver == "bridge" and any(e.network_id == n.id for e in self.endpoints()):
                await self._ensure_network(n)
        for cid, sb in list(self.sandboxes.items()):  # live containers get their DNS back
            if cid in live and sb.netns and any(
                    self.networks.get(e.network_id) and self.networks[e.network_id].is_user_bridge
                    for e in sb.endpoints) and netns.exists(sb.netns):
                await self._serve_dns(cid, sb.netns)
        return sorted(gone)

    def _ipam_reservations(self) -> list[tuple[str, str]]:
        out = []
        if not os.path.isdir(self.ipam_dir):
            return out
        for netname in os.listdir(self.ipam_dir):
            d = os.path.join(self.ipam_dir, netname)
            for fn in os.listdir(d) if os.path.isdir(d) else []:
                try:
                    ipaddress.ip_address(fn)
                except ValueError:
                    continue
                cid = (_read(os.path.join(d, fn)).splitlines() or [""])[0].strip()
                out.append((os.path.join(d, fn), cid))
        return out

    async def leftovers(self, live: Iterable[str] = (), gone_bridges: Iterable[str] = (),
                        owns: Callable[[str], bool] | None = None) -> list[str]:
        """What this manager's networking still holds for containers not in `live` (empty =
        clean): sandbox records, netns, CNI cache, IPAM reservations, veths on its bridges, the
        CNI iptables rules of its networks for containers `owns` accepts (all when None), and
        any pouch rule left for one of `gone_bridges` (bridges of networks since removed).
        Another daemon's networks, bridges and rules on the same host are not counted."""
        live = set(live)
        out = [f"sandbox record {c}" for c in self.sandboxes if c not in live]
        out += [f"netns {c}" for c in netns.list_ids(self.netns_dir) if c not in live]
        out += [f"cni cache {a['networkName']}/{a['containerId']}/{a['ifName']}"
                for a in self.cni.cached_attachments() if a["containerId"] not in live]
        out += [f"ipam reservation {f} ({c})" for f, c in self._ipam_reservations() if c not in live]
        expected: dict[str, int] = {}
        for e in self.endpoints():
            if e.container_id in live:
                br = self.networks[e.network_id].bridge if e.network_id in self.networks else ""
                expected[br] = expected.get(br, 0) + 1
        bridges = {n.bridge for n in self.networks.values() if n.bridge}
        for br in bridges:
            d = f"/sys/class/net/{br}/brif"
            n = len(os.listdir(d)) if os.path.isdir(d) else 0
            if n > expected.get(br, 0):
                out.append(f"{n - expected.get(br, 0)} veth(s) on bridge {br}")
        names = {n.name for n in self.networks.values()}
        gone = set(gone_bridges) - bridges
        for line in (await iptables.save()).splitlines():
            m = re.search(r'name: \\?"([^"\\]+)\\?" id: \\?"([^"\\]+)\\?"', line)
            if m and m.group(1) in names and m.group(2) not in live and (owns is None or owns(m.group(2))):
                out.append(f"iptables: {line.strip()}")
            m = re.search(r'pouch net (\S+?)"?\s', line + " ")
            if m and m.group(1) in gone:
                out.append(f"iptables: {line.strip()}")
        return out


def endpoint_id(e: Endpoint) -> str:
    return hashlib.sha256(f"{e.container_id}/{e.network_id}".encode()).hexdigest()


def endpoint_settings(e: Endpoint) -> dict:
    """Moby `NetworkSettings.Networks[name]` for container inspect."""
    return {"NetworkID": e.network_id, "EndpointID": endpoint_id(e), "Gateway": e.gateway,
            "IPAddress": e.ip, "IPPrefixLen": e.prefix_len, "MacAddress": e.mac,
            "Aliases": list(e.aliases) or None, "IPv6Gateway": e.gateway6, "GlobalIPv6Address": e.ip6,
            "GlobalIPv6PrefixLen": e.prefix_len6}


def _endpoint_from_result(res: dict, cid: str, net: Network, ifname: str, netns_path: str,
                          cfg: EndpointConfig, bindings: list[PortBinding], static: str) -> Endpoint:
    ifaces = res.get("interfaces") or []
    ip, plen, gw, mac = "", 0, "", ""
    ip6, plen6, gw6 = "", 0, ""
    for a in res.get("ips") or []:
        iface = ipaddress.ip_interface(a["address"])
        if iface.version == 6:
            if not ip6:
                ip6, plen6, gw6 = str(iface.ip), iface.network.prefixlen, a.get("gateway", "")
            continue
        if iface.version == 4 and not ip:
            ip, plen, gw = str(iface.ip), iface.network.prefixlen, a.get("gateway", "")
            idx = a.get("interface")
            if idx is not None and idx < len(ifaces):
                mac = ifaces[idx].get("mac", "")
    if not mac:
        mac = next((i.get("mac", "") for i in ifaces if i.get("name") == ifname and i.get("sandbox")), "")
    return Endpoint(container_id=cid, network_id=net.id, network_name=net.name, ifname=ifname, netns=netns_path,
                    ip=ip, prefix_len=plen, gateway=gw, mac=mac, container_name=cfg.container_name,
                    hostname=cfg.hostname, aliases=list(cfg.aliases), ports=bindings, static_ip=static,
                    ip6=ip6, prefix_len6=plen6, gateway6=gw6)


def _match(n: Network, filters: dict[str, list[str]]) -> bool:
    for key, vals in filters.items():
        if not vals:
            continue
        if key == "name" and not any(v in n.name for v in vals):
            return False
        if key == "id" and not any(n.id.startswith(v) for v in vals):
            return False
        if key == "driver" and n.driver not in vals:
            return False
        if key == "type" and not any((v == "builtin") == n.builtin for v in vals):
            return False
        if key == "label":
            for v in vals:
                k, sep, val = v.partition("=")
                if k not in n.labels or (sep and n.labels[k] != val):
                    return False
    return True


def _masq(n: Network) -> bool:
    return n.options.get(bridgedrv.OPT_MASQ, "true").lower() != "false"


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


async def _ip(*args: str) -> None:
    proc = await asyncio.create_subprocess_exec("ip", *args, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {err.decode().strip()}")


def _new_id() -> str:
    return secrets.token_hex(32)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())
