"""detect: one function per feature, and `collect()` giving the dict `pouch info` shows."""
import os
import shutil
import subprocess
import tempfile

from pouch.oci import cgroups, seccomp
from pouch.quota import quota_support


def kernel_version() -> str:
    return os.uname().release


def overlayfs() -> bool:
    try:
        with open("/proc/filesystems") as f:
            if any(line.split()[-1] == "overlay" for line in f if line.strip()):
                return True
    except OSError:
        pass
    return os.path.isdir("/sys/module/overlay")


def overlay_usable(directory: str) -> tuple[bool, str]:
    """Can the overlayfs snapshotter work with its layers in `directory`?  Mounts a scratch
    overlay there (as containerd's snapshotter would) and says why not when the kernel refuses
    (no overlay module; an upper filesystem such as overlayfs itself, or one without d_type)."""
    if not overlayfs():
        return False, "the kernel has no overlay filesystem (modprobe overlay)"
    os.makedirs(directory, exist_ok=True)
    try:
        from pouch.quota.mounts import find_mount
        m = find_mount(directory)
        where = f"{m.fstype} ({m.mount_point})"
    except Exception:
        where = "its filesystem"
    work = tempfile.mkdtemp(prefix=".overlay-probe-", dir=directory)
    try:
        for d in ("lower", "upper", "work", "merged"):
            os.mkdir(os.path.join(work, d))
        opts = "lowerdir={0}/lower,upperdir={0}/upper,workdir={0}/work".format(work)
        r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, os.path.join(work, "merged")],
                           capture_output=True, text=True)
        if r.returncode:
            return False, (f"overlayfs cannot keep container layers in {directory}: the kernel refuses "
                           f"{where} as an overlay upper layer; put pouchd's --home-dir on ext4 or xfs")
        subprocess.run(["umount", os.path.join(work, "merged")], capture_output=True)
        return True, f"layers in {where}"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def user_namespaces() -> bool:
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            return int(f.read().strip()) > 0
    except (OSError, ValueError):
        return os.path.exists("/proc/self/ns/user")


def collect(home_dir: str = "/var/lib/pouch", runtimes=None) -> dict:
    """Everything detected, as plain JSON-able values."""
    home = home_dir if os.path.exists(home_dir) else os.path.dirname(home_dir.rstrip("/")) or "/"
    quota_ok, quota_reason = quota_support(home)
    return {
        "KernelVersion": kernel_version(),
        "CgroupVersion": {"v1": "1", "hybrid": "1", "v2": "2"}[cgroups.detect_mode()],
        "CgroupMode": cgroups.detect_mode(),
        "CgroupDriver": cgroups.detect_driver(),
        "Overlayfs": overlayfs(),
        "OverlayfsUsable": dict(zip(("Usable", "Detail"), overlay_usable(home))),
        "Seccomp": seccomp.supported(),
        "KernelMemory": cgroups.kernel_memory_supported(),
        "BlkioWeight": cgroups.blkio_weight_file() is not None,
        "UserNamespaces": user_namespaces(),
        "ProjectQuota": {"Supported": quota_ok, "Detail": quota_reason, "Path": home},
        "Lxcfs": shutil.which("lxcfs"),
        "Runtimes": runtimes.names() if runtimes is not None else
        [n for n in ("runc", "crun", "runsc") if shutil.which(n)],
    }
