"""What a container gets from the host besides its image: network, volumes, lxcfs views, disk quota.

The container manager calls these hooks at fixed points of the lifecycle:
``prepare`` (create: mounts, network mode, quota), ``before_start`` (netns and
CNI attach), ``after_stop`` (CNI release), ``release`` (rm: volumes, quota),
``update_resources``, and ``connect``/``disconnect`` (``network connect``; the manager holds
the container's lock).  Each subsystem is optional: a daemon without lxcfs or
without a quota-capable home refuses the flags that need them, clearly.  ``lookup`` (given at
construction: ContainerManager.get) resolves ``container:<x>`` modes and ``--volumes-from``.
(The ContainerManager calls this object ``sandbox``; OCI hook files are ``oci_hooks_dirs``.)
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets

from pouch.errtypes import Conflict, InvalidArgument
from pouch.network import ports as portmod
from pouch.network.manager import EndpointConfig, NetworkManager, endpoint_settings
from pouch.network.store import FilesConfig, PortBinding
from pouch.oci import resources as oci_resources
from pouch.volume import mounts as vmounts
from pouch.volume.manager import VolumeManager

log = logging.getLogger(__name__)

BRIDGE = "bridge"


def network_mode(host: dict) -> str:
    mode = host.get("NetworkMode") or "default"
    return BRIDGE if mode == "default" else mode


def moby_port_bindings(exposed: dict | None, bindings: dict | None, publish_all: bool) -> list[PortBinding]:
    """HostConfig.PortBindings (+ ExposedPorts with -P) -> network PortBindings."""
    out: list[PortBinding] = []
    have = set()
    for key, hosts in (bindings or {}).items():
        port, _, proto = key.partition("/")
        for h in hosts or [{}]:
            spec = f"{h.get('HostIp') + ':' if h.get('HostIp') else ''}{h.get('HostPort') or ''}:{port}/{proto or 'tcp'}" \
                if (h.get("HostPort") or h.get("HostIp")) else f"{port}/{proto or 'tcp'}"
            if h.get("HostIp") and not h.get("HostPort"):
                spec = f"{h['HostIp']}::{port}/{proto or 'tcp'}"
            out.extend(portmod.parse_port_spec(spec))
            have.add((port, proto or "tcp"))
    if publish_all:
        for key in (exposed or {}):
            port, _, proto = key.partition("/")
            if (port, proto or "tcp") not in have:
                out.extend(portmod.parse_port_spec(f"{port}/{proto or 'tcp'}"))
    return out


def moby_mount(m: dict) -> vmounts.MountSpec:
    """HostConfig.Mounts entry (Moby object) -> MountSpec."""
    typ = (m.get("Type") or "volume").lower()
    target = m.get("Target") or m.get("Destination") or ""
    if not target.startswith("/"):
        raise InvalidArgument(f"invalid mount config: mount path must be absolute: {target!r}")
    spec = vmounts.MountSpec(type=typ, destination=target, source=m.get("Source") or "",
                             readonly=bool(m.get("ReadOnly")))
    if typ == "bind":
        if not spec.source.startswith("/"):
            raise InvalidArgument(f"invalid mount config for type \"bind\": invalid mount path: '{spec.source}'")
        if not os.path.exists(spec.source):
            raise InvalidArgument(f"invalid mount config for type \"bind\": bind source path does not exist: "
                                  f"{spec.source}")
        spec.propagation = (m.get("BindOptions") or {}).get("Propagation") or ""
    elif typ == "volume":
        vo = m.get("VolumeOptions") or {}
        spec.nocopy = bool(vo.get("NoCopy"))
        spec.volume_labels = dict(vo.get("Labels") or {})
        drv = vo.get("DriverConfig") or {}
        spec.volume_driver = drv.get("Name") or "local"
        spec.volume_options = dict(drv.get("Options") or {})
    elif typ == "tmpfs":
        to = m.get("TmpfsOptions") or {}
        if to.get("SizeBytes"):
            spec.tmpfs_options.append(f"size={int(to['SizeBytes'])}")
        if to.get("Mode"):
            spec.tmpfs_options.append(f"mode={int(to['Mode']):o}")
    else:
        raise InvalidArgument(f"invalid mount config: mount type unknown: {typ!r}")
    return spec


class SandboxHooks:
    def __init__(self, network: NetworkManager, volumes: VolumeManager, containers_dir: str,
                 lxcfs=None, quota=None, lxcfs_default: bool = False, lookup=None) -> None:
        self.network = network
        self.volumes = volumes
        self.containers_dir = containers_dir
        self.lxcfs = lxcfs
        self.quota = quota  # pouch.quota.backend.QuotaBackend, None when quota is off
        self.quota_reason = ""
        self.disk = None
        if quota is not None:
            from .diskquota import DiskQuota
            self.disk = DiskQuota(quota)
        self.lxcfs_default = lxcfs_default
        self.lookup = lookup  # container lookup (ContainerManager.get): --net/--pid container:X, --volumes-from
        self._releases: dict[str, asyncio.Task] = {}

    # -- create ------------------------------------------------------------------
    async def prepare(self, c, img, layer_dirs: list[str]) -> tuple[list[dict], str | None]:
        host, config = c.host_config, c.config
        cdir = os.path.join(self.containers_dir, c.id)
        mode = network_mode(host)
        netns = None
        if mode == "host":
            pass
        elif mode.startswith("container:"):
            other = self.lookup(mode.split(":", 1)[1])
            if other.id == c.id:
                raise InvalidArgument("cannot join a container's own network namespace")
            host["NetworkMode"] = f"container:{other.id}"
            netns = os.path.join(self.network.netns_dir, other.id)
        else:
            if mode != "none":
                self.network.get(mode)  # 404 for an unknown network
            netns = os.path.join(self.network.netns_dir, c.id)
        # the image's EXPOSE entries join the container's (as Docker merges them at create; -P uses them)
        img_exposed = ((img.config.get("config") or {}).get("ExposedPorts") or {}) if img else {}
        if img_exposed:
            config["ExposedPorts"] = {**img_exposed, **(config.get("ExposedPorts") or {})}
        # ports are checked now so a bad -p fails the create, not the start
        moby_port_bindings(config.get("ExposedPorts"), host.get("PortBindings"), bool(host.get("PublishAllPorts")))

        mounts: list[dict] = []
        points: list[dict] = []
        # /etc files
        if mode.startswith("container:"):
            files = self.network.files_for(host["NetworkMode"].split(":", 1)[1]) or {}
        else:
            files = self.network.write_files(c.id, self._files_config(c, cdir, mode == "host"))
        if config.get("DisableNetworkFiles"):  # Pouch: the image's own /etc files stay
            files = {}
        for dest, src in files.items():
            mounts.append({"destination": dest, "type": "bind", "source": src, "options": ["rbind", "rprivate"]})
        c.meta["HostsPath"] = files.get("/etc/hosts", "")
        c.meta["HostnamePath"] = files.get("/etc/hostname", "")
        c.meta["ResolvConfPath"] = files.get("/etc/resolv.conf", "")

        specs = [vmounts.parse_volume(b) for b in host.get("Binds") or []]
        specs += [moby_mount(m) for m in host.get("Mounts") or []]
        specs += [vmounts.parse_tmpfs(f"{d}:{o}" if o else d) for d, o in (host.get("Tmpfs") or {}).items()]
        taken = {s.destination for s in specs}
        inherited = [m for m in self._volumes_from(c, host.get("VolumesFrom") or []) if m.destination not in taken]
        specs += inherited
        taken |= {m.destination for m in inherited}
        # anonymous volumes: the image's VOLUME entries and the container's own (`-v /path`)
        anon = {**(((img.config.get("config") or {}).get("Volumes") or {}) if img else {}),
                **(config.get("Volumes") or {})}
        specs += [vmounts.MountSpec(type="volume", destination=d) for d in anon if d not in taken]
        vmounts.check_duplicates(specs)
        for s in specs:
            if s.type == "volume":
                vol = self.volumes.use(s.source or None, c.id, s.volume_options, s.volume_labels, s.volume_driver)
                source = vol.mountpoint
                if s.replace:  # Pouch's dr / rr: a subdirectory of the volume, filled from the image
                    sub = s.destination.lstrip("/") if s.replace == "dr" else secrets.token_hex(16)
                    source = os.path.join(vol.mountpoint, sub)
                    os.makedirs(source, mode=0o755, exist_ok=True)
                if not s.nocopy:
                    src = _image_path(layer_dirs, s.destination)
                    if src:
                        await self.volumes.copy_up(vol.name, src, source)
                mounts.append(vmounts.to_oci(s, source))
                points.append({"Type": "volume", "Name": vol.name, "Source": source,
                               "Destination": s.destination, "Driver": vol.driver,
                               "Mode": ",".join(filter(None, ["ro" if s.readonly else "z", s.replace])),
                               "RW": not s.readonly, "Propagation": ""})
            elif s.type == "bind":
                if not os.path.exists(s.source):
                    os.makedirs(s.source, exist_ok=True)  # Docker's -v creates a missing host dir
                mounts.append(vmounts.to_oci(s))
                points.append({"Type": "bind", "Source": s.source, "Destination": s.destination,
                               "Mode": "ro" if s.readonly else "", "RW": not s.readonly,
                               "Propagation": s.propagation or "rprivate"})
            else:
                mounts.append(vmounts.to_oci(s))
                points.append({"Type": "tmpfs", "Source": "", "Destination": s.destination, "Mode": "",
                               "RW": True, "Propagation": ""})
        c.meta["Mounts"] = points

        if host.get("EnableLxcfs") or (self.lxcfs_default and host.get("EnableLxcfs") is None):
            if self.lxcfs is None:
                raise InvalidArgument("lxcfs is not enabled on this daemon: start pouchd with --enable-lxcfs")
            host["EnableLxcfs"] = True
            mounts += self.lxcfs.oci_mounts()
        return mounts, netns

    def _volumes_from(self, c, refs: list[str]) -> list[vmounts.MountSpec]:
        """`--volumes-from CONTAINER[:ro|rw]`: the other container's volumes and binds, same paths."""
        out: list[vmounts.MountSpec] = []
        for ref in refs:
            name, _, mode = ref.partition(":")
            if mode not in ("", "ro", "rw"):
                raise InvalidArgument(f"invalid --volumes-from {ref!r}: mode must be ro or rw")
            other = self.lookup(name)
            if other.id == c.id:
                raise InvalidArgument("a container cannot take volumes from itself")
            for p in other.meta.get("Mounts") or []:
                ro = (mode == "ro") if mode else not p.get("RW", True)
                if p.get("Type") == "volume":
                    out.append(vmounts.MountSpec(type="volume", destination=p["Destination"], source=p["Name"],
                                                 readonly=ro, nocopy=True))
                elif p.get("Type") == "bind":
                    out.append(vmounts.MountSpec(type="bind", destination=p["Destination"], source=p["Source"],
                                                 readonly=ro, propagation=p.get("Propagation") or ""))
        return out

    def _files_config(self, c, cdir: str, host_network: bool) -> FilesConfig:
        host, config = c.host_config, c.config
        return FilesConfig(dir=cdir, hostname=config.get("Hostname") or c.id[:12],
                           domainname=config.get("Domainname") or "", dns=list(host.get("Dns") or []),
                           dns_search=list(host.get("DnsSearch") or []),
                           dns_options=list(host.get("DnsOptions") or []),
                           extra_hosts=list(host.get("ExtraHosts") or []), host_network=host_network)

    async def apply_quota(self, c, upperdir: str | None) -> None:
        """--disk-quota on the writable layer (pouch.daemon.mgr.diskquota)."""
        if not c.config.get("DiskQuota"):
            return
        if self.disk is None:
            raise InvalidArgument("disk quota is not available on this daemon: "
                                  + (self.quota_reason or "no quota backend"))
        await self.disk.apply(c, upperdir)

    # -- start / stop -----------------------------------------------------------
    async def before_start(self, c):
        """Make the container's network namespace; return the CNI attach, already running, for the
        caller to await before the task starts (it overlaps the runtime's create), or None."""
        pending = self._releases.pop(c.id, None)
        if pending:
            await asyncio.shield(pending)
        if self.disk is not None:
            await self.disk.ensure(c)
        host = c.host_config
        mode = network_mode(host)
        settings = c.meta.setdefault("NetworkSettings", {})
        settings.update(Networks={}, Ports={}, IPAddress="", Gateway="", MacAddress="", IPPrefixLen=0,
                        SandboxKey="")
        if mode == "host":
            return None
        if mode.startswith("container:"):
            other = self.lookup(mode.split(":", 1)[1])
            if not other.running:
                raise Conflict(f"cannot join network of a non running container: {other.id}")
            return None
        path = await self.network.create_netns(c.id)
        settings["SandboxKey"] = path
        if mode == "none":
            return None
        return asyncio.ensure_future(self._attach(c, path, mode))

    async def _attach(self, c, path: str, mode: str) -> None:
        host, settings = c.host_config, c.meta["NetworkSettings"]
        netcfg = c.private.networking_config or c.config.get("NetworkingConfig") or {}
        ep_cfg = (netcfg.get("EndpointsConfig") or {}).get(mode) or {}
        ipam = ep_cfg.get("IPAMConfig") or {}
        ports = moby_port_bindings(c.config.get("ExposedPorts"), host.get("PortBindings"),
                                   bool(host.get("PublishAllPorts")))
        # on failure the caller releases the netns, once the runtime no longer uses it
        ep = await self.network.attach(c.id, path, mode, EndpointConfig(
            container_name=c.name, hostname=c.config.get("Hostname") or "",
            aliases=list(ep_cfg.get("Aliases") or []), ip=ipam.get("IPv4Address") or "",
            mac=c.config.get("MacAddress") or "", ports=ports))
        settings["Networks"] = {mode: endpoint_settings(ep)}
        settings.update(IPAddress=ep.ip, Gateway=ep.gateway, MacAddress=ep.mac, IPPrefixLen=ep.prefix_len)
        settings["Ports"] = _moby_ports(ep)

    async def reattach(self, c) -> None:
        """A running container whose network was lost (a crash between its start and its attach):
        name its process's network namespace again and attach it."""
        mode = network_mode(c.host_config)
        if mode in ("host", "none") or mode.startswith("container:"):
            return
        settings = c.meta.setdefault("NetworkSettings", {})
        pid = int(c.state.get("Pid") or 0)
        if not pid or not os.path.exists(f"/proc/{pid}/ns/net"):
            raise Conflict(f"container {c.id} has no process to attach")
        path = await self.network.adopt_netns(c.id, pid)
        settings["SandboxKey"] = path
        await self._attach(c, path, mode)

    async def connect(self, c, netns: str, network: str, aliases: list[str], ip: str) -> tuple[str, dict]:
        """``network connect`` of a running container: -> (network name, its endpoint settings)."""
        net = self.network.get(network)
        ep = await self.network.attach(c.id, netns, net.name, EndpointConfig(
            container_name=c.name, hostname=c.config.get("Hostname") or "", aliases=aliases, ip=ip))
        return net.name, endpoint_settings(ep)

    async def disconnect(self, c, network: str) -> str:
        """``network disconnect``: -> the network's name."""
        net = self.network.get(network)
        await self.network.detach(c.id, net.name)
        return net.name

    async def after_stop(self, c) -> None:
        if network_mode(c.host_config) in ("host",) or network_mode(c.host_config).startswith("container:"):
            return
        task = asyncio.get_running_loop().create_task(self._release_network(c.id))
        self._releases[c.id] = task
        settings = c.meta.get("NetworkSettings") or {}
        settings.update(Ports={}, IPAddress="", Gateway="", MacAddress="", SandboxKey="")
        for n in (settings.get("Networks") or {}).values():
            n.update(IPAddress="", Gateway="", MacAddress="", EndpointID="")

    async def _release_network(self, cid: str) -> None:
        try:
            await self.network.release(cid)
        except Exception as e:
            log.warning("network release of %s: %s", cid[:12], e)
        finally:
            self._releases.pop(cid, None)

    async def restored(self, c) -> None:
        pass

    async def release(self, c, remove_volumes: bool = False) -> None:
        """rm: drop the container's volumes and quota (at once) and its network (awaited)."""
        self.release_storage(c, remove_volumes)
        await self.release_network(c)

    def release_storage(self, c, remove_volumes: bool = False) -> None:
        self.volumes.release(c.id, remove_anonymous=remove_volumes or bool(c.host_config.get("AutoRemove")))
        if self.disk is not None:
            self.disk.release(c)

    async def release_network(self, c) -> None:
        # rm returns only when the network is gone (veth, rules, IPAM, netns): a release started
        # at stop is awaited, so `rm` followed at once by `network rm` or a leak check holds
        pending = self._releases.get(c.id)
        if pending is not None:
            await asyncio.shield(pending)
        await self.network.release(c.id)

    async def update_resources(self, c, changes: dict) -> dict:
        """Validate new resource values; returns the OCI resources to send to a running task.
        A new DiskQuota is applied here (and taken out of ``changes``)."""
        if "DiskQuota" in changes:
            new = changes.pop("DiskQuota")
            if new:
                if self.disk is None:
                    raise InvalidArgument("disk quota is not available on this daemon: "
                                          + (self.quota_reason or "no quota backend"))
                await self.disk.update(c, new)
        merged = dict(c.host_config)
        merged.update(changes)
        built, _warnings = oci_resources.build(merged)
        return built

    async def shutdown(self) -> None:
        for t in list(self._releases.values()):
            try:
                await asyncio.wait_for(asyncio.shield(t), 5)
            except Exception:
                pass


def _moby_ports(ep) -> dict:
    out: dict = {}
    for b in getattr(ep, "ports", []) or []:
        out.setdefault(f"{b.container_port}/{b.protocol}", []).append(
            {"HostIp": b.host_ip or "0.0.0.0", "HostPort": str(b.host_port)})
    return out


def _image_path(layer_dirs: list[str], dest: str) -> str | None:
    rel = dest.lstrip("/")
    for d in layer_dirs:
        p = os.path.join(d, rel)
        if os.path.isdir(p) and not os.path.islink(p):
            return p
    return None
