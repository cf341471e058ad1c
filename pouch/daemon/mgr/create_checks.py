"""Create-time checks and amendments of a container's config as Pouch makes them: env entries
validated (a bare ``KEY`` is kept, an empty key refused), blanks around ``-v`` binds and ``-w``
trimmed, device cgroup permissions limited to ``rwm``, and MemorySwap defaulting to twice Memory
when only ``-m`` is given (where the kernel accounts swap)."""
from __future__ import annotations

import os

from pouch.errtypes import InvalidArgument

from .update import env_entries


def _swap_accounted() -> bool:
    from pouch.oci.cgroups import detect_mode
    from pouch.oci.resources import CGROUP_ROOT
    return detect_mode() == "v2" or os.path.exists(f"{CGROUP_ROOT}/memory/memory.memsw.limit_in_bytes")


def amend(config: dict, host: dict) -> None:
    """Validate and amend ``config`` / ``host`` in place (InvalidArgument: nothing is created)."""
    if config.get("Env") is not None:
        config["Env"] = env_entries(config.get("Env"), "Env")
    if isinstance(config.get("WorkingDir"), str):
        config["WorkingDir"] = config["WorkingDir"].strip()
    binds = host.get("Binds")
    if isinstance(binds, list):
        host["Binds"] = [b.strip() if isinstance(b, str) else b for b in binds]
        if any(isinstance(b, str) and not b for b in host["Binds"]):
            raise InvalidArgument("invalid bind: empty volume spec")
    for d in host.get("Devices") or []:
        if not isinstance(d, dict):
            continue
        mode = d.get("CgroupPermissions")
        if mode is not None and (not isinstance(mode, str) or not mode or set(mode) - set("rwm")
                                 or len(set(mode)) != len(mode)):
            raise InvalidArgument(f"invalid device mode {mode!r} for {d.get('PathOnHost')}: "
                                  f"want a combination of r, w and m")
    memory = host.get("Memory") or 0
    if isinstance(memory, int) and memory > 0 and not host.get("MemorySwap") and _swap_accounted():
        host["MemorySwap"] = 2 * memory


def ensure_mtab(layer_dirs: list[str]) -> None:
    """/etc/mtab -> /proc/mounts in the container's writable layer unless the image has one
    (Docker's and Pouch's init layer does the same: mount(8) and df read it)."""
    if not layer_dirs or any(os.path.lexists(os.path.join(d, "etc", "mtab")) for d in layer_dirs):
        return
    etc = os.path.join(layer_dirs[0], "etc")
    # owner and mode of the image's /etc (the remapped root's with --userns-remap), else of its /
    ref = next((os.path.join(d, "etc") for d in layer_dirs[1:] if os.path.isdir(os.path.join(d, "etc"))),
               None) or next((d for d in layer_dirs[1:] if os.path.isdir(d)), layer_dirs[0])
    st = os.stat(ref)
    if not os.path.isdir(etc):
        os.mkdir(etc, 0o755)
        os.chown(etc, st.st_uid, st.st_gid)
        os.chmod(etc, st.st_mode & 0o7777 if ref.endswith("/etc") else 0o755)
    mtab = os.path.join(etc, "mtab")
    try:
        os.symlink("/proc/mounts", mtab)
    except FileExistsError:
        return
    os.lchown(mtab, st.st_uid, st.st_gid)
