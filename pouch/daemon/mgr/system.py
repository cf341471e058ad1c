"""The system manager: what ``version``, ``info`` and ``system df`` report about this daemon and host."""
from __future__ import annotations

import os
import platform
import time

import pouch
from pouch.api.version import API_VERSION, MIN_API_VERSION
from pouch.registry.config import LOOPBACK_INSECURE


class SystemManager:
    def __init__(self, daemon_cfg, ctrd, containers, images, runtimes: dict[str, str],
                 features=None, remount_lxcfs=None, volumes=None, p2p_stats=None,
                 containerd_pid=None) -> None:
        self.cfg = daemon_cfg
        self.ctrd = ctrd
        self.containers = containers
        self.images = images
        self.runtimes = runtimes
        self.features = features  # callable -> dict of detected kernel features
        self._remount_lxcfs = remount_lxcfs
        self.volumes = volumes
        self._p2p_stats = p2p_stats  # async callable -> the P2P peer's counters or None
        # -> the pid of the containerd pouchd supervises, or None (an external one): a running
        # containerd's version cannot change, so /version asks it once per containerd process
        self._containerd_pid = containerd_pid
        self._ctrd_version: tuple[int, str] | None = None  # (pid, version)

    async def _containerd_version(self) -> str:
        pid = self._containerd_pid() if self._containerd_pid is not None else None
        if pid and self._ctrd_version is not None and self._ctrd_version[0] == pid:
            return self._ctrd_version[1]
        try:
            version = await self.ctrd.version()
        except Exception:
            return "unknown"
        if pid:
            self._ctrd_version = (pid, version)
        return version

    async def disk_usage(self) -> dict:
        from .diskusage import disk_usage
        return await disk_usage(self.ctrd, self.images, self.containers, self.volumes)

    async def remount_lxcfs(self) -> list[str]:
        from pouch.errtypes import InvalidArgument
        if self._remount_lxcfs is None or not (self.features() or {}).get("Lxcfs", {}).get("Enabled"):
            raise InvalidArgument("lxcfs is not enabled on this daemon: start pouchd with --enable-lxcfs")
        return await self._remount_lxcfs()

    async def version(self) -> dict:
        ctrd_version = await self._containerd_version()
        uname = os.uname()
        return {
            "Version": pouch.__version__, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": "", "GoVersion": "python" + platform.python_version(),
            "Os": "linux", "Arch": {"x86_64": "amd64", "aarch64": "arm64"}.get(uname.machine, uname.machine),
            "KernelVersion": uname.release, "BuildTime": "",
            "Platform": {"Name": "pouch"},
            "Components": [
                {"Name": "Engine", "Version": pouch.__version__,
                 "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION}},
                {"Name": "containerd", "Version": ctrd_version, "Details": {}},
            ],
        }

    async def info(self) -> dict:
        cs = self.containers.list()
        uname = os.uname()
        mem = 0
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = int(line.split()[1]) * 1024
        feats = self.features() if self.features else {}
        return {
            "ID": self.cfg.id, "Containers": len(cs),
            "ContainersRunning": sum(1 for c in cs if c.status == "running"),
            "ContainersPaused": sum(1 for c in cs if c.status == "paused"),
            "ContainersStopped": sum(1 for c in cs if c.status not in ("running", "paused")),
            "Images": len(self.images.list()), "Driver": self.ctrd.snapshotter, "DriverStatus": [],
            "MemTotal": mem, "NCPU": os.cpu_count(), "Name": uname.nodename,
            "KernelVersion": uname.release, "OperatingSystem": _os_name(), "OSType": "linux",
            "Architecture": uname.machine, "ServerVersion": pouch.__version__,
            "DockerRootDir": self.cfg.home, "PouchRootDir": self.cfg.home,
            "LoggingDriver": self.cfg.log_driver, "CgroupDriver": feats.get("CgroupDriver", "cgroupfs"),
            "CgroupVersion": str(feats.get("CgroupVersion", "1")),
            "Runtimes": {n: {"path": p} for n, p in self.runtimes.items()},
            "DefaultRuntime": self.cfg.default_runtime, "LiveRestoreEnabled": True,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"InsecureRegistryCIDRs": [*LOOPBACK_INSECURE, *self.cfg.insecure_registries], "IndexConfigs": {},
                               "Mirrors": list(self.cfg.registry_mirrors)},
            "P2PPeer": self.cfg.p2p_peer,
            "P2PStats": (await self._p2p_stats()) if self._p2p_stats and self.cfg.p2p_peer else None,
            "SecurityOptions": ["name=seccomp,profile=default"] if feats.get("Seccomp") else [],
            "Debug": self.cfg.debug, "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "Plugins": {"Volume": ["local", "tmpfs"], "Network": ["bridge", "host", "none"], "Log": ["json-file"]},
            "Warnings": [], "Labels": list(self.cfg.labels),
            "DefaultRegistry": self.cfg.default_registry or "docker.io",
            "ImageProxy": self.cfg.image_proxy, "HttpProxy": self.cfg.image_proxy,
            "Features": feats,
        }


class DaemonUpdate:
    """``POST /daemon/update`` (Pouch's UpdateDaemon): labels merged by key and the image proxy,
    applied to the running daemon at once (in memory, as Pouch).  Other settings are offline
    updates (``pouch updatedaemon --offline``): the CLI writes them to the config file and they
    apply at the next start."""

    def __init__(self, daemon_cfg, registry_config) -> None:
        self.cfg = daemon_cfg
        self.registry_config = registry_config

    def update(self, body) -> None:
        from pouch.errtypes import InvalidArgument
        if not isinstance(body, dict) or set(body) - {"Labels", "ImageProxy"}:
            raise InvalidArgument("daemon update config takes only Labels and ImageProxy")
        labels = body.get("Labels") or []
        proxy = body.get("ImageProxy") or ""
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels) \
                or not isinstance(proxy, str):
            raise InvalidArgument("Labels must be a list of key=value strings and ImageProxy a string")
        if not labels and not proxy:
            raise InvalidArgument("daemon update config cannot be empty")
        for label in labels:
            k, sep, v = label.partition("=")
            if not sep or not k or not v:
                raise InvalidArgument(f"daemon label {label} must be in format of key=value")
        if proxy and not proxy.startswith(("http://", "https://")):
            raise InvalidArgument(f"invalid image proxy {proxy!r}: want http://host:port")
        merged = list(self.cfg.labels)
        for label in labels:
            key = label.partition("=")[0]
            for i, old in enumerate(merged):
                if old.partition("=")[0] == key:
                    merged[i] = label
                    break
            else:
                merged.append(label)
        self.cfg.labels = merged
        if proxy:
            self.cfg.image_proxy = proxy
            self.registry_config.proxy = proxy


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"
