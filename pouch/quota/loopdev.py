"""Loop devices and mounts through the kernel's own calls (ctypes): attach, resize, detach, mount.

Why ioctls and mount(2), not losetup/mount: each tool is a fork+exec (several ms on a busy host)
and `run --disk-quota` pays for every one of them.  A device is attached with LOOP_CONFIGURE and
LO_FLAGS_AUTOCLEAR, so the kernel frees it by itself when its last mount goes: a daemon killed
after the attach leaks no device.  `detach_if_ours` is the only explicit detach, and it refuses a
device whose backing file is not below the root it is given (the daemon's home).
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import stat
import struct

LOOP_CTL_GET_FREE = 0x4C82
LOOP_CLR_FD = 0x4C01
LOOP_SET_CAPACITY = 0x4C07
LOOP_CONFIGURE = 0x4C0A
LO_FLAGS_AUTOCLEAR = 4
LOOP_MAJOR = 7

MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

# struct loop_info64: 5 x u64, 4 x u32 (lo_flags last), name[64], crypt_name[64], key[32], 2 x u64
_INFO64 = struct.Struct("=QQQQQIIII64s64s32sQQ")
# struct loop_config { u32 fd; u32 block_size; struct loop_info64 info; u64 reserved[8]; }
_CONFIG = struct.Struct("=II%ds64x" % _INFO64.size)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str, target: str, fstype: str | None = None, flags: int = 0, data: str = "") -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                       data.encode() if data else None), f"mount {source} on {target}")


def bind(source: str, target: str) -> None:
    """Bind `source` on `target`, private (no propagation into or out of the container's mounts)."""
    mount(source, target, None, MS_BIND)
    try:
        mount("none", target, None, MS_PRIVATE)
    except OSError:
        pass


def umount(target: str, lazy: bool = False) -> bool:
    """Unmount `target`; False if it was not a mount point (EINVAL) or is gone (ENOENT)."""
    if _libc.umount2(target.encode(), MNT_DETACH if lazy else 0) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOENT):
        return False
    if err == errno.EBUSY and not lazy:
        return umount(target, lazy=True)
    raise OSError(err, f"umount {target}: {os.strerror(err)}")


def _node(n: int) -> str:
    path = f"/dev/loop{n}"
    if not os.path.exists(path):  # a /dev without devtmpfs (some containers): make the node
        try:
            os.mknod(path, 0o660 | stat.S_IFBLK, os.makedev(LOOP_MAJOR, n))
        except FileExistsError:
            pass
    return path


def attach(image: str, tries: int = 16) -> tuple[str, int]:
    """Attach `image` to a free loop device (autoclear); -> (device path, open fd of the device).

    The caller mounts the device and then closes the fd: from then on the mount holds it, and
    the kernel detaches it when the last mount of it goes.
    """
    img_fd = os.open(image, os.O_RDWR | os.O_CLOEXEC)
    try:
        ctl = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
        try:
            for _ in range(tries):
                n = fcntl.ioctl(ctl, LOOP_CTL_GET_FREE)
                dev = _node(n)
                fd = os.open(dev, os.O_RDWR | os.O_CLOEXEC)
                info = _INFO64.pack(0, 0, 0, 0, 0, 0, 0, 0, LO_FLAGS_AUTOCLEAR,
                                    image.encode()[:63], b"", b"", 0, 0)
                try:
                    fcntl.ioctl(fd, LOOP_CONFIGURE, _CONFIG.pack(img_fd, 0, info))
                    return dev, fd
                except OSError as e:
                    os.close(fd)
                    if e.errno != errno.EBUSY:  # EBUSY: another process took it first
                        raise
            raise OSError(errno.EBUSY, "no free loop device")
        finally:
            os.close(ctl)
    finally:
        os.close(img_fd)


def set_capacity(device: str) -> None:
    """Tell the loop device its backing file grew."""
    fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, LOOP_SET_CAPACITY, 0)
    finally:
        os.close(fd)


def backing_file(device: str) -> str | None:
    name = os.path.basename(device)
    try:
        with open(f"/sys/block/{name}/loop/backing_file") as f:
            return f.read().strip()
    except OSError:
        return None


def devices_backed_under(root: str) -> dict[str, str]:
    """{device: backing file} of every attached loop device whose file is below `root`."""
    out = {}
    root = os.path.realpath(root).rstrip("/") + "/"
    try:
        names = [n for n in os.listdir("/sys/block") if n.startswith("loop")]
    except OSError:
        return out
    for n in names:
        f = backing_file(n)
        if f and (f.removesuffix(" (deleted)")).startswith(root):
            out[f"/dev/{n}"] = f.removesuffix(" (deleted)")
    return out


def detach_if_ours(device: str, root: str) -> bool:
    """Detach `device` only if its backing file is below `root`; True if it was detached."""
    f = backing_file(device)
    if not f or not f.removesuffix(" (deleted)").startswith(os.path.realpath(root).rstrip("/") + "/"):
        return False
    try:
        fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.ioctl(fd, LOOP_CLR_FD, 0)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
