"""The loop backend of disk quota: a sized ext4 image per container or volume, loop-mounted.

For hosts whose kernel has no project quota.  Each owner ("c-<container id>", "v-<volume>")
gets records under <root>/<owner>/<n>/: `disk.img` (a sparse file of the quota's size),
and `record.json` (its size, filesystem and target).  A container's fs is mounted straight on
its overlay snapshot's directory (the one holding fs/ and work/: overlayfs wants its upper and work
dirs on one mount), one mount in all; a volume's is mounted on `mnt/` and its `data/` directory
bound on the volume's directory (so no lost+found shows in the volume).
Writes past the size fail with ENOSPC; the host's free space only shrinks by what was written.

Which filesystem: ext4 without a journal (as fast to make as xfs here, works at any size from
16 MB, writes next to nothing into the sparse file; holes read as zeros, so the inode tables need
no init: `noinit_itable`) - when it can grow online, which the kernel allows only with
CAP_SYS_RESOURCE.  A daemon without that capability (some containers) makes xfs for quotas of
236 MB and up (xfs_growfs needs only CAP_SYS_ADMIN; mkfs.xfs refuses less than 300 MB), its image
sized quota + the 64 MB internal log so that `df` shows the quota; smaller quotas stay ext4 and
cannot grow there (said so when asked).

mkfs, most of the cost, is mostly off the `run` path: after each create one formatted image of
that size is made in the background (`.pool/`, at most two sizes kept), and the next container
of the same size renames it into its record.

Nothing leaks: the loop device is attached with autoclear (it goes with its last mount), `remove`
unmounts the fs (and its bind) (lazily: the kernel finishes in the background) and deletes the record
(moved to .trash, deleted by a thread), and `sweep` (daemon start-up) removes the
records of owners that no longer exist - a daemon killed half-way through a create included -
and mounts again those of live owners that a reboot unmounted.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import threading
import time

from pouch.daemon import failpoint

from . import loopdev
from .errors import InvalidQuotaSpec, QuotaError

log = logging.getLogger(__name__)

MKFS = {"ext4": ["mkfs.ext4", "-q", "-F", "-b", "4096", "-m", "0", "-O", "^has_journal",
                 "-E", "lazy_itable_init=1,nodiscard", "-L", "pouchquota"],
        "xfs": ["mkfs.xfs", "-q", "-f", "-K", "-l", "size=64m", "-L", "pouchquota"]}
MOUNT_OPTS = {"ext4": "noinit_itable", "xfs": ""}
XFS_LOG = 64 * 1024 * 1024
XFS_MIN_IMAGE = 300 * 1024 * 1024
CAP_SYS_RESOURCE = 24
POOL_KEYS = 2
MIN_SIZE = 16 * 1024 * 1024


def available() -> tuple[bool, str]:
    """Can this host make loop-backed filesystems? -> (ok, reason)."""
    if os.geteuid() != 0:
        return False, "needs root for loop devices"
    if not os.path.exists("/dev/loop-control"):
        return False, "no /dev/loop-control (loop driver missing)"
    if not shutil.which("mkfs.ext4") or not shutil.which("resize2fs"):
        return False, "mkfs.ext4 / resize2fs not installed (e2fsprogs)"
    how = "ext4" if can_grow_ext4() else (
        "xfs, ext4 below 236m (no CAP_SYS_RESOURCE: ext4 cannot grow online)" if shutil.which("xfs_growfs")
        else "ext4 (no CAP_SYS_RESOURCE and no xfsprogs: quotas cannot grow)")
    return True, f"a sized filesystem per container and volume on a loop device: {how}"


def can_grow_ext4() -> bool:
    """ext4's online resize ioctl needs CAP_SYS_RESOURCE in the daemon's effective set."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_SYS_RESOURCE & 1)
    except (OSError, ValueError):
        pass
    return False


def fs_for(size: int) -> tuple[str, int]:
    """-> (filesystem, image size) for a quota of `size` bytes on this host."""
    if can_grow_ext4() or not shutil.which("mkfs.xfs") or size + XFS_LOG < XFS_MIN_IMAGE:
        return "ext4", size
    return "xfs", size + XFS_LOG


def _mount_points() -> dict[str, str]:
    """{mount point: source} of the current mount namespace."""
    out = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            mp = left.split()[4].replace("\\040", " ")
            out[mp] = right.split()[1] if len(right.split()) > 1 else ""
    return out


class LoopQuota:
    name = "loop"

    def __init__(self, root: str) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._refilling: set = set()
        os.makedirs(root, mode=0o700, exist_ok=True)

    # -- records -----------------------------------------------------------------
    def _owner_dir(self, owner: str) -> str:
        if not owner or "/" in owner or owner.startswith("."):
            raise InvalidQuotaSpec(f"invalid quota owner {owner!r}")
        return os.path.join(self.root, owner)

    def records(self, owner: str) -> list[str]:
        d = self._owner_dir(owner)
        try:
            names = sorted((n for n in os.listdir(d) if n.isdigit()), key=int)
        except FileNotFoundError:
            return []
        return [os.path.join(d, n) for n in names]

    def owners(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.root) if not n.startswith("."))
        except FileNotFoundError:
            return []

    @staticmethod
    def _read(rec: str) -> dict:
        try:
            with open(os.path.join(rec, "record.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    @staticmethod
    def _write(rec: str, data: dict) -> None:
        tmp = os.path.join(rec, "record.json.tmp")
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, os.path.join(rec, "record.json"))

    # -- create ------------------------------------------------------------------
    def create(self, owner: str, size: int, target: str, subdir: str = "") -> str:
        """A `size`-byte fs for `owner` on the (empty but for empty dirs) directory `target`: its
        root mounted there, or with `subdir` its `subdir` bound there; the target's dirs, owner
        and mode are copied into it.  -> the record's directory."""
        if size < MIN_SIZE:
            raise InvalidQuotaSpec(f"disk quota {size} bytes is too small: the loop backend needs at "
                                   f"least {MIN_SIZE // (1024 * 1024)}m")
        with self._lock:
            d = self._owner_dir(owner)
            os.makedirs(d, mode=0o700, exist_ok=True)
            n = max([int(os.path.basename(r)) for r in self.records(owner)] + [0]) + 1
            rec = os.path.join(d, str(n))
            os.mkdir(rec, 0o700)
        t0 = time.perf_counter()
        try:
            self._make(rec, size, target, subdir)
        except BaseException:
            self._remove_record(rec)
            raise
        log.debug("disk quota %s: %d MB fs on %s in %.1f ms", owner, size >> 20, target,
                  (time.perf_counter() - t0) * 1000)
        return rec

    def _make(self, rec: str, size: int, target: str, subdir: str) -> None:
        image = os.path.join(rec, "disk.img")
        fs, image_size = fs_for(size)
        # first: a sweep finds every mount of it
        self._write(rec, {"size": size, "fs": fs, "target": target, "subdir": subdir})
        if not self._take_pooled(fs, image_size, image):
            _mkfs(fs, image_size, image)
        failpoint.crash("quota-after-mkfs")  # a test kills pouchd here: the sweep must clean up
        self._mount(rec, fresh=True)
        self._refill_soon(fs, image_size)

    # -- the pool: one formatted image ready for the size asked last ----------------------------
    # mkfs is most of what a quota costs a `run`; the next container of the same size takes a
    # ready image (a rename) and a new one is made in the background.  At most POOL_KEYS sizes
    # are kept; a sweep at start-up drops unfinished ones.
    def _pool_path(self, fs: str, image_size: int) -> str:
        return os.path.join(self.root, ".pool", f"{fs}-{image_size}.img")

    def _take_pooled(self, fs: str, image_size: int, image: str) -> bool:
        try:
            os.rename(self._pool_path(fs, image_size), image)
            return True
        except FileNotFoundError:
            return False

    def _refill_soon(self, fs: str, image_size: int) -> None:
        key = (fs, image_size)
        with self._lock:
            if key in self._refilling:
                return
            self._refilling.add(key)
        threading.Thread(target=self._refill, args=key, daemon=True, name="quota-pool").start()

    def _refill(self, fs: str, image_size: int) -> None:
        try:
            path = self._pool_path(fs, image_size)
            if os.path.exists(path):
                return
            pool = os.path.dirname(path)
            os.makedirs(pool, mode=0o700, exist_ok=True)
            others = sorted((os.path.join(pool, n) for n in os.listdir(pool) if n.endswith(".img")),
                            key=lambda p: os.stat(p).st_mtime)
            for old in others[:max(0, len(others) - POOL_KEYS + 1)]:
                os.unlink(old)
            tmp = path + ".tmp"
            _mkfs(fs, image_size, tmp)
            os.rename(tmp, path)
        except Exception as e:
            log.debug("disk quota pool: %s", e)
        finally:
            with self._lock:
                self._refilling.discard((fs, image_size))

    def _mount(self, rec: str, fresh: bool = False) -> None:
        data = self._read(rec)
        fs, target, subdir = data.get("fs", "ext4"), data["target"], data.get("subdir") or ""
        # the target's shape (a snapshot's fs/ and work/), taken before the mount hides it
        like = [(n, os.stat(os.path.join(target, n))) for n in os.listdir(target)
                if os.path.isdir(os.path.join(target, n))] if fresh else []
        top = os.stat(target)
        where = os.path.join(rec, "mnt") if subdir else target
        os.makedirs(where, mode=0o700, exist_ok=True)
        dev, fd = loopdev.attach(os.path.join(rec, "disk.img"))
        try:
            loopdev.mount(dev, where, fs, 0, MOUNT_OPTS[fs])
        finally:
            os.close(fd)  # the mount holds the device now; autoclear frees it with the last umount
        root = os.path.join(where, subdir) if subdir else where
        if fresh:
            if subdir:
                os.mkdir(root)
            _copy_attrs(top, root)
            for name, st in like:
                os.mkdir(os.path.join(root, name))
                _copy_attrs(st, os.path.join(root, name))
        if subdir:
            loopdev.bind(root, target)

    def _mount_point(self, rec: str) -> str:
        """Where `rec`'s fs itself is mounted (for statvfs, xfs_growfs)."""
        data = self._read(rec)
        return os.path.join(rec, "mnt") if data.get("subdir") else data.get("target", "")

    # -- queries / changes ----------------------------------------------------------
    def current(self, owner: str) -> str | None:
        recs = self.records(owner)
        return recs[-1] if recs else None

    def usage(self, owner: str) -> dict:
        rec = self.current(owner)
        if rec is None:
            return {}
        st = os.statvfs(self._mount_point(rec))
        return {"hard_bytes": self._read(rec).get("size", 0),
                "used_bytes": (st.f_blocks - st.f_bfree) * st.f_frsize,
                "total_bytes": st.f_blocks * st.f_frsize}

    def resize(self, owner: str, size: int) -> None:
        """Grow `owner`'s fs online to `size` bytes; a shrink is refused (ext4 cannot shrink while
        mounted), with what is in use when the new size is below it."""
        rec = self.current(owner)
        if rec is None:
            raise InvalidQuotaSpec("this container has no disk quota to change: the loop backend "
                                   "sets one only when the container is created")
        data = self._read(rec)
        old = int(data.get("size") or 0)
        if size == old:
            return
        if size < old:
            used = self.usage(owner).get("used_bytes", 0)
            if size < used:
                raise InvalidQuotaSpec(f"cannot shrink disk quota to {size} bytes: {used} bytes are in use")
            raise InvalidQuotaSpec(f"cannot shrink disk quota from {old} to {size} bytes: the loop backend "
                                   f"only grows a filesystem while it is in use")
        mnt = self._mount_point(rec)
        dev = self._device(rec, _mount_points())
        if not dev:
            raise QuotaError(f"disk quota filesystem of {owner} is not mounted")
        fs = data.get("fs", "ext4")
        if fs == "ext4" and not can_grow_ext4():
            raise InvalidQuotaSpec("cannot grow this disk quota online: its ext4 needs CAP_SYS_RESOURCE, "
                                   "which pouchd does not have (quotas of 236m and more use xfs, which grows)")
        with open(os.path.join(rec, "disk.img"), "r+b") as f:
            f.truncate(size + (XFS_LOG if fs == "xfs" else 0))
        loopdev.set_capacity(dev)
        cmd = ["resize2fs", dev] if fs == "ext4" else ["xfs_growfs", "-d", mnt]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            raise QuotaError(f"{cmd[0]} failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
        data["size"] = size
        self._write(rec, data)

    # -- removal and recovery ----------------------------------------------------------
    def remove(self, owner: str) -> None:
        """Unmount and delete every fs of `owner` (nothing to do if it has none)."""
        for rec in reversed(self.records(owner)):
            self._remove_record(rec)
        try:
            os.rmdir(self._owner_dir(owner))
        except OSError:
            pass

    def retire(self, owner: str, keep_last: bool = True) -> None:
        """Remove all but `owner`'s newest fs (an upgrade's old writable layer)."""
        recs = self.records(owner)
        for rec in reversed(recs[:-1] if keep_last else recs):
            self._remove_record(rec)

    def remove_bound_to(self, owner: str, target: str) -> None:
        """Remove `owner`'s fs that is mounted on `target` (a layer about to be removed)."""
        for rec in self.records(owner):
            if self._read(rec).get("target") == target:
                self._remove_record(rec)

    @staticmethod
    def _device(rec: str, points: dict) -> str | None:
        """The loop device of `rec`'s image if it is mounted where the record says."""
        for d, _f in loopdev.devices_backed_under(rec).items():
            if d in points.values():
                return d
        return None

    def _remove_record(self, rec: str) -> None:
        points = _mount_points()
        data = self._read(rec)
        dev = self._device(rec, points)
        # lazy unmounts: the mounts leave the namespace at once (so the snapshot's directory is
        # plain again for containerd), the kernel writes back and frees the fs in the background,
        # and autoclear then detaches the loop device; the final sync is off the `rm` path
        if dev is not None:
            for where in (data.get("target"), os.path.join(rec, "mnt")):
                if where and points.get(where) == dev:
                    loopdev.umount(where, lazy=True)
        # a device never mounted (a crash between attach and mount) or not set to autoclear:
        # detached here - only if its backing file is ours
        for d in loopdev.devices_backed_under(rec):
            loopdev.detach_if_ours(d, rec)
        # the files go in the background (tens of ms on a busy host); a crash leaves them in
        # .trash for the next sweep
        trash = os.path.join(self.root, ".trash")
        os.makedirs(trash, mode=0o700, exist_ok=True)
        gone = os.path.join(trash, f"{os.path.basename(os.path.dirname(rec))}-{os.path.basename(rec)}-"
                                   f"{os.urandom(4).hex()}")
        try:
            os.rename(rec, gone)
        except OSError:
            shutil.rmtree(rec, ignore_errors=True)
            return
        threading.Thread(target=shutil.rmtree, args=(gone, True), daemon=True, name="quota-rm").start()

    def ensure_mounted(self, owner: str) -> None:
        """Mount `owner`'s filesystems again where they are not (after a host reboot); older
        ones too (a rolled-back upgrade's layer under the current one)."""
        points = None
        for rec in self.records(owner):
            data = self._read(rec)
            if not data.get("target") or not os.path.exists(os.path.join(rec, "disk.img")):
                continue
            points = points if points is not None else _mount_points()
            if self._device(rec, points) is None and os.path.isdir(data["target"]):
                self._mount(rec)

    def sweep(self, live: set[str]) -> list[str]:
        """Start-up: remove the records of owners not in `live`, mount those of live ones again.
        -> the owners removed."""
        gone = []
        pool = os.path.join(self.root, ".pool")
        for name in os.listdir(pool) if os.path.isdir(pool) else []:
            if name.endswith(".tmp"):  # a refill the crash interrupted
                os.unlink(os.path.join(pool, name))
        shutil.rmtree(os.path.join(self.root, ".trash"), ignore_errors=True)
        for owner in self.owners():
            if owner in live:
                try:
                    for rec in self.records(owner):
                        if not os.path.exists(os.path.join(rec, "disk.img")):
                            self._remove_record(rec)
                    self.ensure_mounted(owner)
                except Exception as e:
                    log.warning("disk quota of %s: cannot mount its filesystem again: %s", owner, e)
                continue
            try:
                self.remove(owner)
                gone.append(owner)
            except Exception as e:
                log.warning("disk quota: cleaning up %s: %s", owner, e)
        return gone


def _mkfs(fs: str, image_size: int, image: str) -> None:
    with open(image, "wb") as f:
        f.truncate(image_size)
    r = subprocess.run(MKFS[fs] + [image], capture_output=True, text=True)
    if r.returncode:
        raise QuotaError(f"mkfs.{fs} for disk quota failed: {r.stderr.strip()}")


def _copy_attrs(st, path: str) -> None:
    os.chown(path, st.st_uid, st.st_gid)
    os.chmod(path, st.st_mode & 0o7777)
