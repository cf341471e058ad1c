"""detect: one function per feature, and `collect()` giving the dict `pouch info` shows."""
import os
import shutil

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
        "Seccomp": seccomp.supported(),
        "KernelMemory": cgroups.kernel_memory_supported(),
        "BlkioWeight": cgroups.blkio_weight_file() is not None,
        "UserNamespaces": user_namespaces(),
        "ProjectQuota": {"Supported": quota_ok, "Detail": quota_reason, "Path": home},
        "Lxcfs": shutil.which("lxcfs"),
        "Runtimes": runtimes.names() if runtimes is not None else
        [n for n in ("runc", "crun", "runsc") if shutil.which(n)],
    }
