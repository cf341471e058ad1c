"""Security settings of a spec: masked/readonly paths, sysctls, ulimits, oom_score_adj, devices."""
import os
import resource
import stat

from . import caps as capmod
from .errors import InvalidOciConfig, MissingPrivilege

MASKED_PATHS = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                "/sys/firmware", "/sys/devices/virtual/powercap"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

_NS_SYSCTLS = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
               "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}
_NS_SYSCTL_PREFIXES = ("fs.mqueue.", "net.")

RLIMITS = {"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
           "rss", "rtprio", "rttime", "sigpending", "stack", "as"}
_UNLIMITED = resource.RLIM_INFINITY


def masked_paths(privileged: bool = False) -> list:
    return [] if privileged else list(MASKED_PATHS)


def readonly_paths(privileged: bool = False) -> list:
    return [] if privileged else list(READONLY_PATHS)


def validate_sysctls(sysctls: dict, host_network: bool = False) -> dict:
    """Only namespaced sysctls may be set (net.* not with --net=host); returns {key: str(value)}."""
    out = {}
    for key, value in (sysctls or {}).items():
        namespaced = key in _NS_SYSCTLS or key.startswith(_NS_SYSCTL_PREFIXES)
        if not namespaced:
            raise InvalidOciConfig(f"sysctl {key!r} is not namespaced and cannot be set in a container")
        if host_network and key.startswith("net."):
            raise InvalidOciConfig(f"sysctl {key!r} cannot be set with the host network")
        out[key] = str(value)
    return out


def _limit(text) -> int:
    if str(text) in ("-1", "unlimited"):
        return _UNLIMITED
    try:
        v = int(text)
    except ValueError:
        raise InvalidOciConfig(f"invalid ulimit value {text!r}") from None
    if v < 0:
        raise InvalidOciConfig(f"invalid ulimit value {text!r}")
    return v


def parse_ulimit(text: str) -> dict:
    """'nofile=1024[:2048]' -> {'Name': 'nofile', 'Soft': 1024, 'Hard': 2048} (Moby's Ulimit)."""
    name, sep, values = str(text).partition("=")
    if not sep or not values:
        raise InvalidOciConfig(f"invalid ulimit {text!r}: expected name=soft[:hard]")
    soft, _, hard = values.partition(":")
    return {"Name": name.strip().lower(), "Soft": _limit(soft), "Hard": _limit(hard or soft)}


def _host_hard(name: str) -> int:
    return resource.getrlimit(getattr(resource, "RLIMIT_" + name.upper()))[1]


def rlimits(ulimits, held=None) -> list:
    """Moby Ulimits [{Name, Soft, Hard}] -> OCI process.rlimits, checked against the host.

    Raising a hard limit above pouchd's own needs CAP_SYS_RESOURCE; without it the request is
    refused naming the privilege (instead of a cryptic runc failure).
    """
    held = set(capmod.held_capabilities() if held is None else held)
    out = []
    for u in ulimits or []:
        name = str(u.get("Name", "")).lower()
        if name not in RLIMITS:
            raise InvalidOciConfig(f"invalid ulimit name {u.get('Name')!r}")
        soft, hard = int(u.get("Soft", 0)), int(u.get("Hard", 0))
        soft = _UNLIMITED if soft < 0 else soft
        hard = _UNLIMITED if hard < 0 else hard
        if soft > hard:
            raise InvalidOciConfig(f"ulimit {name}: soft limit {soft} is greater than hard limit {hard}")
        host = _host_hard(name)
        if host != _UNLIMITED and hard > host and "CAP_SYS_RESOURCE" not in held:
            raise MissingPrivilege(f"ulimit {name}: hard limit {hard} exceeds the host's {host} and raising "
                                   f"it needs CAP_SYS_RESOURCE, which pouchd does not hold")
        out.append({"type": "RLIMIT_" + name.upper(), "soft": soft, "hard": hard})
    return out


def oom_score_adj(value, held=None) -> int | None:
    """Validate --oom-score-adj: -1000..1000; a negative value needs CAP_SYS_RESOURCE."""
    if value in (None, ""):
        return None
    v = int(value)
    if not -1000 <= v <= 1000:
        raise InvalidOciConfig(f"invalid oom-score-adj {v}: must be between -1000 and 1000")
    held = set(capmod.held_capabilities() if held is None else held)
    if v < 0 and "CAP_SYS_RESOURCE" not in held:
        raise MissingPrivilege(f"oom-score-adj {v}: a negative value needs CAP_SYS_RESOURCE, "
                               f"which pouchd does not hold")
    return v


# -------- devices --------
def _rule(allow, typ, major, minor, access):
    r = {"allow": allow, "type": typ, "access": access}
    if major is not None:
        r["major"] = major
    if minor is not None:
        r["minor"] = minor
    return r


def default_device_rules() -> list:
    """Device cgroup allow-list: deny all, allow mknod of any, and the usual character devices."""
    return [_rule(False, "a", None, None, "rwm"),
            _rule(True, "c", None, None, "m"), _rule(True, "b", None, None, "m"),
            _rule(True, "c", 1, 3, "rwm"), _rule(True, "c", 1, 5, "rwm"), _rule(True, "c", 1, 7, "rwm"),
            _rule(True, "c", 1, 8, "rwm"), _rule(True, "c", 1, 9, "rwm"), _rule(True, "c", 5, 0, "rwm"),
            _rule(True, "c", 5, 1, "rwm"), _rule(True, "c", 5, 2, "rwm"), _rule(True, "c", 136, None, "rwm"),
            _rule(True, "c", 10, 200, "rwm")]


def device_info(path: str) -> tuple:
    """Stat a host device -> (type 'c'|'b', major, minor, mode); InvalidOciConfig if not a device."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise InvalidOciConfig(f"device {path}: {e.strerror}") from None
    if stat.S_ISCHR(st.st_mode):
        typ = "c"
    elif stat.S_ISBLK(st.st_mode):
        typ = "b"
    else:
        raise InvalidOciConfig(f"{path} is not a device")
    return typ, os.major(st.st_rdev), os.minor(st.st_rdev), stat.S_IMODE(st.st_mode)


def parse_device(text: str) -> dict:
    """'--device /dev/x[:/dev/y[:rwm]]' -> Moby {PathOnHost, PathInContainer, CgroupPermissions}."""
    parts = str(text).split(":")
    if not parts[0] or len(parts) > 3:
        raise InvalidOciConfig(f"invalid device {text!r}")
    host, inside, perms = parts[0], parts[0], "rwm"
    if len(parts) == 2:
        if set(parts[1]) <= set("rwm") and parts[1]:
            perms = parts[1]
        else:
            inside = parts[1]
    elif len(parts) == 3:
        inside, perms = parts[1], parts[2]
    if not perms or not set(perms) <= set("rwm"):
        raise InvalidOciConfig(f"invalid device permissions {perms!r} in {text!r}")
    if not inside.startswith("/"):
        raise InvalidOciConfig(f"invalid device path {inside!r}: must be absolute")
    return {"PathOnHost": host, "PathInContainer": inside, "CgroupPermissions": perms}


def devices(moby_devices) -> tuple:
    """Moby Devices -> (OCI linux.devices, cgroup allow rules), stating each host device."""
    spec, rules = [], []
    for d in moby_devices or []:
        typ, major, minor, mode = device_info(d["PathOnHost"])
        spec.append({"path": d.get("PathInContainer") or d["PathOnHost"], "type": typ, "major": major,
                     "minor": minor, "fileMode": mode, "uid": 0, "gid": 0})
        rules.append(_rule(True, typ, major, minor, d.get("CgroupPermissions") or "rwm"))
    return spec, rules


def privileged_devices() -> tuple:
    """Every device node under /dev (for --privileged) and an allow-all cgroup rule."""
    found = []
    for root, dirs, files in os.walk("/dev"):
        dirs[:] = [d for d in dirs if d not in ("pts", "shm", "mqueue")]
        for f in files:
            p = os.path.join(root, f)
            if p in ("/dev/console", "/dev/ptmx") or os.path.islink(p):
                continue
            try:
                typ, major, minor, mode = device_info(p)
            except InvalidOciConfig:
                continue
            found.append({"path": p, "type": typ, "major": major, "minor": minor, "fileMode": mode,
                          "uid": 0, "gid": 0})
    return found, [_rule(True, "a", None, None, "rwm")]


def parse_security_opts(opts) -> dict:
    """['seccomp=FILE', 'no-new-privileges', 'apparmor=P', 'label=...'] -> dict of settings."""
    out = {"seccomp": None, "no_new_privileges": False, "apparmor": None, "label": []}
    for opt in opts or []:
        key, sep, value = str(opt).partition("=")
        if not sep:
            key, sep, value = str(opt).partition(":")
        key = key.strip()
        if key == "no-new-privileges":
            if value in ("", "true", "1"):
                out["no_new_privileges"] = True
            elif value in ("false", "0"):
                out["no_new_privileges"] = False
            else:
                raise InvalidOciConfig(f"invalid no-new-privileges value {value!r}")
        elif key in ("seccomp", "apparmor") and value:
            out[key] = value
        elif key == "label" and value:
            out["label"].append(value)
        else:
            raise InvalidOciConfig(f"invalid security-opt {opt!r}")
    return out
