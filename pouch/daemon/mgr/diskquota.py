"""A container's and a volume's disk quota on the daemon's backend (pouch.quota.backend).

SandboxHooks calls in here at create (`apply`), start (`ensure`), update (`update`), rm
(`release`, before the snapshot goes: a loop fs is bound over the snapshot's dirs), upgrade
(`retire`: the old writable layer's fs goes with it) and daemon start-up (`sweep`).  Volume
sizes reach `limit_volume` / `release_volume` through the local driver's hooks.

Keys of `DiskQuota` (Pouch): "/" (or a bare size) is the writable layer, ".*" the writable layer
(and, with project quota, each mount), "/path" a directory.  The loop backend sizes the writable
layer only; a volume's own size comes from `volume create -o size=`.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import os

from pouch.errtypes import InvalidArgument

log = logging.getLogger(__name__)

ROOT_KEYS = ("/", "", ".*")


def container_owner(cid: str) -> str:
    return f"c-{cid}"


def volume_owner(path: str) -> str:
    return "v-" + hashlib.sha256(os.path.realpath(path).encode()).hexdigest()[:24]


def _bad(e) -> InvalidArgument:
    return InvalidArgument(str(e))


def quota_targets(sizes: dict, upperdir: str, mounts: list) -> list:
    """Project quota: DiskQuota {path: bytes} -> [(host directory, bytes)].  "/" is the writable
    layer; "/path" the source of the volume or bind mounted there (else that directory of the
    writable layer); ".*" the writable layer and every writable volume and bind.  All of a
    container's directories share its quota id."""
    by_dest = {m.get("Destination"): m for m in mounts if m.get("Type") in ("volume", "bind")}
    out, seen = [], set()
    for path, size in sizes.items():
        if path in ("/", ""):
            targets = [upperdir]
        elif path == ".*":
            targets = [upperdir] + [m["Source"] for m in by_dest.values() if m.get("RW", True) and m.get("Source")]
        elif path in by_dest and by_dest[path].get("Source"):
            targets = [by_dest[path]["Source"]]
        else:
            targets = [os.path.join(upperdir, path.lstrip("/"))]
        for t in targets:
            if t not in seen:
                seen.add(t)
                out.append((t, size))
    return out


class DiskQuota:
    def __init__(self, backend) -> None:
        self.backend = backend  # pouch.quota.backend.QuotaBackend (name != "none")

    @property
    def loop(self):
        return self.backend.loop

    # -- containers ------------------------------------------------------------------
    async def apply(self, c, upperdir: str | None) -> None:
        from pouch.quota import InvalidQuotaSpec, QuotaError, parse_size
        quota = c.config.get("DiskQuota") or {}
        if not quota:
            return
        if upperdir is None:
            raise InvalidArgument("disk quota needs a writable layer (overlayfs snapshotter)")
        try:
            sizes = {path: parse_size(size) for path, size in quota.items()}
        except InvalidQuotaSpec as e:
            raise _bad(e) from None
        if self.loop is not None:
            others = sorted(p for p in sizes if p not in ROOT_KEYS)
            if others:
                raise InvalidArgument(f"disk quota on {', '.join(others)}: the loop quota backend limits "
                                      f"the writable layer (/) only; size a volume with -o size= instead")
            size = max(sizes.values())
            snap = os.path.dirname(upperdir)  # containerd's overlayfs snapshot: <n>/fs, <n>/work
            if os.listdir(upperdir) or not all(os.path.isdir(os.path.join(snap, n)) and
                                               not os.listdir(os.path.join(snap, n)) for n in os.listdir(snap)):
                raise InvalidArgument("disk quota with the loop backend needs an empty writable layer "
                                      "(the overlayfs snapshotter)")
            try:
                await asyncio.to_thread(self.loop.create, container_owner(c.id), size, snap)
            except InvalidQuotaSpec as e:
                raise _bad(e) from None
            return
        qm = self.backend.prjquota
        c.meta["QuotaUpperDir"] = upperdir
        qid = c.config.get("QuotaID")
        qid = int(qid) if qid not in (None, "", "0", "-1") else None
        for target, size in quota_targets(sizes, upperdir, c.meta.get("Mounts") or []):
            os.makedirs(target, exist_ok=True)
            try:
                qid = await asyncio.to_thread(qm.set_quota, target, size, c.id, qid)
            except QuotaError as e:
                if e.http_status == 400:
                    raise _bad(e) from None
                raise
        c.config["QuotaID"] = str(qid)

    async def ensure(self, c) -> None:
        """Before a start: the loop fs mounted (a reboot unmounted it)."""
        if self.loop is not None and c.config.get("DiskQuota"):
            await asyncio.to_thread(self.loop.ensure_mounted, container_owner(c.id))

    async def update(self, c, new: dict) -> None:
        """`pouch update --disk-quota`: grow live; a shrink below what is in use is refused."""
        from pouch.quota import InvalidQuotaSpec, parse_size
        try:
            sizes = {path or "/": parse_size(size) for path, size in (new or {}).items()}
        except InvalidQuotaSpec as e:
            raise _bad(e) from None
        if not sizes:
            return
        if not c.config.get("DiskQuota"):
            raise InvalidArgument("this container was created without a disk quota; set one with "
                                  "--disk-quota at create")
        if self.loop is not None:
            others = sorted(p for p in sizes if p not in ROOT_KEYS)
            if others:
                raise InvalidArgument(f"disk quota on {', '.join(others)}: the loop quota backend limits "
                                      f"the writable layer (/) only")
            try:
                await asyncio.to_thread(self.loop.resize, container_owner(c.id), max(sizes.values()))
            except InvalidQuotaSpec as e:
                raise _bad(e) from None
        else:
            qm = self.backend.prjquota
            ids = qm.ids.ids_of(c.id)
            upper = c.meta.get("QuotaUpperDir")
            for target, size in quota_targets(sizes, upper, c.meta.get("Mounts") or []) if upper else []:
                if ids:
                    used = (await asyncio.to_thread(qm.get_usage, target)).get("used_bytes", 0)
                    if size < used:
                        raise InvalidArgument(f"cannot shrink disk quota of {target} to {size} bytes: "
                                              f"{used} bytes are in use")
                    await asyncio.to_thread(qm.set_quota, target, size, c.id, ids[0])
        c.config["DiskQuota"] = {**(c.config.get("DiskQuota") or {}),
                                 **{k or "/": v for k, v in new.items()}}

    def release(self, c) -> None:
        """rm (before the snapshot is removed): the container's fs and quota ids go."""
        if not c.config.get("DiskQuota"):
            return
        try:
            if self.loop is not None:
                self.loop.remove(container_owner(c.id))
            else:
                self.backend.prjquota.remove(None, c.id)
        except Exception as e:
            log.warning("disk quota removal for %s: %s", c.id[:12], e)

    def retire(self, c) -> None:
        """Upgrade succeeded: the old writable layer's fs goes (before its snapshot does)."""
        if self.loop is not None and c.config.get("DiskQuota"):
            self.loop.retire(container_owner(c.id))

    async def drop_layer(self, c, ctrd) -> None:
        """A failed upgrade: the quota fs of the container's current layer (about to be removed)."""
        if self.loop is None or not c.config.get("DiskQuota"):
            return
        snap = await self._snapshot_dir(c, ctrd)
        if snap:
            await asyncio.to_thread(self.loop.remove_bound_to, container_owner(c.id), snap)

    async def limit_layer(self, c, ctrd) -> None:
        """A rolled-back upgrade: the container's fresh layer gets its quota again."""
        if not c.config.get("DiskQuota"):
            return
        snap = await self._snapshot_dir(c, ctrd)
        if snap:
            await self.apply(c, os.path.join(snap, "fs"))

    @staticmethod
    async def _snapshot_dir(c, ctrd) -> str | None:
        from .container import _upperdir
        upper = _upperdir(await ctrd.snapshot_mounts(c.id))
        return os.path.dirname(upper) if upper else None

    # -- volumes ---------------------------------------------------------------------
    def limit_volume(self, path: str, size: int) -> None:
        """The local driver's size hook: `path` (new and empty) limited to `size` bytes."""
        from pouch.quota import InvalidQuotaSpec, QuotaError
        try:
            if self.loop is not None:
                self.loop.create(volume_owner(path), size, path, subdir="data")
            else:
                self.backend.prjquota.set_quota(path, size, volume_owner(path))
        except InvalidQuotaSpec as e:
            raise _bad(e) from None
        except QuotaError as e:
            if e.http_status == 400:
                raise _bad(e) from None
            raise

    def release_volume(self, path: str) -> None:
        owner = volume_owner(path)
        if self.loop is not None:
            self.loop.remove(owner)
        else:
            self.backend.prjquota.remove(path, owner)

    # -- start-up --------------------------------------------------------------------
    def sweep(self, container_ids, volume_paths) -> list[str]:
        """Remove the loop filesystems no container or volume owns (a crash), mount live ones."""
        if self.loop is None:
            return []
        live = {container_owner(i) for i in container_ids} | {volume_owner(p) for p in volume_paths}
        gone = self.loop.sweep(live)
        if gone:
            log.info("disk quota: removed %d leftover filesystem(s): %s", len(gone), ", ".join(gone))
        return gone
