"""Project quota limits and usage through the quotactl(2) / quotactl_fd(2) system calls (ctypes).

Why not `xfs_quota -x -c 'limit -p bhard=..'` or `setquota -P`: each is a fork+exec plus a scan
of the mount table (several ms, more on a busy host), and the two tools differ per filesystem.
The generic Q_SETQUOTA/Q_GETQUOTA commands with PRJQUOTA work on both xfs and ext4 (the kernel
maps them onto xfs's own quota ops), so one code path serves both. quotactl_fd (Linux 5.14)
takes a descriptor of any file on the filesystem, so no block device node is needed; on older
kernels we fall back to quotactl with the mount's source device.
"""
import ctypes
import errno
import os
import platform
import struct

PRJQUOTA = 2
Q_GETINFO = 0x800005
Q_GETQUOTA = 0x800007
Q_SETQUOTA = 0x800008
QIF_BLIMITS = 1
QIF_SPACE = 2
QIF_ILIMITS = 4
QIF_INODES = 8
QIF_LIMITS = QIF_BLIMITS | QIF_ILIMITS
QIF_DQBLKSIZE = 1024      # block limits in if_dqblk are in 1 KiB units

# struct if_dqblk: u64 bhardlimit, bsoftlimit, curspace, ihardlimit, isoftlimit, curinodes,
#                  btime, itime; u32 valid; (padded to 72 bytes)
_DQBLK = struct.Struct("=QQQQQQQQI4x")
_DQINFO = struct.Struct("=QQII")
_SYS_QUOTACTL_FD = {"x86_64": 443, "aarch64": 443, "arm64": 443}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.quotactl.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]


def _qcmd(cmd: int, qtype: int) -> int:
    return ((cmd << 8) | (qtype & 0xFF)) & 0xFFFFFFFF


def _call(path: str, device: str | None, cmd: int, qid: int, buf) -> None:
    """Run one quotactl on the filesystem holding `path`; raise OSError on failure."""
    addr = ctypes.cast(buf, ctypes.c_void_p) if buf is not None else None
    nr = _SYS_QUOTACTL_FD.get(platform.machine())
    if nr is not None:
        fd = os.open(path, os.O_RDONLY)
        try:
            rc = _libc.syscall(ctypes.c_long(nr), ctypes.c_int(fd), ctypes.c_int(ctypes.c_int32(_qcmd(cmd, PRJQUOTA)).value),
                               ctypes.c_int(qid), addr)
        finally:
            os.close(fd)
        if rc == 0:
            return
        err = ctypes.get_errno()
        if err != errno.ENOSYS or not device:
            raise OSError(err, f"quotactl_fd({path}): {os.strerror(err)}")
    if not device:
        raise OSError(errno.ENOSYS, "quotactl needs the block device of the filesystem")
    rc = _libc.quotactl(ctypes.c_int32(_qcmd(cmd, PRJQUOTA)).value, device.encode(), qid, addr)
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"quotactl({device}): {os.strerror(err)}")


def project_quota_enabled(path: str, device: str | None = None) -> bool:
    """True when project quota accounting is on for the filesystem holding `path`."""
    buf = ctypes.create_string_buffer(_DQINFO.size)
    try:
        _call(path, device, Q_GETINFO, 0, buf)
    except OSError as e:
        if e.errno in (errno.ESRCH, errno.ENOSYS, errno.ENOTTY, errno.EINVAL, errno.EOPNOTSUPP,
                       errno.ENODEV, errno.ENOTBLK):
            return False
        raise
    return True


def set_block_limit(path: str, projid: int, hard_bytes: int, device: str | None = None) -> None:
    """Set the block hard limit (rounded up to 1 KiB) of project `projid`; 0 removes the limit."""
    blocks = (hard_bytes + QIF_DQBLKSIZE - 1) // QIF_DQBLKSIZE
    buf = ctypes.create_string_buffer(_DQBLK.pack(blocks, blocks, 0, 0, 0, 0, 0, 0, QIF_BLIMITS), _DQBLK.size)
    _call(path, device, Q_SETQUOTA, projid, buf)


def get_quota(path: str, projid: int, device: str | None = None) -> dict:
    """-> {'hard_bytes', 'soft_bytes', 'used_bytes', 'inodes'} for project `projid`."""
    buf = ctypes.create_string_buffer(_DQBLK.size)
    _call(path, device, Q_GETQUOTA, projid, buf)
    bh, bs, cur, _ih, _is, inodes, _bt, _it, _valid = _DQBLK.unpack(buf.raw)
    return {"hard_bytes": bh * QIF_DQBLKSIZE, "soft_bytes": bs * QIF_DQBLKSIZE,
            "used_bytes": cur, "inodes": inodes}
