"""Type checks of a container-create body against Moby's schema (the bridge's job).

A field of the wrong JSON type (``"Memory": "lots"``) is a 400 here, before
any manager code sees it, instead of a TypeError deep inside (a 500).
"""
from __future__ import annotations

from pouch.errtypes import InvalidArgument

_INT, _STR, _BOOL, _LIST, _DICT, _NUM = int, str, bool, list, dict, (int, float)

CONFIG_TYPES = {
    "Hostname": _STR, "Domainname": _STR, "User": _STR, "AttachStdin": _BOOL, "AttachStdout": _BOOL,
    "AttachStderr": _BOOL, "Tty": _BOOL, "OpenStdin": _BOOL, "StdinOnce": _BOOL, "Env": _LIST,
    "Cmd": (list, str), "Entrypoint": (list, str), "Image": _STR, "Volumes": _DICT, "WorkingDir": _STR,
    "Labels": _DICT, "StopSignal": _STR, "StopTimeout": _INT, "ExposedPorts": _DICT,
    "Rich": _BOOL, "RichMode": _STR, "SpecificID": _STR, "InitScript": _STR, "SpecAnnotation": _DICT,
    "DisableNetworkFiles": _BOOL,
}

HOST_CONFIG_TYPES = {
    "Binds": _LIST, "NetworkMode": _STR, "PortBindings": _DICT, "RestartPolicy": _DICT, "AutoRemove": _BOOL,
    "VolumesFrom": _LIST, "CapAdd": _LIST, "CapDrop": _LIST, "Dns": _LIST, "DnsOptions": _LIST,
    "DnsSearch": _LIST, "ExtraHosts": _LIST, "GroupAdd": _LIST, "IpcMode": _STR, "PidMode": _STR,
    "Privileged": _BOOL, "PublishAllPorts": _BOOL, "ReadonlyRootfs": _BOOL, "SecurityOpt": _LIST,
    "Tmpfs": _DICT, "UTSMode": _STR, "ShmSize": _INT, "Sysctls": _DICT, "Runtime": _STR, "LogConfig": _DICT,
    "CpuShares": _INT, "Memory": _INT, "NanoCpus": _INT, "CgroupParent": _STR, "BlkioWeight": _INT,
    "CpuPeriod": _INT, "CpuQuota": _INT, "CpuRealtimePeriod": _INT, "CpuRealtimeRuntime": _INT,
    "CpusetCpus": _STR, "CpusetMems": _STR, "Devices": _LIST, "KernelMemory": _INT,
    "MemoryReservation": _INT, "MemorySwap": _INT, "MemorySwappiness": _INT, "OomKillDisable": _BOOL,
    "PidsLimit": _INT, "Ulimits": _LIST, "Mounts": _LIST, "Init": _BOOL, "OomScoreAdj": _INT,
}


def _check(section: str, obj, types: dict) -> None:
    if obj is None:
        return
    if not isinstance(obj, dict):
        raise InvalidArgument(f"{section} must be a JSON object")
    for key, want in types.items():
        v = obj.get(key)
        if v is None:
            continue
        bad = not isinstance(v, want) or (want is _INT and isinstance(v, bool))
        if bad:
            name = getattr(want, "__name__", None) or "/".join(t.__name__ for t in want)
            raise InvalidArgument(f"invalid {section}.{key}: expected {name}, got {type(v).__name__} {v!r}")


def check_create_body(body: dict) -> None:
    """Raise InvalidArgument (400) when a known field of the create body has the wrong type."""
    _check("Config", body, CONFIG_TYPES)
    _check("HostConfig", body.get("HostConfig"), HOST_CONFIG_TYPES)


def field(body: dict, key: str, want, default=None, section: str = ""):
    """``body[key]`` when it has the JSON type ``want`` (a type or tuple), ``default`` when it is
    absent or null; any other type is a 400 naming the field."""
    v = body.get(key)
    if v is None:
        return default
    if not isinstance(v, want) or (want is int and isinstance(v, bool)):
        name = getattr(want, "__name__", None) or "/".join(t.__name__ for t in want)
        where = f"{section}.{key}" if section else key
        raise InvalidArgument(f"invalid {where}: expected {name}, got {type(v).__name__} {v!r}"[:300])
    return v


def str_map(body: dict, key: str, section: str = "") -> dict[str, str]:
    """A JSON object of strings (labels, options); anything else is a 400."""
    m = field(body, key, dict, {}, section)
    for k, v in m.items():
        if not isinstance(v, str):
            where = f"{section}.{key}" if section else key
            raise InvalidArgument(f"invalid {where}[{k!r}]: expected str, got {type(v).__name__} {v!r}"[:300])
    return m
