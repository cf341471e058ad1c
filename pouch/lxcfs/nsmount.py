"""Re-bind lxcfs views into a running container's mount namespace (pouch remount-lxcfs).

Inside the container the host's lxcfs mount point is not reachable (the container has its own
root after pivot_root), so `nsenter -t PID -m mount --bind /var/lib/pouch/lxcfs/proc/meminfo
/proc/meminfo` cannot find its source. Instead we use the new mount API (Linux >= 5.2): in the
host namespace `open_tree(OPEN_TREE_CLONE)` makes a detached copy of each view's mount and
returns a file descriptor; then the process setns()es into the container's mount namespace,
lazily unmounts the stale view (dead FUSE: ENOTCONN) and `move_mount`s the detached tree onto
the target. setns(CLONE_NEWNS) needs a single-threaded process, so this runs as a short-lived
helper process (`python -m pouch.lxcfs.nsmount`), never inside the daemon's threads.
"""
import ctypes
import json
import os
import subprocess
import sys

from .errors import LxcfsError

_SYS = {"open_tree": 428, "move_mount": 429}   # same numbers on x86_64 and aarch64
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x4
AT_FDCWD = -100
CLONE_NEWNS = 0x00020000
MNT_DETACH = 2


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _check(rc, what):
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return rc


def bind_into_namespace(pid: int, pairs: list) -> list:
    """[(host source, container target)] -> bind each into the mount namespace of `pid`.

    Must be called in a single-threaded process (it setns()es itself). Returns the targets done.
    """
    libc = _libc()
    trees = []
    for src, dst in pairs:
        fd = _check(libc.syscall(_SYS["open_tree"], AT_FDCWD, src.encode(),
                                 OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC), f"open_tree {src}")
        trees.append((fd, dst))
    ns = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    _check(libc.setns(ns, CLONE_NEWNS), f"setns into mount namespace of {pid}")
    os.close(ns)
    done = []
    for fd, dst in trees:
        libc.umount2(dst.encode(), MNT_DETACH)          # the stale view; fails harmlessly if none
        if not os.path.lexists(dst):
            continue                                     # the container has no such file
        _check(libc.syscall(_SYS["move_mount"], fd, b"", AT_FDCWD, dst.encode(),
                            MOVE_MOUNT_F_EMPTY_PATH), f"move_mount onto {dst}")
        os.close(fd)
        done.append(dst)
    return done


def remount(pid: int, mount_point: str, views) -> list:
    """Bind `views` of the lxcfs at `mount_point` into the running container whose init is `pid`."""
    pairs = [(mount_point + v, v) for v in views]
    r = subprocess.run([sys.executable, "-m", "pouch.lxcfs.nsmount", str(pid), json.dumps(pairs)],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise LxcfsError(f"remounting lxcfs views into pid {pid}: {r.stderr.strip() or r.stdout.strip()}")
    return json.loads(r.stdout)


def _main(argv):
    pid, pairs = int(argv[1]), json.loads(argv[2])
    try:
        done = bind_into_namespace(pid, pairs)
    except OSError as e:
        print(str(e), file=sys.stderr)
        return 1
    print(json.dumps(done))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
