"""Capabilities: the default set, --cap-add/--cap-drop, and what --privileged may grant here."""
from .errors import InvalidOciConfig, MissingPrivilege

# Linux capability numbers (include/uapi/linux/capability.h)
CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]

DEFAULT_CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]


def held_capabilities(status_path: str = "/proc/self/status") -> list:
    """Capabilities this process can hand to a container: CapEff & CapBnd, as names."""
    masks = {}
    with open(status_path) as f:
        for line in f:
            key, _, val = line.partition(":")
            if key in ("CapEff", "CapBnd"):
                masks[key] = int(val.strip(), 16)
    mask = masks.get("CapEff", 0) & masks.get("CapBnd", 0)
    return [name for bit, name in enumerate(CAPABILITIES) if mask >> bit & 1]


def normalize(name: str) -> str:
    """'net_admin' / 'CAP_NET_ADMIN' / 'all' -> 'CAP_NET_ADMIN' / 'ALL'; unknown -> InvalidOciConfig."""
    up = str(name).strip().upper()
    if up == "ALL":
        return "ALL"
    if not up.startswith("CAP_"):
        up = "CAP_" + up
    if up not in CAPABILITIES:
        raise InvalidOciConfig(f"unknown capability: {name!r}")
    return up


def compute(cap_add=None, cap_drop=None, privileged: bool = False, held=None) -> list:
    """The container's capability list (sorted by number).

    privileged -> every cap pouchd holds. Otherwise the default set (less what the host
    withholds), plus cap_add, minus cap_drop; ALL works on both sides (drop ALL + add X = X).
    An explicit cap_add the host withholds is a MissingPrivilege error.
    """
    held = set(held_capabilities() if held is None else held)
    if privileged:
        return [c for c in CAPABILITIES if c in held]
    add = {normalize(c) for c in cap_add or []}
    drop = {normalize(c) for c in cap_drop or []}
    if "ALL" in drop:
        caps = set()
    else:
        caps = {c for c in DEFAULT_CAPABILITIES if c in held}
    if "ALL" in add:
        caps |= held
        add.discard("ALL")
    for c in add:
        if c not in held:
            raise MissingPrivilege(f"cannot add {c}: pouchd itself does not hold it on this host")
        caps.add(c)
    caps -= drop - add
    return [c for c in CAPABILITIES if c in caps]


def oci_capabilities(caps: list) -> dict:
    """OCI `process.capabilities` for a capability list (no inheritable/ambient, like containerd)."""
    return {"bounding": list(caps), "effective": list(caps), "permitted": list(caps)}
