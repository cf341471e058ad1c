"""The lxcfs views bind-mounted into containers, and their OCI mount entries."""
import os

# Paths inside the container; each is served by lxcfs at <mount point><path>.
VIEWS = (
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/uptime",
    "/proc/diskstats",
    "/proc/swaps",
    "/proc/loadavg",                    # only served when lxcfs runs with --enable-loadavg
    "/sys/devices/system/cpu/online",
)


def available_views(mount_point: str) -> list:
    """The views this lxcfs actually serves (lxcfs 5.0.3 serves all of VIEWS when run with -l)."""
    return [v for v in VIEWS if os.path.exists(mount_point + v)]


def oci_mounts(mount_point: str, views=None) -> list:
    """OCI `mounts` entries binding each view read-only over the container's own file."""
    views = available_views(mount_point) if views is None else views
    return [{"destination": v, "type": "bind", "source": mount_point + v,
             "options": ["rbind", "ro", "rprivate"]} for v in views]
