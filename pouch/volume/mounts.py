"""Parsers for `-v`, `--mount` and `--tmpfs`, returning typed MountSpecs, and `to_oci` that turns a
resolved spec into an OCI runtime mount {"destination","type","source","options"}.

  -v name:/path[:opts]        named volume        -v /path           anonymous volume
  -v /host:/path[:opts]       bind mount          opts: ro, rw, nocopy, z, Z, [r]private, [r]shared, [r]slave,
                                                  dr / rr (Pouch: mount the volume's subdirectory <dest> or a random one)
  --mount type=volume|bind|tmpfs,src=..,dst=..,ro[=true],volume-opt=k=v,volume-label=k=v,
          volume-driver=..,volume-nocopy,bind-propagation=..,tmpfs-size=..,tmpfs-mode=..
  --tmpfs /path[:opts]        opts as for mount(8) tmpfs: size=64m,mode=1777,exec,...
Bad input raises InvalidVolumeSpec (HTTP 400) naming the flag and the offending part.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field

from .errors import InvalidVolumeSpec
from .local import parse_size

PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
_V_MODES = {"ro", "rw", "nocopy", "z", "Z", "dr", "rr", *PROPAGATIONS}


@dataclass
class MountSpec:
    type: str                        # volume | bind | tmpfs
    destination: str
    source: str = ""                 # volume name ("" = anonymous), host path, or "" for tmpfs
    readonly: bool = False
    propagation: str = ""
    nocopy: bool = False
    selinux_label: str = ""          # z | Z
    volume_driver: str = "local"
    volume_options: dict[str, str] = field(default_factory=dict)
    volume_labels: dict[str, str] = field(default_factory=dict)
    tmpfs_options: list[str] = field(default_factory=list)
    replace: str = ""                # Pouch: dr (volume/<dest>) or rr (volume/<random>) subdirectory


def _dest(d: str, flag: str, spec: str) -> str:
    if not d:
        raise InvalidVolumeSpec(f"invalid {flag} {spec!r}: no destination path")
    if not os.path.isabs(d):
        raise InvalidVolumeSpec(f"invalid {flag} {spec!r}: destination {d!r} is not an absolute path")
    d = os.path.normpath(d)
    if d == "/":
        raise InvalidVolumeSpec(f"invalid {flag} {spec!r}: destination can't be '/'")
    return d


def _is_path(s: str) -> bool:
    return s.startswith("/") or s.startswith(".")


def parse_volume(spec: str) -> MountSpec:
    """One `-v` / `--volume` value."""
    parts = spec.split(":")
    if not spec or len(parts) > 3 or any(p == "" for p in parts):
        raise InvalidVolumeSpec(f"invalid volume specification {spec!r}: want [SOURCE:]DEST[:OPTIONS]")
    if len(parts) == 1:
        return MountSpec(type="volume", destination=_dest(parts[0], "-v", spec))
    if len(parts) == 2 and not _is_path(parts[1]) and _is_path(parts[0]) and set(parts[1].split(",")) <= _V_MODES:
        src, dst, mode = "", parts[0], parts[1]        # "-v /data:ro": anonymous volume with mode
    else:
        src, dst, mode = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
    m = MountSpec(type="bind" if src.startswith("/") else "volume", source=src, destination=_dest(dst, "-v", spec))
    if src and not src.startswith("/"):
        if src.startswith("."):
            raise InvalidVolumeSpec(f"invalid volume specification {spec!r}: bind source {src!r} must be an absolute path")
        _check_name(src, spec)
    elif src:
        m.source = os.path.normpath(src)
    rw = None
    for opt in filter(None, mode.split(",")):
        if opt not in _V_MODES:
            raise InvalidVolumeSpec(f"invalid mode {opt!r} in volume specification {spec!r}")
        if opt in ("ro", "rw"):
            if rw is not None:
                raise InvalidVolumeSpec(f"invalid volume specification {spec!r}: ro/rw given twice")
            rw = opt
        elif opt == "nocopy":
            if m.type != "volume":
                raise InvalidVolumeSpec(f"invalid volume specification {spec!r}: nocopy applies to volumes only")
            m.nocopy = True
        elif opt in ("z", "Z"):
            m.selinux_label = opt
        elif opt in ("dr", "rr"):
            if m.type != "volume":
                raise InvalidVolumeSpec(f"invalid volume specification {spec!r}: {opt} applies to volumes only")
            if m.replace:
                raise InvalidVolumeSpec(f"invalid volume specification {spec!r}: dr/rr given twice")
            m.replace = opt
        else:
            if m.propagation:
                raise InvalidVolumeSpec(f"invalid volume specification {spec!r}: propagation given twice")
            m.propagation = opt
    m.readonly = rw == "ro"
    return m


def _check_name(name: str, spec: str) -> None:
    from .manager import NAME_RE
    if not NAME_RE.match(name):
        raise InvalidVolumeSpec(f"invalid volume specification {spec!r}: {name!r} is neither an absolute "
                                f"path nor a valid volume name")


def _bool(v: str, key: str, spec: str) -> bool:
    if v.lower() in ("", "1", "true"):
        return True
    if v.lower() in ("0", "false"):
        return False
    raise InvalidVolumeSpec(f"invalid --mount {spec!r}: {key} wants true or false, not {v!r}")


def parse_mount(spec: str) -> MountSpec:
    """One `--mount` value (CSV of key=value, quoting as Docker's)."""
    try:
        fields = next(csv.reader([spec]))
    except (csv.Error, StopIteration):
        raise InvalidVolumeSpec(f"invalid --mount {spec!r}") from None
    kv: list[tuple[str, str, bool]] = []
    for f in fields:
        k, sep, v = f.partition("=")
        kv.append((k.strip().lower(), v, bool(sep)))
    mtype = next((v for k, v, _ in kv if k == "type"), "volume")
    if mtype not in ("volume", "bind", "tmpfs"):
        raise InvalidVolumeSpec(f"invalid --mount {spec!r}: type {mtype!r} is not volume, bind or tmpfs")
    m = MountSpec(type=mtype, destination="")
    tmpfs_size = tmpfs_mode = ""
    for k, v, has in kv:
        if k == "type":
            continue
        if k in ("source", "src"):
            m.source = v
        elif k in ("destination", "dst", "target"):
            m.destination = v
        elif k in ("readonly", "ro"):
            m.readonly = _bool(v, k, spec)
        elif k == "volume-driver":
            m.volume_driver = v
        elif k in ("volume-opt", "volume-label"):
            ok, sep, ov = v.partition("=")
            if not sep or not ok:
                raise InvalidVolumeSpec(f"invalid --mount {spec!r}: {k} wants KEY=VALUE, not {v!r}")
            (m.volume_options if k == "volume-opt" else m.volume_labels)[ok] = ov
        elif k == "volume-nocopy":
            m.nocopy = _bool(v, k, spec)
        elif k == "bind-propagation":
            if v not in PROPAGATIONS:
                raise InvalidVolumeSpec(f"invalid --mount {spec!r}: bind-propagation {v!r} is not one of {', '.join(PROPAGATIONS)}")
            m.propagation = v
        elif k == "tmpfs-size":
            parse_size(v)
            tmpfs_size = v
        elif k == "tmpfs-mode":
            try:
                int(v, 8)
            except ValueError:
                raise InvalidVolumeSpec(f"invalid --mount {spec!r}: tmpfs-mode {v!r} is not octal") from None
            tmpfs_mode = v
        elif k == "consistency":
            pass
        else:
            raise InvalidVolumeSpec(f"invalid --mount {spec!r}: unknown key {k!r}")
    m.destination = _dest(m.destination, "--mount", spec)
    if mtype == "bind":
        if not m.source:
            raise InvalidVolumeSpec(f"invalid --mount {spec!r}: bind needs a source")
        if not os.path.isabs(m.source):
            raise InvalidVolumeSpec(f"invalid --mount {spec!r}: bind source {m.source!r} is not an absolute path")
        m.source = os.path.normpath(m.source)
    if mtype != "volume" and (m.volume_options or m.volume_labels or m.nocopy):
        raise InvalidVolumeSpec(f"invalid --mount {spec!r}: volume-* keys apply to type=volume only")
    if mtype != "bind" and m.propagation:
        raise InvalidVolumeSpec(f"invalid --mount {spec!r}: bind-propagation applies to type=bind only")
    if mtype == "volume" and m.source:
        _check_name(m.source, spec)
    if mtype == "tmpfs":
        if m.source:
            raise InvalidVolumeSpec(f"invalid --mount {spec!r}: tmpfs takes no source")
        m.tmpfs_options = [o for o in (f"size={tmpfs_size}" if tmpfs_size else "",
                                       f"mode={tmpfs_mode}" if tmpfs_mode else "") if o]
    elif tmpfs_size or tmpfs_mode:
        raise InvalidVolumeSpec(f"invalid --mount {spec!r}: tmpfs-* keys apply to type=tmpfs only")
    return m


_TMPFS_FLAGS = {"ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "sync", "async",
                "atime", "noatime", "diratime", "nodiratime", "relatime", "norelatime", "strictatime"}
_TMPFS_KEYS = {"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"}


def parse_tmpfs(spec: str) -> MountSpec:
    """One `--tmpfs /path[:opts]` value."""
    dst, _, opts = spec.partition(":")
    m = MountSpec(type="tmpfs", destination=_dest(dst, "--tmpfs", spec))
    for o in filter(None, opts.split(",")):
        k, sep, v = o.partition("=")
        if sep:
            if k not in _TMPFS_KEYS:
                raise InvalidVolumeSpec(f"invalid --tmpfs {spec!r}: unknown option {k!r}")
            if k == "size" and not v.endswith("%"):
                parse_size(v)
        elif o not in _TMPFS_FLAGS:
            raise InvalidVolumeSpec(f"invalid --tmpfs {spec!r}: unknown option {o!r}")
        if o == "ro":
            m.readonly = True
        m.tmpfs_options.append(o)
    return m


def check_duplicates(specs: list[MountSpec]) -> None:
    seen: set[str] = set()
    for s in specs:
        if s.destination in seen:
            raise InvalidVolumeSpec(f"duplicate mount point: {s.destination}")
        seen.add(s.destination)


def to_oci(m: MountSpec, source: str | None = None) -> dict:
    """OCI mount for a spec; `source` is the resolved host path (a volume's mountpoint)."""
    if m.type == "tmpfs":
        flags = {"nosuid": True, "nodev": True, "noexec": True}
        extra = []
        for o in m.tmpfs_options:
            if o in ("exec", "suid", "dev"):
                flags["no" + o] = False
            elif o not in flags:
                extra.append(o)
        opts = [k for k, on in flags.items() if on] + extra
        if not any(o.startswith("mode=") for o in opts):
            opts.append("mode=1777")
        return {"destination": m.destination, "type": "tmpfs", "source": "tmpfs", "options": opts}
    src = source if source is not None else m.source
    if not src:
        raise InvalidVolumeSpec(f"mount {m.destination}: no source resolved")
    opts = ["rbind", "ro" if m.readonly else "rw", m.propagation or "rprivate"]
    return {"destination": m.destination, "type": "bind", "source": src, "options": opts}
