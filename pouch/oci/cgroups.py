"""cgroup layout of this host: v1 / v2 / hybrid, and cgroupsPath forms of the two drivers."""
import functools
import os

from .errors import InvalidOciConfig

CGROUP_ROOT = "/sys/fs/cgroup"


def detect_mode(root: str = CGROUP_ROOT) -> str:
    """'v2' (unified at root), 'hybrid' (v1 controllers + unified/), or 'v1'."""
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return "v2"
    if os.path.exists(os.path.join(root, "unified", "cgroup.procs")):
        return "hybrid"
    return "v1"


def detect_driver() -> str:
    """'systemd' when systemd is PID 1 (/run/systemd/system exists), else 'cgroupfs'."""
    return "systemd" if os.path.isdir("/run/systemd/system") else "cgroupfs"


def cgroups_path(container_id: str, driver: str = "cgroupfs", parent: str | None = None) -> str:
    """OCI linux.cgroupsPath: cgroupfs '/pouch/<id>', systemd 'system.slice:pouch:<id>'."""
    if driver == "systemd":
        return f"{parent or 'system.slice'}:pouch:{container_id}"
    if driver == "cgroupfs":
        return os.path.join(parent or "/pouch", container_id)
    raise InvalidOciConfig(f"unknown cgroup driver {driver!r}: use cgroupfs or systemd")


def relative_dir(path: str) -> str:
    """cgroupsPath -> directory relative to a hierarchy root ('system.slice:pouch:x' -> system.slice/pouch-x.scope)."""
    if ":" in path:
        slice_, prefix, name = path.split(":", 2)
        parts = []
        # nested slices: a-b.slice lives in a.slice/a-b.slice
        if slice_ not in ("", "-.slice"):
            stem = slice_[:-len(".slice")]
            acc = []
            for piece in stem.split("-"):
                acc.append(piece)
                parts.append("-".join(acc) + ".slice")
        parts.append(f"{prefix}-{name}.scope")
        return "/".join(parts)
    return path.lstrip("/")


def controller_dir(controller: str, path: str, root: str = CGROUP_ROOT, mode: str | None = None) -> str:
    """Host directory of a container's cgroup for `controller` (ignored on v2)."""
    mode = mode or detect_mode(root)
    rel = relative_dir(path)
    if mode == "v2":
        return os.path.join(root, rel)
    return os.path.join(root, controller, rel)


def bind_free_v1_controllers(root: str = CGROUP_ROOT) -> list[str]:
    """Hybrid hosts: give v1 hierarchies to controllers the unified tree offers but nobody uses.

    Runtimes such as crun refuse a hybrid host whose cgroup v2 tree still offers controllers
    ("drop all controllers from cgroupv2"); a controller that v2 lists but has not enabled
    in any subtree can be bound to its own v1 hierarchy, as systemd does on hybrid hosts.
    Returns the controllers bound.
    """
    if detect_mode(root) != "hybrid":
        return []
    unified = os.path.join(root, "unified")
    try:
        with open(os.path.join(unified, "cgroup.controllers")) as f:
            offered = f.read().split()
        with open(os.path.join(unified, "cgroup.subtree_control")) as f:
            enabled = set(f.read().split())
    except OSError:
        return []
    import subprocess
    bound = []
    for ctrl in offered:
        if ctrl in enabled:
            continue
        target = os.path.join(root, ctrl)
        os.makedirs(target, exist_ok=True)
        r = subprocess.run(["mount", "-t", "cgroup", "-o", ctrl, "cgroup", target], capture_output=True)
        if r.returncode == 0:
            bound.append(ctrl)
    return bound


@functools.lru_cache(maxsize=None)
def kernel_memory_supported(root: str = CGROUP_ROOT) -> bool:
    """True when a v1 kernel-memory limit really takes effect.

    Linux >= 6.1 keeps memory.kmem.limit_in_bytes but ignores writes to it, so the file's
    presence proves nothing: write a limit into a scratch cgroup and read it back.
    """
    mem = os.path.join(root, "memory")
    if detect_mode(root) == "v2" or not os.path.exists(os.path.join(mem, "memory.kmem.limit_in_bytes")):
        return False
    probe = os.path.join(mem, f"pouch-kmem-probe-{os.getpid()}")
    want = 64 * 1024 * 1024
    try:
        os.makedirs(probe, exist_ok=True)
        with open(os.path.join(probe, "memory.kmem.limit_in_bytes"), "w") as f:
            f.write(str(want))
        with open(os.path.join(probe, "memory.kmem.limit_in_bytes")) as f:
            return int(f.read().strip()) == want
    except (OSError, ValueError):
        return False
    finally:
        try:
            os.rmdir(probe)
        except OSError:
            pass


def blkio_weight_file(root: str = CGROUP_ROOT) -> str | None:
    """The file a v1 blkio weight goes to (blkio.weight, or blkio.bfq.weight with BFQ), None if neither;
    on v2 'io.weight' when the io controller is offered."""
    if detect_mode(root) == "v2":
        try:
            with open(os.path.join(root, "cgroup.controllers")) as f:
                return "io.weight" if "io" in f.read().split() else None
        except OSError:
            return None
    for name in ("blkio.weight", "blkio.bfq.weight"):
        if os.path.exists(os.path.join(root, "blkio", name)):
            return name
    return None
