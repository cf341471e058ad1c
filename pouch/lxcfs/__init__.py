"""LXCFS: run lxcfs under pouchd and give containers its resource-aware /proc and /sys views.

Public API: LxcfsSupervisor (start/stop/oci_mounts/views, restarts on death), remount (rebind
views into a running container), remount_async, VIEWS, oci_mounts, is_alive, and typed errors.
"""
import asyncio

from .errors import LxcfsError, LxcfsNotEnabled
from .nsmount import remount
from .supervisor import DEFAULT_MOUNT_POINT, LxcfsSupervisor, is_alive, is_mounted
from .views import VIEWS, available_views, oci_mounts


async def remount_async(pid: int, mount_point: str, views) -> list:
    """remount() without blocking the event loop."""
    return await asyncio.to_thread(remount, pid, mount_point, list(views))


__all__ = ["LxcfsSupervisor", "remount", "remount_async", "VIEWS", "available_views", "oci_mounts",
           "is_alive", "is_mounted", "DEFAULT_MOUNT_POINT", "LxcfsError", "LxcfsNotEnabled"]
