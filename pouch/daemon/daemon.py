"""pouchd's composition root: builds every component explicitly, runs, and shuts down.

Order: containerd (own or given) -> ctrd client + event watcher -> meta store
-> managers (image, container, exec, system) -> restore state from
containerd -> HTTP server on every listen address.  Nothing is wired by
import side effects; each route module gets only the managers it needs.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal

from aiohttp import web

from pouch.errtypes import InvalidArgument
from pouch.network.manager import NetworkManager
from pouch.oci.cgroups import bind_free_v1_controllers
from pouch.registry import CredentialStore, RegistryClient, RegistryConfig
from pouch.registry.config import LOOPBACK_INSECURE
from pouch.runtime.registry import RuntimeRegistry
from pouch.volume.manager import VolumeManager

from .config import DaemonConfig
from .containerd import Containerd
from .ctrd.client import Ctrd
from .ctrd.events import EventWatcher
from .mgr.reconcile import Reconciler
from .events.exchange import EventExchange
from .meta.store import MetaStore
from .mgr.archive import ContainerArchive
from .mgr.container import ContainerManager
from .mgr.image import ImageManager
from .mgr.pull import ContentSink, Puller
from .mgr.push import Pusher
from .mgr.sandbox import SandboxHooks
from .mgr.stats import StatsCollector
from .mgr.system import DaemonUpdate, SystemManager
from .metrics import Metrics
from .server import app as server_app
from .server import metrics as metrics_routes
from .server import archive as archive_routes
from .server import checkpoints as checkpoint_routes
from .server import containers as container_routes
from .server import execs as exec_routes
from .server import images as image_routes
from .server import commit as commit_routes
from .server import registry as registry_routes
from .server import networks as network_routes
from .server import volumes as volume_routes
from .server import system as system_routes

log = logging.getLogger("pouchd")


class Daemon:
    def __init__(self, cfg: DaemonConfig) -> None:
        self.cfg = cfg
        self.containerd: Containerd | None = None
        self.runners: list[web.AppRunner] = []
        self._stop = asyncio.Event()
        self.snapshotter_reason = ""
        from .instance import InstanceClaims
        self.claims = InstanceClaims()

    def _claim(self) -> None:
        """Refuse to start beside a running pouchd on the same sockets, containerd or home
        (naming its pid), before anything is created; then hold those claims and the pid file."""
        from . import instance
        cfg = self.cfg
        try:
            for addr in cfg.listen:
                if addr.startswith("unix://"):
                    instance.check_socket_free(addr[len("unix://"):])
            if cfg.containerd:
                ctrd_lock = instance.containerd_lock_path(cfg.containerd, cfg.namespace)
                what = f"containerd {cfg.containerd} (namespace {cfg.namespace})"
            else:
                ctrd_lock = os.path.join(cfg.run_dir, "containerd", "pouchd.lock")
                what = f"exec root {cfg.run_dir} (its containerd)"
            self.claims.claim(ctrd_lock, what)
            self.claims.claim(os.path.join(cfg.home, "pouchd.lock"), f"home {cfg.home}")
            instance.write_pidfile(cfg.pidfile_path)
        except instance.AlreadyRunning as e:
            self.claims.undo()
            raise SystemExit(f"pouchd: {e}") from None

    async def start(self) -> None:
        cfg = self.cfg
        self._claim()
        for d in (cfg.home, cfg.run_dir):
            os.makedirs(d, mode=0o711, exist_ok=True)
        cfg.ensure_id()
        if cfg.default_registry or cfg.default_registry_namespace:
            from pouch.registry.reference import set_defaults
            set_defaults(cfg.default_registry, cfg.default_registry_namespace)
        self.snapshotter = self._choose_snapshotter()
        self.quota = self._quota_manager()
        userns_ids = None
        if cfg.userns_remap:
            from pouch.oci.errors import InvalidOciConfig
            from pouch.oci.userns import IdRange, check_traversable
            try:
                userns_ids = IdRange.from_flag(cfg.userns_remap)
                check_traversable([cfg.home, cfg.run_dir], userns_ids)
            except InvalidOciConfig as e:
                log.error("%s", e)
                raise SystemExit(f"pouchd: {e}") from None
        address = cfg.containerd
        if not address:
            self.containerd = Containerd(cfg.home, cfg.run_dir, cfg.containerd_binary)
            await self.containerd.start()
            address = self.containerd.address
        self.ctrd = Ctrd(address, cfg.namespace, self.snapshotter)
        self.watcher = EventWatcher(self.ctrd)
        self.watcher.start()
        self.events = EventExchange()
        self.store = MetaStore(os.path.join(cfg.home, "meta", "meta.db"))
        self.store.start_retrying()
        self.runtimes = RuntimeRegistry(default=cfg.default_runtime)
        for flag in cfg.add_runtime:
            self.runtimes.add_flag(flag)
        self.runtimes.add_config(cfg.runtimes)
        self.runtimes.write_wrappers(os.path.join(cfg.run_dir, "runtimes"))
        bind_free_v1_controllers()
        self.images = ImageManager(self.ctrd, self.events, os.path.join(cfg.home, "tmp"))
        bip = ipaddress.ip_interface(cfg.bip)
        self.network = NetworkManager(root=os.path.join(cfg.home, "network"),
                                      netns_dir=os.path.join(cfg.run_dir, "netns"),
                                      default_bridge=cfg.bridge_name, default_subnet=str(bip.network),
                                      default_gateway=str(bip.ip))
        await self.network.init()
        await self.network.ensure_default_bridge()
        self.volumes = VolumeManager(root=os.path.join(cfg.home, "volumes"),
                                     plugin_dirs=cfg.volume_plugin_dirs or None)
        self.volumes.on_event = lambda action, name, attrs: self.events.publish("volume", action, name, attrs)
        self.network.on_event = lambda action, nid, attrs: self.events.publish("network", action, nid, attrs)
        self.lxcfs = await self._start_lxcfs() if cfg.enable_lxcfs else None
        self.sandbox = SandboxHooks(self.network, self.volumes, os.path.join(cfg.home, "containers"),
                                    self.lxcfs, self.quota, lxcfs_default=False,
                                    lookup=lambda ref: self.containers.get(ref))
        self._wire_volume_quota()
        self.registry = RegistryClient(
            RegistryConfig(insecure_registries=[*LOOPBACK_INSECURE, *cfg.insecure_registries],
                           mirrors=list(cfg.registry_mirrors), certs_dir="/etc/pouch/certs.d",
                           max_concurrent_downloads=cfg.max_concurrent_downloads, p2p_peer=cfg.p2p_peer,
                           proxy=cfg.image_proxy,
                           p2p_tls=(cfg.p2p_ca, cfg.p2p_cert, cfg.p2p_key) if cfg.p2p_ca else None,
                           max_concurrent_uploads=cfg.max_concurrent_uploads),
            CredentialStore(os.path.join(cfg.home, "registry", "config.json")))
        self.puller = Puller(self.images, self.registry, ContentSink(self.ctrd))
        self.pusher = Pusher(self.images, self.registry)
        userns = None
        if userns_ids is not None:
            from .mgr.userns import UsernsRemap
            userns = UsernsRemap(userns_ids, self.ctrd)
        self.containers = ContainerManager(self.store, self.ctrd, self.images, self.events, cfg.home,
                                           cfg.run_dir, self.runtimes, self.sandbox, cfg.cgroup_parent,
                                           oci_hooks_dirs=list(cfg.hooks_dirs), userns=userns)
        self.execs = self.containers.execs
        self.containers.log_defaults = {"Type": cfg.log_driver, "Config": dict(cfg.log_opts)}
        self.containers.shim_groups.size = cfg.shim_group_size
        from .mgr.checkpoint import CheckpointManager
        self.containers.checkpoints = CheckpointManager(self.containers)
        features = self._features(userns_ids)
        self.system = SystemManager(cfg, self.ctrd, self.containers, self.images,
                                    {n: self.runtimes.get(n).path for n in self.runtimes.names()},
                                    features=lambda: features, remount_lxcfs=self._remount_lxcfs,
                                    volumes=self.volumes, p2p_stats=self.registry.p2p_stats,
                                    containerd_pid=lambda: self.containerd.pid if self.containerd else None)
        self.stats = StatsCollector(cgroup_parent=cfg.cgroup_parent)

        await asyncio.wait_for(self.watcher.connected.wait(), 20)
        await self._check_snapshotter()
        await self.images.restore()
        self._events_task = asyncio.get_running_loop().create_task(
            self.containers.run_events(self.watcher.queue))
        await asyncio.to_thread(self._sweep_quota)  # before restore starts any container
        await self.containers.restore()
        self.cri = None
        if cfg.enable_cri:  # the CRI's managers on containerd namespace k8s.io (pouch.cri.service)
            from pouch.cri.service import CriFace
            self.cri = CriFace(self, address)
            await self.cri.init()
        await self.network.restore([c.id for c in self.containers.list() if c.running]
                                   + (self.cri.live_ids() if self.cri else []))
        self.volumes.restore(set(self.containers.containers)
                             | (set(self.cri.containers.containers) if self.cri else set()))
        self.reconciler = Reconciler(self.containers, self.network, self.ctrd, cfg.cgroup_parent,
                                     other_live=(lambda: self.cri.live_ids()) if self.cri else None)
        await self.reconciler.repair(startup=True)
        self.containers.on_resync = self.reconciler.repair  # after every containerd reconnect
        self.reconciler.start_periodic()
        await self.containers.start_restart_policy_containers()

        metrics = Metrics()
        v = await self.system.version()
        metrics.set_engine(v["Version"], v["GitCommit"], v["KernelVersion"])
        if cfg.p2p_peer:
            metrics.set_p2p(self.registry.p2p_stats)
        app = server_app.build_app([
            metrics_routes.routes(metrics),
            system_routes.routes(self.system, self.events, self.reconciler,
                                 DaemonUpdate(cfg, self.registry.config)),
            container_routes.routes(self.containers, self.stats,
                                    self.cri.containers.list if self.cri is not None else None),
            archive_routes.routes(self.containers, ContainerArchive(self.ctrd, self._container_root_ids)),
            exec_routes.routes(self.execs),
            checkpoint_routes.routes(self.containers.checkpoints, self.containers),
            image_routes.routes(self.images, self.containers.users_of_image,
                                pull=registry_routes.pull_handler(self.puller, self.registry)),
            registry_routes.routes(self.pusher, self.registry, self.images, self.containers.users_of_image),
            commit_routes.routes(self.images, self.containers),
            network_routes.routes(self.network, self.containers),
            volume_routes.routes(self.volumes),
        ], metrics)
        runner = web.AppRunner(app, access_log=log if cfg.debug else None, handle_signals=False,
                               shutdown_timeout=1.0)
        await runner.setup()
        for addr in cfg.listen:
            await self._listen(runner, addr)
        self.runners.append(runner)
        if self.cri is not None:
            await self.cri.serve()
        log.info("pouchd is ready (containerd %s)", address)

    async def _check_snapshotter(self) -> None:
        """As Pouch: refuse to switch snapshotters while the other one still holds snapshots of
        this namespace (images and containers would vanish), unless --allow-multi-snapshotter.
        The last snapshotter used is recorded in the home, so a restart on the same one costs
        no containerd call."""
        record = os.path.join(self.cfg.home, "snapshotter")
        try:
            with open(record) as f:
                last = f.read().strip()
        except OSError:
            last = ""
        if last != self.snapshotter and not self.cfg.allow_multi_snapshotter:
            for other in ("overlayfs", "native"):
                if other != self.snapshotter and await self.ctrd.snapshotter_in_use(other):
                    msg = (f"current snapshotter driver is {other}, cannot change to {self.snapshotter} "
                           f"(snapshots of {other} exist; start with --allow-multi-snapshotter to allow both)")
                    log.error("%s", msg)
                    raise SystemExit(f"pouchd: {msg}")
        if last != self.snapshotter:
            with open(record, "w") as f:
                f.write(self.snapshotter + "\n")

    def _container_root_ids(self) -> tuple[int, int]:
        """Host uid and gid of the containers' root user (the remapped range's first, with userns)."""
        u = self.containers.userns
        return (u.ids.uid_start, u.ids.gid_start) if u else (0, 0)

    def _features(self, userns_ids) -> dict:
        """What `pouch info` reports: detected kernel features plus what this daemon enabled."""
        from pouch.sysinfo import detect
        features = detect.collect(self.cfg.home, self.runtimes)
        features["DiskQuota"] = self.quota_backend.info()
        features["Lxcfs"] = {"Enabled": self.lxcfs is not None, "Binary": features.get("Lxcfs")}
        features["Snapshotter"] = {"Name": self.snapshotter,
                                   "Detail": self.snapshotter_reason or "overlayfs works"}
        if userns_ids is not None:
            features["UsernsRemap"] = {"Uid": userns_ids.uid_start, "Gid": userns_ids.gid_start,
                                       "Size": userns_ids.uid_size}
        return features

    def _choose_snapshotter(self) -> str:
        """overlayfs where it works; else degrade to containerd's native (copying) snapshotter,
        saying why; an explicit --snapshotter overlayfs that cannot work is a start-up error."""
        from pouch.sysinfo.detect import overlay_usable
        if self.cfg.snapshotter == "native":
            return "native"
        ok, why = overlay_usable(self.cfg.home)
        if ok:
            return "overlayfs"
        if self.cfg.snapshotter == "overlayfs":
            log.error("%s", why)
            raise SystemExit(f"pouchd: {why}")
        log.warning("%s; using the native snapshotter instead (full copies of image layers)", why)
        self.snapshotter_reason = why
        return "native"

    async def _start_lxcfs(self):
        from pouch.lxcfs.supervisor import LxcfsSupervisor
        sup = LxcfsSupervisor(os.path.join(self.cfg.home, "lxcfs"), on_restart=self._remount_lxcfs)
        await sup.start()
        return sup

    async def _remount_lxcfs(self) -> list[str]:
        """lxcfs came back: re-bind its views into every running --enableLxcfs container."""
        from pouch.lxcfs import remount_async
        done = []
        for c in self.containers.list():
            if c.running and c.host_config.get("EnableLxcfs") and c.state.get("Pid"):
                try:
                    await remount_async(c.state["Pid"], self.lxcfs.mount_point, self.lxcfs.views())
                    done.append(c.id)
                except Exception as e:
                    log.warning("remounting lxcfs views into %s: %s", c.id[:12], e)
        return done

    def _quota_manager(self):
        """The disk-quota backend (pouch.quota.backend), chosen once; None when there is none."""
        from pouch.quota import QuotaError
        from pouch.quota.backend import choose
        try:
            self.quota_backend = choose(self.cfg.home, self.cfg.quota_backend)
        except QuotaError as e:  # an explicit backend the host cannot give
            raise SystemExit(f"pouchd: {e}") from None
        if self.quota_backend.name == "loop" and self.snapshotter != "overlayfs":
            why = "the loop quota backend needs the overlayfs snapshotter"
            if self.cfg.quota_backend == "loop":
                raise SystemExit(f"pouchd: --quota-backend=loop: {why}")
            from pouch.quota.backend import QuotaBackend
            self.quota_backend = QuotaBackend("none", why)
        log.info("disk quota: %s (%s)", self.quota_backend.name, self.quota_backend.reason)
        return self.quota_backend if self.quota_backend.name != "none" else None

    def _wire_volume_quota(self) -> None:
        """`volume create -o size=` is enforced by the quota backend (refused without one)."""
        self.sandbox.quota_reason = self.quota_backend.reason
        local = self.volumes.drivers["local"]
        if self.sandbox.disk is not None:
            local.size_limiter = self.sandbox.disk.limit_volume
            local.size_releaser = self.sandbox.disk.release_volume
        else:
            reason = self.quota_backend.reason

            def refuse(path: str, size: int) -> None:
                raise InvalidArgument(f"volume size is not available on this daemon: {reason}")
            local.size_limiter = refuse

    def _sweep_quota(self) -> None:
        if self.sandbox.disk is None:
            return
        from .mgr.container import BUCKET
        cids = [cid for cid, _ in self.store.list(BUCKET)]
        paths = [v.mountpoint for v in self.volumes.volumes.values() if v.size]
        self.sandbox.disk.sweep(cids, paths)

    async def _listen(self, runner: web.AppRunner, addr: str) -> None:
        if addr.startswith("unix://"):
            path = addr[len("unix://"):]
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if os.path.exists(path):  # stale: _claim() refused a live one
                os.unlink(path)
            site = web.UnixSite(runner, path)
            await site.start()
            os.chmod(path, 0o660)
        elif addr.startswith("tcp://"):
            host, _, port = addr[len("tcp://"):].rpartition(":")
            tls = self._server_tls()
            if not self.cfg.tlsverify:  # config refused this unless --insecure-tcp was given
                log.warning("--insecure-tcp: listening on %s without client authentication: anyone who can "
                            "connect (%s) has root on this host; use --tlsverify --tlscacert --tlscert --tlskey",
                            addr, "every local user and any script a browser runs" if host in
                            ("127.0.0.1", "localhost", "[::1]") else "the whole network")
            site = web.TCPSite(runner, host or "127.0.0.1", int(port), ssl_context=tls)
            await site.start()
        else:
            raise ValueError(f"invalid listen address {addr!r}: use unix:///path or tcp://host:port")

    def _server_tls(self):
        """The TLS context of TCP listeners (None: plain HTTP), as dockerd's --tls* flags make it."""
        cfg = self.cfg
        if not cfg.tlscert:
            return None
        from .server.tls import server_context
        return server_context(cfg.tlscert, cfg.tlskey, cfg.tlscacert, cfg.tlsverify)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        try:
            await self.start()
        except BaseException:
            # a start-up that fails half-way must not leave our containerd behind
            if self.containerd is not None:
                await self.containerd.stop()
            self._release()
            raise
        await self._stop.wait()
        try:
            await self.shutdown()
        finally:
            self._release()

    def _release(self) -> None:
        from .instance import remove_pidfile
        if self.claims._fds:
            remove_pidfile(self.cfg.pidfile_path)
        self.claims.release()

    async def shutdown(self) -> None:
        log.info("pouchd shutting down (containers keep running)")
        if getattr(self, "reconciler", None) is not None:
            self.reconciler.stop()
        for r in self.runners:
            await r.cleanup()
        if getattr(self, "cri", None) is not None:
            await self.cri.shutdown()
        await self.containers.shutdown()
        await self.sandbox.shutdown()
        if self.lxcfs:
            await self.lxcfs.stop()
        self._events_task.cancel()
        await self.watcher.stop()
        await self.registry.close()
        await self.ctrd.close()
        self.store.close()
        if self.containerd:
            await self.containerd.stop()
