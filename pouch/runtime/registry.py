"""Runtime registry: runc by default, crun/runsc when on PATH, plus --add-runtime and config entries.

Every runtime runs under containerd's runc shim (`io.containerd.runc.v2`) with the runc options
`BinaryName` pointing at its binary; the daemon encodes those options into containerd's proto.
"""
import os
import shutil
from dataclasses import dataclass, field

from .errors import InvalidRuntime, RuntimeNotFound

SHIM = "io.containerd.runc.v2"
DEFAULT = "runc"
AUTO = ("runc", "crun", "runsc")


@dataclass
class Runtime:
    name: str
    path: str                                   # absolute path of the OCI runtime binary
    runtime_type: str = SHIM                    # containerd runtime (shim) name
    args: list = field(default_factory=list)    # extra runtime args (runsc flags)
    options: dict = field(default_factory=dict)  # runc shim options (BinaryName, SystemdCgroup, Root)
    live_update: bool = True                    # has `update` (runsc has none: write the cgroup files)
    shim_group: bool = True                     # may share a runc shim with others (daemon/mgr/shimgroup.py)

    def check_installed(self) -> None:
        """InvalidRuntime unless the binary is there now (--add-runtime may name one installed later)."""
        full = self.path if os.path.isabs(self.path) else shutil.which(self.path)
        if not full or not os.path.isfile(full) or not os.access(full, os.X_OK):
            raise InvalidRuntime(f"runtime {self.name!r} is not installed: {self.path!r} is not an executable file")
        if not os.path.isabs(self.path):
            self.path = full
            if not os.path.isabs(self.options.get("BinaryName", "")):
                self.options["BinaryName"] = full

    def to_dict(self) -> dict:
        return {"name": self.name, "path": self.path, "runtimeType": self.runtime_type,
                "runtimeArgs": list(self.args), "options": dict(self.options)}


def _resolve(path: str, name: str) -> str:
    full = path if os.path.isabs(path) else shutil.which(path)
    if not full or not os.path.isfile(full) or not os.access(full, os.X_OK):
        raise InvalidRuntime(f"runtime {name!r}: {path!r} is not an executable file")
    return full


class RuntimeRegistry:
    def __init__(self, default: str = DEFAULT, systemd_cgroup: bool = False):
        self._runtimes = {}
        self.default = default
        self.systemd_cgroup = systemd_cgroup
        for name in AUTO:
            found = shutil.which(name)
            if found:
                self._put(name, found)

    def _put(self, name: str, path: str, args=None) -> Runtime:
        options = {"BinaryName": path}
        if self.systemd_cgroup:
            options["SystemdCgroup"] = True
        if name == "runsc" or os.path.basename(path) == "runsc":
            # gVisor keeps its own state dir and needs its config passed as runtime args
            options["Root"] = "/run/containerd/runsc"
            options["SystemdCgroup"] = False
            # runsc's sandbox network refuses any netns on kernels >= 5.x (it takes the namespaced
            # /proc/sys/net/core/rmem_default for "root netns"); its host-network mode uses the
            # netns pouchd gives the container, so the container keeps its own network.
            if "--network=host" not in (args or []) and not any(str(a).startswith("--network") for a in args or []):
                args = list(args or []) + ["--network=host"]
        gvisor = name == "runsc" or os.path.basename(path) == "runsc"
        # gVisor keeps a sandbox per container behind its shim: it keeps a shim of its own too
        rt = Runtime(name, path, SHIM, list(args or []), options, live_update=not gvisor, shim_group=not gvisor)
        self._runtimes[name] = rt
        return rt

    def add(self, name: str, path: str, args=None, installed_later: bool = False) -> Runtime:
        """Register `name` -> binary `path` (absolute or on PATH). Overrides an auto entry.
        ``installed_later``: a binary that is not there yet is accepted; containers that use
        the runtime are refused (Runtime.check_installed) until it is."""
        if not name or "/" in name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise InvalidRuntime(f"invalid runtime name {name!r}")
        try:
            return self._put(name, _resolve(path, name), args)
        except InvalidRuntime:
            if not installed_later:
                raise
            return self._put(name, path, args)

    def add_flag(self, value: str) -> Runtime:
        """`--add-runtime name=path` (as Pouch, the binary may be installed after pouchd starts)."""
        name, sep, path = str(value).partition("=")
        if not sep or not name or not path:
            raise InvalidRuntime(f"invalid --add-runtime {value!r}: expected name=path")
        return self.add(name.strip(), path.strip(), installed_later=True)

    def add_config(self, runtimes: dict) -> None:
        """Config file map {name: {"path": ..., "runtimeArgs": [...]}} (Docker's daemon.json shape)."""
        for name, entry in (runtimes or {}).items():
            if isinstance(entry, str):
                entry = {"path": entry}
            if not isinstance(entry, dict) or not entry.get("path"):
                raise InvalidRuntime(f"runtime {name!r} in the config has no path")
            self.add(name, entry["path"], entry.get("runtimeArgs"), installed_later=True)

    def get(self, name: str | None = None) -> Runtime:
        name = name or self.default
        rt = self._runtimes.get(name)
        if rt is None:
            raise RuntimeNotFound(f"unknown runtime {name!r}: registered are {', '.join(sorted(self._runtimes))}")
        return rt

    def write_wrappers(self, directory: str) -> None:
        """containerd's runc shim passes no extra arguments to a runtime binary: a runtime
        registered with arguments gets a small exec wrapper, which becomes its BinaryName."""
        import shlex
        os.makedirs(directory, exist_ok=True)
        for rt in self._runtimes.values():
            if not rt.args:
                continue
            path = os.path.join(directory, rt.name)
            text = "#!/bin/sh\nexec " + " ".join(shlex.quote(a) for a in [rt.path, *map(str, rt.args)]) + ' "$@"\n'
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                f.write(text)
            os.chmod(tmp, 0o755)
            os.replace(tmp, path)
            rt.options["BinaryName"] = path

    def names(self) -> list:
        return sorted(self._runtimes)

    def info(self) -> dict:
        return {n: {"path": r.path, "runtimeArgs": r.args} for n, r in sorted(self._runtimes.items())}
