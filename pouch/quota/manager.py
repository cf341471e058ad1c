"""QuotaManager: the one entry the daemon calls to put, read and remove a project quota on a directory."""
import errno
import os
import threading

from . import projid, quotactl
from .errors import QuotaError, QuotaNotSupported
from .ids import QuotaIdAllocator
from .mounts import find_mount




def quota_support(path: str) -> tuple:
    """-> (supported: bool, reason: str) for project quota on the filesystem holding `path`.

    xfs: mounted with prjquota/pquota. ext4: `project` feature and project quota on (the
    prjquota mount option or the `quota` feature). Then a Q_GETINFO probe confirms that the
    kernel really accounts project quota there (a kernel without CONFIG_XFS_QUOTA/QFMT_V2
    refuses the mount option, or reports ESRCH/ENOSYS).
    """
    try:
        m = find_mount(path)
    except (OSError, FileNotFoundError) as e:
        return False, f"cannot find the filesystem of {path}: {e}"
    opts = m.all_options
    if m.fstype == "xfs":
        if not opts & {"prjquota", "pquota", "pqnoenforce"}:
            return False, (f"{path} is on xfs {m.mount_point} mounted without prjquota "
                           f"(remount it with -o prjquota)")
    elif m.fstype == "ext4":
        if not opts & {"prjquota"} and not _ext4_has_project_quota(m.source):
            return False, (f"{path} is on ext4 {m.mount_point} without project quota "
                           f"(mkfs.ext4 -O quota,project and mount -o prjquota)")
    else:
        return False, f"{path} is on {m.fstype} {m.mount_point}: project quota needs xfs or ext4"
    if not quotactl.project_quota_enabled(path, m.source):
        return False, f"project quota is not enabled on {m.mount_point} ({m.fstype}) in this kernel"
    return True, f"{m.fstype} {m.mount_point}"


def _ext4_has_project_quota(device: str) -> bool:
    """Read the ext4 superblock: RO_COMPAT_QUOTA (0x100) and RO_COMPAT_PROJECT (0x2000)."""
    try:
        with open(device, "rb") as f:
            f.seek(1024 + 0x64)
            ro_compat = int.from_bytes(f.read(4), "little")
    except OSError:
        return False
    return bool(ro_compat & 0x100) and bool(ro_compat & 0x2000)


class QuotaManager:
    """Sets hard block limits on directories with project quota; ids persisted in `state_file`."""

    def __init__(self, state_file: str):
        self.ids = QuotaIdAllocator(state_file)
        self._lock = threading.Lock()

    def check(self, path: str) -> None:
        """Raise QuotaNotSupported (400) unless `path`'s filesystem enforces project quota."""
        ok, reason = quota_support(path)
        if not ok:
            raise QuotaNotSupported(f"disk quota is not supported: {reason}")

    def set_quota(self, path: str, size_bytes: int, owner: str, quota_id: int | None = None,
                  recursive: bool = True) -> int:
        """Put `path` under a hard limit of `size_bytes`; returns the quota id used.

        An explicit `quota_id` is honoured (QuotaIdInUse if another owner holds it); otherwise
        the owner's existing id is reused or a fresh one allocated from 16777216 up.
        """
        self.check(path)
        device = find_mount(path).source
        if quota_id is None:
            held = self.ids.ids_of(owner)
            quota_id = held[0] if held else None
        qid = self.ids.allocate(owner, quota_id)
        try:
            projid.set_project(path, qid, recursive=recursive)
            quotactl.set_block_limit(path, qid, size_bytes, device)
        except OSError as e:
            if quota_id is None:
                self.ids.release(qid)
            if e.errno in (errno.ENOTTY, errno.EOPNOTSUPP, errno.ENOSYS, errno.ESRCH):
                raise QuotaNotSupported(f"disk quota is not supported on {path}: {e.strerror}") from e
            raise QuotaError(f"setting disk quota on {path}: {e}") from e
        return qid

    def get_usage(self, path: str) -> dict:
        """-> {'quota_id', 'hard_bytes', 'used_bytes', ...} of the project `path` belongs to."""
        qid, _ = projid.get_project(path)
        info = quotactl.get_quota(path, qid, find_mount(path).source)
        info["quota_id"] = qid
        return info

    def remove(self, path: str | None, owner: str) -> None:
        """Drop the limit of `owner`'s ids and release them; resets `path` to project 0 if it exists."""
        for qid in self.ids.ids_of(owner):
            if path and os.path.exists(path):
                try:
                    quotactl.set_block_limit(path, qid, 0, find_mount(path).source)
                except OSError:
                    pass
                try:
                    projid.set_project(path, 0, recursive=False)
                except OSError:
                    pass
            self.ids.release(qid)
