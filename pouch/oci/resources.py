"""Resources: Moby HostConfig -> OCI linux.resources (validated), and live cgroup updates/reads."""
import os

from .cgroups import CGROUP_ROOT, blkio_weight_file, controller_dir, detect_mode, kernel_memory_supported
from .errors import CgroupNotFound, InvalidOciConfig, OciError
from .security import device_info

MIN_MEMORY = 4 * 1024 * 1024
_THROTTLE = {"BlkioDeviceReadBps": "throttleReadBpsDevice", "BlkioDeviceWriteBps": "throttleWriteBpsDevice",
             "BlkioDeviceReadIOps": "throttleReadIOPSDevice", "BlkioDeviceWriteIOps": "throttleWriteIOPSDevice"}


def host_cpus() -> int:
    return len(os.sched_getaffinity(0))


def _parse_cpuset(text: str) -> set:
    out = set()
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                a, b = part.split("-", 1)
                if int(a) > int(b):
                    raise ValueError
                out.update(range(int(a), int(b) + 1))
            else:
                out.add(int(part))
        except ValueError:
            raise InvalidOciConfig(f"invalid cpuset {text!r}") from None
    return out


def _available(kind: str) -> set:
    for p in (f"{CGROUP_ROOT}/cpuset/cpuset.{kind}", f"{CGROUP_ROOT}/cpuset.{kind}.effective",
              f"/sys/devices/system/{'cpu' if kind == 'cpus' else 'node'}/online"):
        try:
            with open(p) as f:
                text = f.read().strip()
            if text:
                return _parse_cpuset(text)
        except OSError:
            continue
    return set(os.sched_getaffinity(0)) if kind == "cpus" else {0}


def _g(hc: dict, key: str):
    v = hc.get(key)
    return v if v not in (None, "") else None


def build(hc: dict) -> tuple:
    """Moby HostConfig resource fields -> (OCI linux.resources dict, warnings). Invalid -> InvalidOciConfig."""
    res, warnings = {}, []
    mem = {}
    memory = _g(hc, "Memory") or 0
    if memory:
        if memory < MIN_MEMORY:
            raise InvalidOciConfig("minimum memory limit allowed is 4MiB")
        mem["limit"] = int(memory)
    swap = _g(hc, "MemorySwap") or 0
    if swap:
        if swap > 0 and not memory:
            raise InvalidOciConfig("you should always set the memory limit when using the memory-swap limit")
        if swap > 0 and swap < memory:
            raise InvalidOciConfig("minimum memory-swap limit should be larger than memory limit")
        if swap > 0 and not os.path.exists(f"{CGROUP_ROOT}/memory/memory.memsw.limit_in_bytes") \
                and detect_mode() != "v2":
            warnings.append("this kernel has no swap accounting: memory-swap is ignored")
        else:
            mem["swap"] = int(swap)
    reservation = _g(hc, "MemoryReservation") or 0
    if reservation:
        if reservation < MIN_MEMORY:
            raise InvalidOciConfig("minimum memory reservation allowed is 4MiB")
        if memory and reservation > memory:
            raise InvalidOciConfig("minimum memory limit can not be less than memory reservation limit")
        mem["reservation"] = int(reservation)
    kmem = _g(hc, "KernelMemory") or 0
    if kmem:
        if kmem < MIN_MEMORY:
            raise InvalidOciConfig("minimum kernel memory limit allowed is 4MiB")
        if not kernel_memory_supported():
            raise InvalidOciConfig(f"kernel-memory: this kernel ({os.uname().release}) does not enforce kernel "
                                   f"memory limits (memory.kmem.limit_in_bytes is gone or a no-op since Linux 6.1)")
        mem["kernel"] = int(kmem)
    swappiness = _g(hc, "MemorySwappiness")
    if swappiness is not None and swappiness != -1:
        if not 0 <= swappiness <= 100:
            raise InvalidOciConfig(f"invalid memory swappiness {swappiness}: must be between 0 and 100")
        mem["swappiness"] = int(swappiness)
    if hc.get("OomKillDisable"):
        if not memory:
            warnings.append("disabling the OOM killer without a memory limit may hang the host")
        mem["disableOOMKiller"] = True
    if mem:
        res["memory"] = mem

    cpu = {}
    nano, quota, period = _g(hc, "NanoCpus") or 0, _g(hc, "CpuQuota") or 0, _g(hc, "CpuPeriod") or 0
    if nano and (quota or period):
        raise InvalidOciConfig("conflicting options: --cpus cannot be used with --cpu-quota or --cpu-period")
    if nano:
        if nano < 0 or nano > host_cpus() * 10 ** 9:
            raise InvalidOciConfig(f"range of CPUs is from 0.01 to {host_cpus()}.00, as there are only "
                                   f"{host_cpus()} CPUs available")
        cpu["period"] = 100000
        cpu["quota"] = nano * 100000 // 10 ** 9
    if period:
        if not 1000 <= period <= 1000000:
            raise InvalidOciConfig("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s")
        cpu["period"] = int(period)
    if quota:
        if 0 < quota < 1000:
            raise InvalidOciConfig("CPU cfs quota can not be less than 1ms (i.e. 1000)")
        cpu["quota"] = int(quota)
    shares = _g(hc, "CpuShares") or 0
    if shares:
        if shares < 2 or shares > 262144:
            raise InvalidOciConfig(f"invalid cpu-shares {shares}: must be between 2 and 262144")
        cpu["shares"] = int(shares)
    for key, field, kind in (("CpusetCpus", "cpus", "cpus"), ("CpusetMems", "mems", "mems")):
        value = _g(hc, key)
        if value:
            wanted, avail = _parse_cpuset(value), _available(kind)
            if not wanted <= avail:
                raise InvalidOciConfig(f"requested {kind} {value} are not available: "
                                       f"only {','.join(map(str, sorted(avail)))}")
            cpu[field] = value
    if cpu:
        res["cpu"] = cpu

    blkio = {}
    weight = _g(hc, "BlkioWeight") or 0
    if weight:
        if not 10 <= weight <= 1000:
            raise InvalidOciConfig(f"invalid blkio weight {weight}: must be between 10 and 1000")
        if blkio_weight_file() is None:
            raise InvalidOciConfig("blkio-weight: this kernel has no blkio weight (neither blkio.weight nor "
                                   "blkio.bfq.weight: the CFQ/BFQ I/O scheduler is not available)")
        blkio["weight"] = int(weight)
    for key, field in _THROTTLE.items():
        entries = []
        for d in hc.get(key) or []:
            typ, major, minor, _ = device_info(d["Path"])
            if typ != "b":
                raise InvalidOciConfig(f"{d['Path']} is not a block device")
            rate = int(d["Rate"])
            if rate < 0:
                raise InvalidOciConfig(f"invalid rate {rate} for {d['Path']}")
            entries.append({"major": major, "minor": minor, "rate": rate})
        if entries:
            blkio[field] = entries
    if blkio:
        res["blockIO"] = blkio
    pids = _g(hc, "PidsLimit")
    if pids is not None and pids > 0:
        res["pids"] = {"limit": int(pids)}
    return res, warnings


# -------- live update / read (cgroup files) --------
def _write(path: str, value) -> None:
    try:
        with open(path, "w") as f:
            f.write(str(value))
    except FileNotFoundError:
        raise CgroupNotFound(f"cgroup file {path} does not exist") from None
    except OSError as e:
        raise OciError(f"writing {value} to {path}: {e.strerror}") from None


def _read(path: str):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _shares_to_weight(shares: int) -> int:
    return 1 + ((shares - 2) * 9999) // 262142


def update_cgroup(cgroups_path: str, resources: dict, root: str = CGROUP_ROOT) -> None:
    """Write OCI linux.resources values straight into a running container's cgroup files."""
    mode = detect_mode(root)
    d = lambda c: controller_dir(c, cgroups_path, root, "v2" if mode == "v2" else "v1")  # noqa: E731
    if not os.path.isdir(d("memory")):
        raise CgroupNotFound(f"no cgroup {cgroups_path}: is the container running?")
    mem, cpu, blk, pids = (resources.get(k) or {} for k in ("memory", "cpu", "blockIO", "pids"))
    if mode != "v2":
        m = d("memory")
        if "limit" in mem:
            memsw = os.path.join(m, "memory.memsw.limit_in_bytes")
            swap = mem.get("swap")
            cur = int(_read(os.path.join(m, "memory.limit_in_bytes")) or 0)
            # limit <= memsw at all times: raise memsw first when growing, limit first when shrinking
            if swap and os.path.exists(memsw) and mem["limit"] > cur:
                _write(memsw, swap if swap > 0 else -1)
                _write(os.path.join(m, "memory.limit_in_bytes"), mem["limit"])
            else:
                _write(os.path.join(m, "memory.limit_in_bytes"), mem["limit"])
                if swap and os.path.exists(memsw):
                    _write(memsw, swap if swap > 0 else -1)
        if "reservation" in mem:
            _write(os.path.join(m, "memory.soft_limit_in_bytes"), mem["reservation"])
        if "swappiness" in mem:
            _write(os.path.join(m, "memory.swappiness"), mem["swappiness"])
        if "disableOOMKiller" in mem:
            _write(os.path.join(m, "memory.oom_control"), 1 if mem["disableOOMKiller"] else 0)
        c = d("cpu")
        if "shares" in cpu:
            _write(os.path.join(c, "cpu.shares"), cpu["shares"])
        if "period" in cpu:
            _write(os.path.join(c, "cpu.cfs_period_us"), cpu["period"])
        if "quota" in cpu:
            _write(os.path.join(c, "cpu.cfs_quota_us"), cpu["quota"])
        for k in ("cpus", "mems"):
            if k in cpu:
                _write(os.path.join(d("cpuset"), f"cpuset.{k}"), cpu[k])
        b = d("blkio")
        if "weight" in blk:
            f = os.path.join(b, "blkio.weight")
            _write(f if os.path.exists(f) else os.path.join(b, "blkio.bfq.weight"), blk["weight"])
        for field, fname in (("throttleReadBpsDevice", "read_bps_device"), ("throttleWriteBpsDevice", "write_bps_device"),
                             ("throttleReadIOPSDevice", "read_iops_device"), ("throttleWriteIOPSDevice", "write_iops_device")):
            for e in blk.get(field) or []:
                _write(os.path.join(b, f"blkio.throttle.{fname}"), f"{e['major']}:{e['minor']} {e['rate']}")
        if "limit" in pids:
            _write(os.path.join(d("pids"), "pids.max"), pids["limit"] if pids["limit"] > 0 else "max")
        return
    u = d("memory")
    if "limit" in mem:
        _write(os.path.join(u, "memory.max"), mem["limit"])
        if mem.get("swap"):
            _write(os.path.join(u, "memory.swap.max"), "max" if mem["swap"] < 0 else mem["swap"] - mem["limit"])
    if "reservation" in mem:
        _write(os.path.join(u, "memory.low"), mem["reservation"])
    if "shares" in cpu:
        _write(os.path.join(u, "cpu.weight"), _shares_to_weight(cpu["shares"]))
    if "quota" in cpu or "period" in cpu:
        q = cpu.get("quota")
        _write(os.path.join(u, "cpu.max"), f"{'max' if not q or q < 0 else q} {cpu.get('period', 100000)}")
    for k in ("cpus", "mems"):
        if k in cpu:
            _write(os.path.join(u, f"cpuset.{k}"), cpu[k])
    if "weight" in blk:
        _write(os.path.join(u, "io.weight"), f"default {blk['weight']}")
    for field, key in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                       ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops")):
        for e in blk.get(field) or []:
            _write(os.path.join(u, "io.max"), f"{e['major']}:{e['minor']} {key}={e['rate']}")
    if "limit" in pids:
        _write(os.path.join(u, "pids.max"), pids["limit"] if pids["limit"] > 0 else "max")


def update_throttles(cgroups_path: str, resources: dict, root: str = CGROUP_ROOT) -> None:
    """Write the block-I/O throttles of OCI `resources` into a running container's cgroup.

    `runc update` (hence containerd's Tasks.Update) leaves device throttles as they were at
    create time, so `pouch update --device-read-bps ...` writes them itself, after the runtime.
    """
    blk = resources.get("blockIO") or {}
    sub = {k: blk[k] for k in _THROTTLE.values() if blk.get(k)}
    if sub:
        update_cgroup(cgroups_path, {"blockIO": sub}, root)


def read_cgroup_values(cgroups_path: str, root: str = CGROUP_ROOT) -> dict:
    """The container's current limits read back from the host's cgroup files (None when absent)."""
    mode = detect_mode(root)
    if mode == "v2":
        u = controller_dir("", cgroups_path, root, "v2")
        files = {"memory": "memory.max", "memory_reservation": "memory.low", "memory_swap": "memory.swap.max",
                 "cpu_max": "cpu.max", "cpu_weight": "cpu.weight", "cpuset_cpus": "cpuset.cpus",
                 "cpuset_mems": "cpuset.mems", "io_max": "io.max", "pids_max": "pids.max"}
        return {k: _read(os.path.join(u, f)) for k, f in files.items()}
    d = lambda c: controller_dir(c, cgroups_path, root, "v1")  # noqa: E731
    files = {"memory": ("memory", "memory.limit_in_bytes"),
             "memory_reservation": ("memory", "memory.soft_limit_in_bytes"),
             "memory_swap": ("memory", "memory.memsw.limit_in_bytes"),
             "memory_swappiness": ("memory", "memory.swappiness"),
             "oom_control": ("memory", "memory.oom_control"),
             "cpu_shares": ("cpu", "cpu.shares"), "cpu_quota": ("cpu", "cpu.cfs_quota_us"),
             "cpu_period": ("cpu", "cpu.cfs_period_us"), "cpuset_cpus": ("cpuset", "cpuset.cpus"),
             "cpuset_mems": ("cpuset", "cpuset.mems"),
             "blkio_weight": ("blkio", blkio_weight_file(root) or "blkio.weight"),
             "blkio_read_bps": ("blkio", "blkio.throttle.read_bps_device"),
             "blkio_write_bps": ("blkio", "blkio.throttle.write_bps_device"),
             "blkio_read_iops": ("blkio", "blkio.throttle.read_iops_device"),
             "blkio_write_iops": ("blkio", "blkio.throttle.write_iops_device"),
             "pids_max": ("pids", "pids.max")}
    return {k: _read(os.path.join(d(c), f)) for k, (c, f) in files.items()}
