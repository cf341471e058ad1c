"""`--userns-remap` for the container manager: remapped image snapshots and per-container setup.

containerd's approach: the image's committed snapshot chain is copied once per id range into a
committed snapshot whose files are owned by the range (mounted, chowned through overlayfs, which
copies them up, then committed); containers of a remapping daemon are prepared on top of it.
"""
from __future__ import annotations

import asyncio
import os
import secrets

from pouch.oci.userns import IdRange, apply_userns, remap_tree

from ..ctrd.client import mounts_to_dicts
from ..ctrd.mount import mounted


class UsernsRemap:
    def __init__(self, ids: IdRange, ctrd) -> None:
        self.ids = ids
        self.ctrd = ctrd
        self._locks: dict[str, asyncio.Lock] = {}

    async def parent(self, chain_id: str) -> str:
        """The committed, remapped copy of the image chain `chain_id` (made on first use)."""
        name = f"pouch-userns-{self.ids.key}-{chain_id}"
        async with self._locks.setdefault(name, asyncio.Lock()):
            if await self.ctrd.snapshot_exists(name):
                return name
            from .container_model import now_rfc3339
            key = f"{name}-prep-{secrets.token_hex(4)}"
            # the gc.root label keeps containerd's GC from collecting the snapshot mid-chown
            mounts = mounts_to_dicts(await self.ctrd.snapshot_prepare(
                key, chain_id, labels={"containerd.io/gc.root": now_rfc3339()}))
            try:
                await asyncio.to_thread(_mount_and_remap, mounts, self.ids)
                await self.ctrd.snapshot_commit(name, key, labels={"containerd.io/gc.root": now_rfc3339()})
            except BaseException:
                await self.ctrd.snapshot_remove_quietly(key)
                raise
            return name

    def apply(self, spec: dict, container_dir: str) -> None:
        """User namespace in the spec; the container's own directory (its /etc files) owned by its root."""
        apply_userns(spec, self.ids)
        if any(n.get("type") == "network" and n.get("path") for n in spec["linux"]["namespaces"]) or \
                not any(n.get("type") == "network" for n in spec["linux"]["namespaces"]):
            # sysfs can only be mounted by the user namespace owning the network namespace; pouchd
            # makes netns from the host's (and --net host is the host's): bind the host's /sys, ro
            for m in spec["mounts"]:
                if m.get("destination") == "/sys" and m.get("type") == "sysfs":
                    m.update(type="bind", source="/sys", options=["rbind", "nosuid", "noexec", "nodev", "ro"])
        os.chown(container_dir, self.ids.uid_start, self.ids.gid_start)


def _mount_and_remap(mounts: list[dict], ids: IdRange) -> None:
    with mounted(mounts, prefix="pouch-userns-") as target:
        remap_tree(target, ids)
