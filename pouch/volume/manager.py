"""VolumeManager: named and anonymous volumes (create/ls/inspect/rm/prune), reference counting by
container id, and copy-up of image content into a new volume.

The container manager calls `await volmgr.use(name_or_None, cid)` for each volume mount (creating
it if needed), `copy_up(name, image_path)` when the volume is new and the image has content at
the mount point, and `release(cid)` when the container is removed.
"""
from __future__ import annotations

import asyncio
import os
import re
import secrets
import time

from .errors import InvalidVolumeSpec, VolumeConflict, VolumeError, VolumeInUse, VolumeNotFound
from .local import LocalDriver, SizeLimiter, TmpfsDriver, size_option
from .store import Volume, VolumeStore

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


class VolumeManager:
    def __init__(self, root: str = "/var/lib/pouch/volumes", size_limiter: SizeLimiter | None = None,
                 plugin_dirs=None) -> None:
        from . import plugin
        self.plugin_dirs = list(plugin_dirs or plugin.DEFAULT_DIRS)  # Docker volume plugins
        self.root = root
        os.makedirs(root, exist_ok=True)
        self.store = VolumeStore(root)
        # (action, name, attributes) for each create/destroy: pouchd publishes them as events
        self.on_event = None
        self.drivers = {"local": LocalDriver(root, size_limiter), "tmpfs": TmpfsDriver(root)}
        self.volumes: dict[str, Volume] = {v.name: v for v in self.store.all()}
        self._lock = asyncio.Lock()

    @property
    def size_limiter(self) -> SizeLimiter | None:
        return self.drivers["local"].size_limiter

    @size_limiter.setter
    def size_limiter(self, fn: SizeLimiter | None) -> None:
        self.drivers["local"].size_limiter = fn

    def _driver(self, name: str) -> LocalDriver:
        if name in self.drivers:
            return self.drivers[name]
        from .plugin import PluginDriver, find
        addr = find(name, self.plugin_dirs)
        if addr is None:
            raise InvalidVolumeSpec(f"volume driver {name!r} not found (built in: {', '.join(self.drivers)}; "
                                    f"no plugin {name} in {', '.join(self.plugin_dirs)})")
        drv = PluginDriver(name, addr)
        drv.activate()
        self.drivers[name] = drv
        return drv

    def create(self, name: str | None = None, driver: str = "local", options: dict[str, str] | None = None,
               labels: dict[str, str] | None = None) -> Volume:
        """`volume create`; no name = anonymous (random 64-hex name).  An existing volume of the
        same name is returned as it is (Docker semantics) unless its driver differs (409)."""
        options = dict(options or {})
        anonymous = not name
        name = name or secrets.token_hex(32)
        if not NAME_RE.match(name):
            raise InvalidVolumeSpec(f"invalid volume name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are "
                                    f"allowed, at least 2 characters")
        drv = self._driver(driver)
        if name in self.volumes:
            v = self.volumes[name]
            if v.driver != driver:
                raise VolumeConflict(f"volume {name} exists with driver {v.driver}")
            return v
        mp = drv.path_for(name, options)
        for other in self.volumes.values():
            if mp and other.mountpoint == os.path.normpath(mp):
                raise VolumeConflict(f"volume {other.name} already uses {mp}")
        mountpoint, size = drv.create(name, options)
        v = Volume(name=name, driver=driver, mountpoint=mountpoint, labels=dict(labels or {}),
                   options=options, size=size, anonymous=anonymous,
                   created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self.store.put(v)
        self.volumes[name] = v
        self._emit("create", name, {"driver": driver})
        return v

    def _emit(self, action: str, name: str, attrs: dict) -> None:
        if self.on_event is not None:
            self.on_event(action, name, attrs)

    def get(self, name: str) -> Volume:
        try:
            return self.volumes[name]
        except KeyError:
            raise VolumeNotFound(f"get {name}: no such volume", "volume", name) from None

    def list(self, filters: dict[str, list[str]] | None = None) -> list[Volume]:
        """Volumes by name; filters: name (substring), driver, label (k or k=v), dangling (true|false)."""
        out = []
        for v in sorted(self.volumes.values(), key=lambda v: v.name):
            ok = True
            for key, vals in (filters or {}).items():
                if not vals:
                    continue
                if key == "name":
                    ok = any(x in v.name for x in vals)
                elif key == "driver":
                    ok = v.driver in vals
                elif key == "dangling":
                    ok = any((x.lower() in ("1", "true")) == (not v.refs) for x in vals)
                elif key == "label":
                    for x in vals:
                        k, sep, val = x.partition("=")
                        if k not in v.labels or (sep and v.labels[k] != val):
                            ok = False
                else:
                    raise InvalidVolumeSpec(f"invalid filter {key!r}")
                if not ok:
                    break
            if ok:
                out.append(v)
        return out

    def inspect(self, name: str) -> dict:
        """Moby-compatible volume JSON (plus Pouch's Status with size and refs)."""
        v = self.get(name)
        status = {"size": size_option(v.options) or str(v.size)} if v.size else {}
        selectors = {k[len("selector."):]: val for k, val in v.options.items() if k.startswith("selector.")}
        if selectors:
            status["selectors"] = selectors
        return {"Name": v.name, "Driver": v.driver, "Mountpoint": v.mountpoint, "CreatedAt": v.created,
                "Labels": dict(v.labels), "Options": dict(v.options), "Scope": "local",
                "Status": status or None, "UsageData": {"RefCount": len(v.refs), "Size": -1}}

    def remove(self, name: str, force: bool = False) -> None:
        """`volume rm`: 409 naming the containers that use it; `force` ignores a missing volume only."""
        v = self.volumes.get(name)
        if v is None:
            if force:
                return
            raise VolumeNotFound(f"get {name}: no such volume", "volume", name)
        if v.refs:
            raise VolumeInUse(f"remove {name}: volume is in use - [{', '.join(v.refs)}]", list(v.refs))
        self._driver(v.driver).remove(v.name, v.mountpoint, v.options)
        self.store.delete(name)
        self.volumes.pop(name, None)
        self._emit("destroy", name, {"driver": v.driver})

    def prune(self, filters: dict[str, list[str]] | None = None) -> tuple[list[str], int]:
        """Remove every unused volume (matching filters); return (names, bytes reclaimed)."""
        gone, freed = [], 0
        for v in self.list(filters):
            if not v.refs:
                freed += _du(v.mountpoint)
                self.remove(v.name)
                gone.append(v.name)
        return gone, freed

    # -- references -----------------------------------------------------------------------
    def use(self, name: str | None, cid: str, options: dict[str, str] | None = None,
            labels: dict[str, str] | None = None, driver: str = "local") -> Volume:
        """Take a reference for container cid, creating the volume (anonymous if name is None)."""
        v = self.volumes.get(name) if name else None
        if v is None:
            v = self.create(name, driver, options, labels)
        if cid not in v.refs:
            mp = self._driver(v.driver).attach(v.name, v.mountpoint, v.options, cid=cid)
            if mp:  # a plugin says where it mounted the volume
                v.mountpoint = mp
            v.refs.append(cid)
            self.store.put(v)
        return v

    def unuse(self, name: str, cid: str) -> None:
        v = self.volumes.get(name)
        if v is not None and cid in v.refs:
            v.refs.remove(cid)
            self.store.put(v)
            drv = self._driver(v.driver)
            if getattr(drv, "per_container", False) or not v.refs:
                drv.detach(v.name, v.mountpoint, v.options, cid=cid)

    def release(self, cid: str, remove_anonymous: bool = False) -> list[str]:
        """Drop cid's references (container removed); with remove_anonymous (`rm -v`, `--rm`),
        delete its now-unused anonymous volumes.  Returns names removed."""
        removed = []
        for v in list(self.volumes.values()):
            if cid in v.refs:
                self.unuse(v.name, cid)
                if remove_anonymous and v.anonymous and not v.refs:
                    self.remove(v.name)
                    removed.append(v.name)
        return removed

    def restore(self, existing_containers: set[str]) -> None:
        """After a restart: drop references held by containers that no longer exist."""
        for v in self.volumes.values():
            stale = [c for c in v.refs if c not in existing_containers]
            if stale:
                v.refs = [c for c in v.refs if c in existing_containers]
                self.store.put(v)

    # -- copy-up --------------------------------------------------------------------------
    async def copy_up(self, name: str, src: str, dest: str | None = None) -> bool:
        """Copy image content at src into the volume (or ``dest``, a directory in it) if that is
        empty (ownership, modes, symlinks, hard links, xattrs preserved via `cp -a`).  Returns True
        if anything was copied."""
        v = self.get(name)
        dest = dest or v.mountpoint
        if not os.path.isdir(src) or os.listdir(dest):
            return False
        proc = await asyncio.create_subprocess_exec(
            "cp", "-a", "--", os.path.join(src, "."), dest + "/",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        if proc.returncode != 0:
            raise VolumeError(f"copy-up of {src} into volume {name} failed: {err.decode().strip()}")
        return True


def _du(path: str) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total
