"""The container manager's sandbox hooks for CRI pods: the pod network joins the infra
container's start.

A pod's infra container is created with network mode ``none`` (a fresh netns with
loopback); these hooks add the CNI attachment from the pod network configuration,
started alongside the runtime's task create as pouch's own networks are, and
detach it before the namespace goes when the infra container stops.
"""
from __future__ import annotations

import asyncio
import logging

from pouch.daemon.mgr.sandbox import SandboxHooks

from . import translate

log = logging.getLogger(__name__)


def _pod_network(c) -> bool:
    cri = c.meta.get("CRI") or {}
    return (c.config.get("Labels") or {}).get(translate.TYPE) == "sandbox" and "pod" in cri \
        and c.host_config.get("NetworkMode") == "none"


class PodHooks(SandboxHooks):
    def __init__(self, pod_network, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.pod_network = pod_network  # cri.cni.PodNetwork

    async def before_start(self, c):
        attach = await super().before_start(c)
        if not _pod_network(c):
            return attach
        path = c.meta["NetworkSettings"]["SandboxKey"]
        return asyncio.ensure_future(self._attach_pod(c, path))

    async def _attach_pod(self, c, netns: str) -> None:
        cri = c.meta["CRI"]
        cri["ip"] = await self.pod_network.add(c.id, netns, cri["pod"], cri.get("ports") or [])
        cri["netns"] = netns

    async def detach_pod(self, c) -> None:
        """CNI DEL of the pod (once; a no-op when already detached)."""
        cri = c.meta.get("CRI") or {}
        if cri.get("netns") or cri.get("ip"):
            await self.pod_network.delete(c.id, cri.get("netns", ""))
            cri.update(ip="", netns="")

    async def after_stop(self, c) -> None:
        if _pod_network(c):
            try:
                await self.detach_pod(c)
            except Exception as e:
                log.warning("pod network detach of %s: %s", c.id[:12], e)
        await super().after_stop(c)
