"""Build a container's OCI runtime spec from its Moby config, host config and image.

The base spec matches what Docker and containerd give a container (the
namespaces, /proc, /dev, /sys mounts, default capabilities, masked kernel
paths); security options and resource limits are layered on by the
``pouch.oci`` helpers when present.
"""
from __future__ import annotations

import os
import signal as _signal

from pouch import rich
from pouch.errtypes import InvalidArgument
from pouch.oci.apply import apply_resources, apply_security

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
INIT_BINARY = "/usr/bin/tini-static"
INIT_PATH = "/sbin/docker-init"

def signal_number(sig: str | int | None, default: int = _signal.SIGTERM) -> int:
    if sig in (None, ""):
        return int(default)
    if isinstance(sig, int) or str(sig).isdigit():
        n = int(sig)
    else:
        name = str(sig).upper()
        if not name.startswith("SIG"):
            name = "SIG" + name
        base, plus, offset = name.partition("+")  # SIGRTMIN+3, as Docker and systemd write it
        base, minus, back = base.partition("-") if not plus else (base, "", "")
        try:
            n = int(getattr(_signal, base))
            if plus or minus:
                if base not in ("SIGRTMIN", "SIGRTMAX"):
                    raise ValueError
                n = n + int(offset) if plus else n - int(back)
        except (AttributeError, ValueError):
            raise InvalidArgument(f"invalid signal: {sig}") from None
    if not 0 < n < 65:
        raise InvalidArgument(f"invalid signal: {sig}")
    return n


def _find_file(layer_dirs: list[str], rel: str) -> str | None:
    for d in layer_dirs:
        p = os.path.join(d, rel)
        if os.path.lexists(p):
            return p if os.path.isfile(p) else None
    return None


def rootfs_layer_dirs(mounts: list[dict]) -> list[str]:
    """Directories of a snapshot's layers, top first (overlay upper, lowers; or a bind)."""
    dirs: list[str] = []
    for m in mounts:
        if m["type"] == "bind":
            dirs.append(m["source"])
        elif m["type"] == "overlay":
            opts = dict(o.split("=", 1) for o in m["options"] if "=" in o)
            if "upperdir" in opts:
                dirs.append(opts["upperdir"])
            dirs += opts.get("lowerdir", "").split(":")
    return [d for d in dirs if d]


def resolve_user(user: str, layer_dirs: list[str]) -> dict:
    """``name|uid[:group|gid]`` -> {"uid","gid","additionalGids"} using the image's passwd/group."""
    user = user or ""
    name, _, group = user.partition(":")
    passwd = _read_db(_find_file(layer_dirs, "etc/passwd"))
    groups = _read_db(_find_file(layer_dirs, "etc/group"))
    uid, gid = 0, 0
    if name:
        if name.isdigit():
            uid = int(name)
            ent = next((e for e in passwd if e[2] == name), None)
            gid = int(ent[3]) if ent else 0
        else:
            ent = next((e for e in passwd if e[0] == name), None)
            if ent is None:
                raise InvalidArgument(f"unable to find user {name}: no matching entries in passwd file")
            uid, gid = int(ent[2]), int(ent[3])
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            ent = next((e for e in groups if e[0] == group), None)
            if ent is None:
                raise InvalidArgument(f"unable to find group {group}: no matching entries in group file")
            gid = int(ent[2])
    uname = next((e[0] for e in passwd if e[2] == str(uid)), None)
    extra = sorted({int(e[2]) for e in groups if uname and uname in e[3].split(",") and int(e[2]) != gid})
    out = {"uid": uid, "gid": gid}
    if extra:
        out["additionalGids"] = extra
    return out


def _read_db(path: str | None) -> list[list[str]]:
    if not path:
        return []
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split(":")
            if len(parts) >= 4 and not line.startswith("#"):
                out.append(parts)
    return out


def merge_env(image_env: list[str], user_env: list[str]) -> list[str]:
    env: dict[str, str] = {}
    for e in list(image_env or []) + list(user_env or []):
        k, sep, v = e.partition("=")
        if not k:
            raise InvalidArgument(f"invalid environment variable: {e}")
        env[k] = e if sep else f"{k}="
    if "PATH" not in env:
        env["PATH"] = DEFAULT_PATH
    return list(env.values())


def command(config: dict, image_config: dict, allow_empty: bool = False) -> list[str]:
    """Docker's rule: Entrypoint + Cmd, where a given Entrypoint drops the image's Cmd."""
    ep = config.get("Entrypoint")
    cmd = config.get("Cmd")
    if ep is None:
        ep = image_config.get("Entrypoint") or []
        if not cmd:
            cmd = image_config.get("Cmd") or []
    elif not cmd:
        cmd = []
    args = list(ep or []) + list(cmd or [])
    if not args and not allow_empty:
        raise InvalidArgument("No command specified")
    return args


def cgroups_path_of(cid: str, host: dict, daemon_parent: str = "default") -> str:
    """As Pouch: /<parent>/<id>, the parent being the container's --cgroup-parent, else pouchd's
    (``default``); a record without one predates it and used the daemon's."""
    parent = host.get("CgroupParent") or daemon_parent
    return os.path.normpath(os.path.join("/", parent, cid))


def rootfs_propagation(mounts: list[dict]) -> str:
    """The rootfs propagation a container's bind mounts need (as Docker and containerd's CRI set it):
    "rshared" when one is (r)shared, "rslave" when one is (r)slave, else "" (runc's default, which
    makes the rootfs' parent private and so cuts every mount's propagation with the host)."""
    opts = {o for m in mounts for o in m.get("options") or ()}
    if opts & {"shared", "rshared"}:
        return "rshared"
    if opts & {"slave", "rslave"}:
        return "rslave"
    return ""


def build_spec(cid: str, config: dict, host: dict, image_config: dict, layer_dirs: list[str],
               extra_mounts: list[dict], cgroup_parent: str = "default", netns: str | None = None,
               ns_paths: dict[str, str | None] | None = None) -> tuple[dict, list[str]]:
    """The OCI spec and warnings.  ``ns_paths``: namespace type -> path to join, or None for the
    host's (``--pid host``); ``netns``: the network namespace path (None = host network)."""
    rich_launch = None
    if config.get("Rich"):
        rich_launch = rich.plan(config, command(config, image_config, allow_empty=True), layer_dirs)
        args = rich_launch.args
    else:
        args = command(config, image_config)
    if host.get("Init") and not config.get("Rich"):
        if not os.path.exists(INIT_BINARY):
            raise InvalidArgument(f"--init needs {INIT_BINARY} (Debian package tini)")
        args = [INIT_PATH, "--"] + args
    user = resolve_user(config.get("User") or image_config.get("User") or "", layer_dirs)
    tty = bool(config.get("Tty"))
    env = merge_env(image_config.get("Env") or [], config.get("Env") or [])
    if tty and not any(e.startswith("TERM=") for e in env):
        env.append("TERM=xterm")
    hostname = config.get("Hostname") or cid[:12]
    if not any(e.startswith("HOSTNAME=") for e in env):
        env.append(f"HOSTNAME={hostname}")
    cwd = config.get("WorkingDir") or image_config.get("WorkingDir") or "/"
    if not cwd.startswith("/"):
        raise InvalidArgument(f"the working directory '{cwd}' is invalid, it needs to be an absolute path")
    shm = int(host.get("ShmSize") or 64 << 20)
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm}"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ]
    if host.get("Privileged"):  # as Pouch/Docker: /sys and the cgroup filesystem writable
        for m in mounts:
            if m["destination"] in ("/sys", "/sys/fs/cgroup"):
                m["options"] = [o for o in m["options"] if o != "ro"] + ["rw"]
    if host.get("Init") and not rich_launch:
        mounts.append({"destination": INIT_PATH, "type": "bind", "source": INIT_BINARY,
                       "options": ["rbind", "ro"]})
    if rich_launch:
        if rich_launch.writable_cgroups:
            cg = next(m for m in mounts if m["destination"] == "/sys/fs/cgroup")
            cg["options"] = [o for o in cg["options"] if o != "ro"] + ["rw"]
        taken = {m["destination"] for m in extra_mounts}  # the user's mounts win
        mounts += [m for m in rich_launch.mounts if m["destination"] not in taken]
    mounts += extra_mounts
    ns_paths = dict(ns_paths or {})
    net = host.get("NetworkMode") or "default"
    ns_paths["network"] = netns if net != "host" else None
    namespaces = [{"type": "mount"}]
    for t in ("pid", "ipc", "uts", "network"):
        if t in ns_paths and ns_paths[t] is None:
            continue  # share the host's
        namespaces.append({"type": t, "path": ns_paths[t]} if ns_paths.get(t) else {"type": t})
    if "uts" in ns_paths and ns_paths["uts"] is None or net == "host" and not config.get("Hostname"):
        hostname = os.uname().nodename
    spec = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": tty, "user": user, "args": args, "env": env, "cwd": cwd,
            "noNewPrivileges": False,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": hostname,
        "mounts": mounts,
        "linux": {
            "resources": {},
            "cgroupsPath": cgroups_path_of(cid, host, cgroup_parent),
            "namespaces": namespaces,
        },
    }
    annotations = config.get("SpecAnnotation") or {}
    if annotations:
        if not isinstance(annotations, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                        for k, v in annotations.items()):
            raise InvalidArgument("SpecAnnotation must map strings to strings")
        spec["annotations"] = dict(annotations)
    if not any(n["type"] == "uts" and not n.get("path") for n in namespaces):
        # no UTS namespace of its own (--uts host or container:x): setting a hostname would
        # rename the host or the other container
        spec.pop("hostname")
    propagation = rootfs_propagation(extra_mounts)
    if propagation:
        spec["linux"]["rootfsPropagation"] = propagation
    warnings = apply_security(spec, host, host_network=net == "host")
    warnings += apply_resources(spec, host)
    return spec, warnings
