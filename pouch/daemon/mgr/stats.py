"""Container resource usage read from the host's cgroup files, in Moby's stats shape."""
from __future__ import annotations

import os
import time


def _read_int(path: str) -> int:
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _read_kv(path: str) -> dict[str, int]:
    out = {}
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(" ")
                if v.strip().isdigit():
                    out[k] = int(v)
    except OSError:
        pass
    return out


class StatsCollector:
    def __init__(self, cgroup_root: str = "/sys/fs/cgroup", cgroup_parent: str = "default") -> None:
        self.root = cgroup_root
        self.parent = cgroup_parent
        self.v2 = not os.path.isdir(os.path.join(cgroup_root, "memory"))

    def _path(self, controller: str, c) -> str:
        from .spec import cgroups_path_of
        rel = cgroups_path_of(c.id, c.host_config, self.parent).lstrip("/")
        if self.v2:
            return os.path.join(self.root, rel)
        return os.path.join(self.root, controller, rel)

    def _system_cpu(self) -> int:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:8]
        return sum(int(x) for x in fields) * (1_000_000_000 // os.sysconf("SC_CLK_TCK"))

    async def snapshot(self, c) -> dict:
        cid = c.id
        now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000000000Z"
        if self.v2:
            p = self._path("", c)
            mem_usage = _read_int(os.path.join(p, "memory.current"))
            limit_raw = open(os.path.join(p, "memory.max")).read().strip() if os.path.exists(
                os.path.join(p, "memory.max")) else "max"
            mem_limit = int(limit_raw) if limit_raw.isdigit() else 0
            cpu_total = _read_kv(os.path.join(p, "cpu.stat")).get("usage_usec", 0) * 1000
            pids = _read_int(os.path.join(p, "pids.current"))
            mem_stats = _read_kv(os.path.join(p, "memory.stat"))
        else:
            mp = self._path("memory", c)
            mem_usage = _read_int(os.path.join(mp, "memory.usage_in_bytes"))
            mem_limit = _read_int(os.path.join(mp, "memory.limit_in_bytes"))
            cpu_total = _read_int(os.path.join(self._path("cpuacct", c), "cpuacct.usage"))
            pids = _read_int(os.path.join(self._path("pids", c), "pids.current"))
            mem_stats = _read_kv(os.path.join(mp, "memory.stat"))
        host_mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if not mem_limit or mem_limit > host_mem:
            mem_limit = host_mem
        ncpu = os.cpu_count() or 1
        return {
            "read": now, "preread": "0001-01-01T00:00:00Z", "id": cid, "name": "/" + c.name,
            "pids_stats": {"current": pids},
            "cpu_stats": {"cpu_usage": {"total_usage": cpu_total, "usage_in_kernelmode": 0,
                                        "usage_in_usermode": 0},
                          "system_cpu_usage": self._system_cpu(), "online_cpus": ncpu,
                          "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
            "precpu_stats": {"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0, "online_cpus": ncpu,
                             "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
            "memory_stats": {"usage": mem_usage, "limit": mem_limit, "stats": mem_stats},
            "blkio_stats": {}, "num_procs": 0, "storage_stats": {}, "networks": {},
        }
