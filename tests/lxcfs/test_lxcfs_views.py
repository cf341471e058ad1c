"""Unit tests: the lxcfs view list and its OCI mounts."""
from pouch.lxcfs import oci_mounts


def test_oci_mounts_bind_readonly_from_mount_point():
    ms = oci_mounts("/var/lib/pouch/lxcfs", ["/proc/meminfo"])
    assert ms == [{"destination": "/proc/meminfo", "type": "bind",
                   "source": "/var/lib/pouch/lxcfs/proc/meminfo", "options": ["rbind", "ro", "rprivate"]}]
