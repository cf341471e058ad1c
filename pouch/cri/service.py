"""Build and run pouchd's CRI face (``pouchd --enable-cri``).

A second set of managers over containerd namespace ``k8s.io`` (images, containers,
execs, with their own event watcher and meta bucket), sharing the daemon's
network, volume, runtime and registry subsystems; the RuntimeService and
ImageService handlers on top; the gRPC server on ``--listen-cri`` and, when
built in, the streaming server for exec/attach/port-forward URLs.
"""
from __future__ import annotations

import asyncio
import logging
import os

log = logging.getLogger(__name__)

NAMESPACE = "k8s.io"
BUCKET = "cri-containers"


class CriFace:
    def __init__(self, daemon, address: str) -> None:
        self.d = daemon
        self.address = address
        self.stream = None
        self.server = None

    async def init(self) -> None:
        """Managers and restore (before the daemon's network restore, which needs live_ids)."""
        from pouch.daemon.ctrd.client import Ctrd
        from pouch.daemon.ctrd.events import EventWatcher
        from pouch.daemon.mgr.container import ContainerManager
        from pouch.daemon.mgr.image import ImageManager
        from pouch.daemon.mgr.pull import ContentSink, Puller

        from .cni import PodNetwork
        from .hooks import PodHooks

        d, cfg = self.d, self.d.cfg
        self.ctrd = Ctrd(self.address, NAMESPACE, d.snapshotter)
        self.watcher = EventWatcher(self.ctrd)
        self.watcher.start()
        self.images = ImageManager(self.ctrd, d.events, os.path.join(cfg.home, "tmp"))
        self.puller = Puller(self.images, d.registry, ContentSink(self.ctrd))
        self.net = PodNetwork(cfg.cni_conf_dir, cfg.cni_bin_dir, os.path.join(cfg.home, "cri", "cni-cache"))
        self.net.load()
        hooks = PodHooks(self.net, d.network, d.volumes, os.path.join(cfg.home, "containers"), d.lxcfs, d.quota,
                         lxcfs_default=False, lookup=lambda ref: self.containers.get(ref))
        self.hooks = hooks
        self.containers = ContainerManager(d.store, self.ctrd, self.images, d.events, cfg.home, cfg.run_dir,
                                           d.runtimes, hooks, "/k8s.io", oci_hooks_dirs=list(cfg.hooks_dirs),
                                           bucket=BUCKET)
        self.execs = self.containers.execs
        await asyncio.wait_for(self.watcher.connected.wait(), 20)
        await self.images.restore()
        self._events = asyncio.get_running_loop().create_task(self.containers.run_events(self.watcher.queue))
        await self.containers.restore()

    def live_ids(self) -> list[str]:
        return [c.id for c in self.containers.list() if c.running]

    def _sandbox_netns(self, sandbox_id: str) -> str | None:
        try:
            c = self.containers.get(sandbox_id)
        except Exception:
            return None
        return (c.meta.get("CRI") or {}).get("netns", "")

    async def serve(self) -> None:
        import pouch
        from .images import ImageService
        from .runtime import RuntimeService
        from .server import CriServer
        from .stream_runtime import StreamRuntime

        d, cfg = self.d, self.d.cfg
        snap_root = os.path.join(d.containerd.root if d.containerd else cfg.home,
                                 f"io.containerd.snapshotter.v1.{d.snapshotter}")
        self.stream = await self._start_stream(StreamRuntime(self.containers, self._sandbox_netns))
        self.runtime = RuntimeService(self.containers, self.execs, self.images, d.runtimes, self.hooks, self.puller,
                                      cfg.sandbox_image, cfg.cri_stats_collect_period, pouch.__version__,
                                      self.stream)
        self.runtime.snapshot_root = snap_root
        self.image_service = ImageService(self.images, self.puller, d.registry, self.containers.users_of_image,
                                          snap_root, cfg.cri_stats_collect_period)
        self.server = CriServer(cfg.listen_cri, self.runtime, self.image_service)
        await self.server.start()

    async def _start_stream(self, runtime):
        try:
            from .streaming.server import StreamServer
        except ImportError:
            log.warning("CRI streaming server not built in: Exec, Attach and PortForward answer Unimplemented")
            return None
        srv = StreamServer(runtime, "127.0.0.1", self.d.cfg.stream_server_port)
        await srv.start()
        return srv

    async def shutdown(self) -> None:
        if self.server is not None:
            await self.server.stop()
        if self.stream is not None:
            await self.stream.stop()
        await self.containers.shutdown()
        await self.hooks.shutdown()
        self._events.cancel()
        await self.watcher.stop()
        await self.ctrd.close()
