"""Unpacking layer blobs into containerd's committed snapshot chain: in order, or ahead of order.

Layer k's snapshot is prepared on layer k-1's committed snapshot, so applying is ordered.  A pull
downloads layers in parallel, and layer k is often complete while k-1 is still being applied.
``apply_ahead`` then applies it at once, into the upper directory of a parentless snapshot
(handed to containerd's overlay applier as an overlay mount with no lower dirs, so whiteouts
and opaque dirs are written exactly as on a parent); ``attach`` later prepares the real
snapshot on the committed parent, moves the applied tree into its upper directory (one rename,
same filesystem), and commits.  Only the overlayfs snapshotter allows this; elsewhere, and for
the first layer, ``unpack_layer`` applies in order.  containerd 2.2's parallel unpack applies
layers without their parents the same way.

Applying without the parent differs in one way only: a directory the layer's tar implies but
does not list (``a/b/f`` with no ``a/b/`` entry) is made 0755 root:root by containerd's
applier, where on a parent it copies the parent's directory (owner, mode, times, non-trusted
xattrs).  Listed directories get their header's mtime at the end of the apply; implied ones keep
the apply's own time, so ``attach`` finds them and copies from the parent as containerd would.

Crash safety: every snapshot made here is under the caller's lease until committed.
"""
from __future__ import annotations

import asyncio
import logging
import os
import stat
import uuid
from dataclasses import dataclass

from pouch.errtypes import InvalidArgument

from pouch.oci.rootpath import root_path

from ..ctrd.client import Ctrd, Mount, descriptor

log = logging.getLogger(__name__)
Layer = tuple[str, int, str]  # digest, size, media type


@dataclass
class AheadLayer:
    """A layer applied into a detached upper directory, waiting for its parent."""
    key: str          # the parentless snapshot holding it
    upper: str        # its upper directory
    started_ns: int   # mtime of the empty upper dir before the apply (implied dirs are newer)


class LayerUnpacker:
    """Applies layer blobs from the content store into committed snapshots (one per daemon)."""

    def __init__(self, ctrd: Ctrd) -> None:
        self.ctrd = ctrd
        self._locks: dict[str, asyncio.Lock] = {}  # per chain id: one apply of a layer at a time

    @property
    def can_apply_ahead(self) -> bool:
        return self.ctrd.snapshotter == "overlayfs"

    def _lock(self, chain: str) -> asyncio.Lock:
        return self._locks.setdefault(chain, asyncio.Lock())

    async def unpack_layer(self, layer: Layer, diff_id: str, chain: str, parent: str) -> bool:
        """Apply one layer blob on snapshot ``parent`` into the committed snapshot ``chain``.

        The one in-order unpack path (archives, imports, registry pulls).  Returns False when the
        snapshot existed already.  Call inside ``ctrd.lease()``.
        """
        return await self._commit_new(chain, parent, lambda mounts: self._apply(layer, diff_id, mounts))

    async def _commit_new(self, chain: str, parent: str, fill) -> bool:
        """Prepare a snapshot on ``parent``, ``await fill(mounts)``, commit it as ``chain``; on any
        failure remove it.  False if ``chain`` exists already (one apply per layer at a time)."""
        async with self._lock(chain):
            if await self.ctrd.snapshot_exists(chain):
                return False
            key = f"extract-{uuid.uuid4().hex} {chain}"
            mounts = await self.ctrd.snapshot_prepare(key, parent)
            try:
                await fill(mounts)
                await self.ctrd.snapshot_commit(chain, key)
            except BaseException:
                await self.ctrd.snapshot_remove_quietly(key)
                raise
            return True

    async def unpack_all(self, layers: list[Layer], diff_ids: list[str], chains: list[str]) -> None:
        parent = ""
        for layer, diff_id, chain in zip(layers, diff_ids, chains):
            await self.unpack_layer(layer, diff_id, chain, parent)
            parent = chain

    async def apply_ahead(self, layer: Layer, diff_id: str) -> AheadLayer | None:
        """Apply ``layer`` before its parent exists; None where the snapshotter cannot do this."""
        if not self.can_apply_ahead:
            return None
        key = f"extract-ahead-{uuid.uuid4().hex} {diff_id}"
        mounts = await self.ctrd.snapshot_prepare(key, "")
        try:
            if len(mounts) != 1 or mounts[0].type != "bind" or not mounts[0].source.endswith("/fs"):
                await self.ctrd.snapshot_remove_quietly(key)
                return None
            upper = mounts[0].source
            # the filesystem's own (coarse) clock: whatever the apply creates is at least this new
            started = os.stat(upper).st_mtime_ns
            await self._apply(layer, diff_id, [Mount(type="overlay", source="overlay",
                                                     options=[f"upperdir={upper}"])])
        except BaseException:
            await self.ctrd.snapshot_remove_quietly(key)
            raise
        return AheadLayer(key, upper, started)

    async def attach(self, ahead: AheadLayer, chain: str, parent: str) -> bool:
        """Commit an ahead-applied layer as ``chain`` on the committed ``parent``.

        Returns False if ``chain`` existed already (another pull made it); the detached copy is
        dropped either way.
        """
        async def adopt(mounts) -> None:
            upper, lowers = _overlay_dirs(mounts)
            await asyncio.to_thread(adopt_upper, ahead.upper, upper, lowers, ahead.started_ns)
        try:
            return await self._commit_new(chain, parent, adopt)
        finally:
            await self.ctrd.snapshot_remove_quietly(ahead.key)

    async def drop(self, ahead: AheadLayer) -> None:
        await self.ctrd.snapshot_remove_quietly(ahead.key)

    async def _apply(self, layer: Layer, diff_id: str, mounts) -> None:
        d, s, mt = layer
        applied = await self.ctrd.diff_apply(descriptor(mt, d, s), mounts)
        if applied.digest != diff_id:
            raise InvalidArgument(f"layer {d}: unpacked digest {applied.digest} does not match "
                                  f"the image config's diff id {diff_id}")


def _overlay_dirs(mounts) -> tuple[str, list[str]]:
    """(upperdir, lowerdirs top first) of an active overlay snapshot's mount."""
    if len(mounts) != 1 or mounts[0].type != "overlay":
        raise RuntimeError(f"expected one overlay mount, got {[m.type for m in mounts]}")
    opts = dict(o.split("=", 1) for o in mounts[0].options if "=" in o)
    if "upperdir" not in opts or "userxattr" in mounts[0].options:
        raise RuntimeError("overlay mount without a plain upperdir")
    return opts["upperdir"], opts.get("lowerdir", "").split(":") if opts.get("lowerdir") else []


# -- filesystem side (runs in a thread) ------------------------------------------------------

def adopt_upper(detached: str, upper: str, lowers: list[str], since_ns: int) -> None:
    """Make ``detached`` the new snapshot's upper dir ``upper`` (empty, made by containerd)."""
    st = os.lstat(upper)
    if os.listdir(upper):
        raise RuntimeError(f"{upper}: a freshly prepared snapshot is not empty")
    # containerd's applier never touches the root of the upper dir: keep what prepare made
    os.chown(detached, st.st_uid, st.st_gid)
    os.chmod(detached, stat.S_IMODE(st.st_mode))
    os.rename(detached, upper)  # replaces the empty directory
    fix_implied_dirs(upper, lowers, since_ns)


def fix_implied_dirs(upper: str, lowers: list[str], since_ns: int) -> int:
    """Give directories the layer implied (0755 root:root, mtime >= ``since_ns``) the parent's attributes.

    Returns how many were changed.
    """
    changed = 0
    for dirpath, dirnames, _files in os.walk(upper):
        for name in dirnames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if not (stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755 and st.st_uid == 0
                    and st.st_gid == 0 and st.st_mtime_ns >= since_ns):
                continue
            rel = os.path.relpath(path, upper)
            for lower in lowers:
                try:
                    src = root_path(lower, rel)
                    pst = os.lstat(src)
                except OSError:  # absent there (or a symlink loop): look further down
                    continue
                if stat.S_ISDIR(pst.st_mode):
                    _copy_dir_info(src, pst, path)
                    changed += 1
                break  # replaced in that layer (a file or a whiteout): keep the defaults
    return changed


def _copy_dir_info(src: str, st: os.stat_result, dst: str) -> None:
    """containerd's copyDirInfo + copyUpXAttrs: owner, mode, atime, and non-trusted xattrs.

    The mtime stays: containerd copies the parent's too, but then creates the entry that made it
    make the directory, which sets the mtime to the time of the apply, as here.  (Only a directory
    whose sole entry is an opaque marker keeps the parent's mtime there and not here.)
    """
    mtime = os.lstat(dst).st_mtime_ns
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    os.chmod(dst, stat.S_IMODE(st.st_mode))
    for attr in os.listxattr(src, follow_symlinks=False):
        if not attr.startswith("trusted."):
            os.setxattr(dst, attr, os.getxattr(src, attr, follow_symlinks=False), follow_symlinks=False)
    os.utime(dst, ns=(st.st_atime_ns, mtime), follow_symlinks=False)
