"""CRI resource usage: container, pod and image-filesystem stats from cgroups and snapshots.

CPU and memory come from the container's cgroup (pouch's StatsCollector, under
the pod's cgroup parent); writable-layer usage from containerd's snapshotter,
refreshed at most every ``--cri-stats-collect-period`` seconds, since it walks
the layer.
"""
from __future__ import annotations

import os
import time

from pouch.daemon.mgr.stats import StatsCollector

from .pb import api_pb2 as pb


class CriStats:
    def __init__(self, containers, ctrd, period: int) -> None:
        self.containers = containers  # the CRI's ContainerManager
        self.ctrd = ctrd
        self.period = max(int(period), 1)
        self._layer: dict[str, tuple[float, int, int]] = {}
        self._cpu: dict[str, tuple[int, int]] = {}  # id -> (ns timestamp, cpu ns) for nano-cores

    async def _writable(self, c) -> tuple[int, int]:
        hit = self._layer.get(c.id)
        if hit and time.monotonic() - hit[0] < self.period:
            return hit[1], hit[2]
        try:
            size, inodes = await self.ctrd.snapshot_usage(c.meta.get("SnapshotKey", c.id))
        except Exception:
            size, inodes = 0, 0
        self._layer[c.id] = (time.monotonic(), size, inodes)
        return size, inodes

    async def cgroup(self, c) -> tuple[pb.CpuUsage, pb.MemoryUsage]:
        parent = self.containers.cgroup_path_parent(c.host_config)
        snap = await StatsCollector(cgroup_parent=parent).snapshot(c)
        now = time.time_ns()
        cpu_ns = int(snap["cpu_stats"]["cpu_usage"]["total_usage"])
        prev = self._cpu.get(c.id)
        self._cpu[c.id] = (now, cpu_ns)
        cpu = pb.CpuUsage(timestamp=now, usage_core_nano_seconds=pb.UInt64Value(value=cpu_ns))
        if prev and now > prev[0]:
            cpu.usage_nano_cores.value = max(0, (cpu_ns - prev[1]) * 10 ** 9 // (now - prev[0]))
        ms = snap["memory_stats"]
        stats = ms.get("stats") or {}
        usage = int(ms.get("usage") or 0)
        inactive = stats.get("total_inactive_file", stats.get("inactive_file", 0))
        mem = pb.MemoryUsage(timestamp=now, working_set_bytes=pb.UInt64Value(value=max(0, usage - inactive)),
                             usage_bytes=pb.UInt64Value(value=usage),
                             rss_bytes=pb.UInt64Value(value=stats.get("total_rss", stats.get("anon", 0))),
                             page_faults=pb.UInt64Value(value=stats.get("total_pgfault", stats.get("pgfault", 0))),
                             major_page_faults=pb.UInt64Value(
                                 value=stats.get("total_pgmajfault", stats.get("pgmajfault", 0))))
        limit = int(ms.get("limit") or 0)
        if limit:
            mem.available_bytes.value = max(0, limit - usage)
        return cpu, mem

    async def container(self, c, attributes: pb.ContainerAttributes, mountpoint: str) -> pb.ContainerStats:
        cpu, mem = await self.cgroup(c)
        size, inodes = await self._writable(c)
        layer = pb.FilesystemUsage(timestamp=time.time_ns(), fs_id=pb.FilesystemIdentifier(mountpoint=mountpoint),
                                   used_bytes=pb.UInt64Value(value=size), inodes_used=pb.UInt64Value(value=inodes))
        return pb.ContainerStats(attributes=attributes, cpu=cpu, memory=mem, writable_layer=layer)

    @staticmethod
    def network(pid: int) -> pb.NetworkUsage:
        """The pod's interfaces, from /proc/<infra pid>/net/dev (eth0 the default)."""
        now = time.time_ns()
        out = pb.NetworkUsage(timestamp=now)
        try:
            with open(f"/proc/{pid}/net/dev") as f:
                lines = f.readlines()[2:]
        except OSError:
            return out
        for line in lines:
            name, _, rest = line.partition(":")
            name, v = name.strip(), rest.split()
            if name == "lo" or len(v) < 11:
                continue
            iface = pb.NetworkInterfaceUsage(name=name, rx_bytes=pb.UInt64Value(value=int(v[0])),
                                             rx_errors=pb.UInt64Value(value=int(v[2])),
                                             tx_bytes=pb.UInt64Value(value=int(v[8])),
                                             tx_errors=pb.UInt64Value(value=int(v[10])))
            out.interfaces.append(iface)
            if name == "eth0":
                out.default_interface.CopyFrom(iface)
        return out


def dir_usage(path: str) -> tuple[int, int]:
    """Bytes and inodes under ``path`` (ImageFsInfo, run in a thread)."""
    size = inodes = 0
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            size += st.st_blocks * 512
            inodes += 1
    return size, inodes
