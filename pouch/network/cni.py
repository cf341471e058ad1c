"""CNI 1.0 runtime: run a network configuration list's plugins for ADD / CHECK / DEL.

Follows the CNI spec's conflist semantics: plugins run in order for ADD (each gets the
previous result as `prevResult`) and in reverse for DEL; `runtimeConfig` carries only the
capability arguments a plugin declares; the ADD result is cached on disk with the exact
config used, so DEL works after a daemon restart or after the network changed.  Plugins are
run as asyncio subprocesses.  libcni (Go) is the reference; no maintained Python library
implements the runtime side, hence this module.
"""
from __future__ import annotations

import asyncio
import copy
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from . import atomic
from .errors import CNIError, NetworkError

DEFAULT_PLUGIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin", "/usr/libexec/cni")
CNI_VERSION = "1.0.0"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass
class RuntimeConf:
    """Per-attachment parameters (CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS, capabilities)."""

    container_id: str
    netns: str
    ifname: str = "eth0"
    args: dict[str, str] = field(default_factory=dict)
    capability_args: dict[str, Any] = field(default_factory=dict)


class CNIRunner:
    """Executes plugins found in `plugin_dirs`; caches ADD results under `cache_dir`."""

    def __init__(self, cache_dir: str, plugin_dirs: tuple[str, ...] | list[str] = DEFAULT_PLUGIN_DIRS) -> None:
        self.cache_dir = cache_dir
        self.plugin_dirs = [d for d in plugin_dirs]
        self._paths: dict[str, str] = {}
        os.makedirs(cache_dir, exist_ok=True)

    # -- plugin lookup / exec -------------------------------------------------------------
    def find_plugin(self, ptype: str) -> str:
        if ptype in self._paths:
            return self._paths[ptype]
        if "/" in ptype:
            raise NetworkError(f"invalid CNI plugin type {ptype!r}")
        for d in self.plugin_dirs:
            p = os.path.join(d, ptype)
            if os.access(p, os.X_OK):
                self._paths[ptype] = p
                return p
        raise NetworkError(f"CNI plugin {ptype!r} not found in {':'.join(self.plugin_dirs)}")

    def _env(self, command: str, rt: RuntimeConf) -> dict[str, str]:
        args = {"IgnoreUnknown": "1", **rt.args}
        return {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin") + ":/usr/sbin:/sbin",
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": rt.container_id,
            "CNI_NETNS": rt.netns,
            "CNI_IFNAME": rt.ifname,
            "CNI_ARGS": ";".join(f"{k}={v}" for k, v in args.items()),
            "CNI_PATH": ":".join(self.plugin_dirs),
        }

    async def exec_plugin(self, command: str, conf: dict, rt: RuntimeConf) -> dict | None:
        """Run one plugin; return its parsed stdout (None if empty); raise CNIError on failure."""
        ptype = conf.get("type", "")
        path = self.find_plugin(ptype)
        proc = await asyncio.create_subprocess_exec(
            path, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self._env(command, rt))
        out, err = await proc.communicate(json.dumps(conf).encode())
        parsed: dict | None = None
        if out.strip():
            try:
                parsed = json.loads(out)
            except json.JSONDecodeError:
                if proc.returncode == 0:
                    raise CNIError(ptype, command, 999, f"unparseable output: {out[:200]!r}")
        if proc.returncode != 0:
            if parsed and "msg" in parsed:
                raise CNIError(ptype, command, int(parsed.get("code", 999)), parsed["msg"], parsed.get("details", ""))
            raise CNIError(ptype, command, 999, (err or out).decode(errors="replace").strip()
                           or f"exit status {proc.returncode}")
        return parsed

    # -- conflist semantics ---------------------------------------------------------------
    @staticmethod
    def plugin_conf(conflist: dict, plugin: dict, rt: RuntimeConf, prev: dict | None) -> dict:
        conf = copy.deepcopy(plugin)
        conf["name"] = conflist["name"]
        conf["cniVersion"] = conflist.get("cniVersion", CNI_VERSION)
        caps = plugin.get("capabilities") or {}
        rc = {k: v for k, v in rt.capability_args.items() if caps.get(k)}
        if rc:
            conf["runtimeConfig"] = rc
        if prev is not None:
            conf["prevResult"] = prev
        return conf

    async def add(self, conflist: dict, rt: RuntimeConf) -> dict:
        """ADD the attachment: run every plugin in order; cache and return the final result.

        On failure the partial attachment is DELeted (best effort) and the CNIError re-raised.
        """
        prev: dict | None = None
        try:
            for plugin in conflist["plugins"]:
                res = await self.exec_plugin("ADD", self.plugin_conf(conflist, plugin, rt, prev), rt)
                if res is not None:
                    prev = res
        except BaseException:
            try:
                await self._delete_with(conflist, rt, prev)
            except Exception:
                pass
            raise
        result = prev or {"cniVersion": conflist.get("cniVersion", CNI_VERSION)}
        self._save_cache(conflist, rt, result)
        return result

    async def check(self, network_name: str, rt: RuntimeConf) -> None:
        """CHECK an attachment against its cached config and result; raise CNIError if broken."""
        cached = self.load_cache(network_name, rt.container_id, rt.ifname)
        if cached is None:
            raise NetworkError(f"no cached CNI result for {network_name}/{rt.container_id}/{rt.ifname}")
        conflist, prev = cached["config"], cached["result"]
        rt = self._cached_rt(cached, rt)
        for plugin in conflist["plugins"]:
            await self.exec_plugin("CHECK", self.plugin_conf(conflist, plugin, rt, prev), rt)

    async def delete(self, rt: RuntimeConf, conflist: dict | None = None, network_name: str | None = None) -> None:
        """DEL an attachment; the cached config/result win over `conflist` (needed after restarts).

        Runs every plugin in reverse even if one fails, then raises the first error.
        """
        name = network_name or (conflist or {}).get("name")
        cached = self.load_cache(name, rt.container_id, rt.ifname) if name else None
        prev = None
        if cached is not None:
            conflist, prev = cached["config"], cached.get("result")
            rt = self._cached_rt(cached, rt)
        if conflist is None:
            return  # nothing known about this attachment: nothing to delete
        await self._delete_with(conflist, rt, prev)
        atomic.remove(self._cache_path(conflist["name"], rt.container_id, rt.ifname))

    async def _delete_with(self, conflist: dict, rt: RuntimeConf, prev: dict | None) -> None:
        first: Exception | None = None
        for plugin in reversed(conflist["plugins"]):
            try:
                await self.exec_plugin("DEL", self.plugin_conf(conflist, plugin, rt, prev), rt)
            except Exception as e:
                first = first or e
        if first is not None:
            raise first

    # -- result cache ---------------------------------------------------------------------
    def _cache_path(self, network_name: str, container_id: str, ifname: str) -> str:
        key = "-".join(_SAFE.sub("_", s) for s in (network_name, container_id, ifname))
        return os.path.join(self.cache_dir, key + ".json")

    def _save_cache(self, conflist: dict, rt: RuntimeConf, result: dict) -> None:
        atomic.write_json(self._cache_path(conflist["name"], rt.container_id, rt.ifname), {
            "kind": "cniCacheV1", "containerId": rt.container_id, "ifName": rt.ifname,
            "networkName": conflist["name"], "netns": rt.netns, "cniArgs": rt.args,
            "capabilityArgs": rt.capability_args, "config": conflist, "result": result,
        }, sync=False)

    @staticmethod
    def _cached_rt(cached: dict, rt: RuntimeConf) -> RuntimeConf:
        return RuntimeConf(container_id=rt.container_id, netns=rt.netns or cached.get("netns", ""),
                           ifname=rt.ifname, args=cached.get("cniArgs") or rt.args,
                           capability_args=cached.get("capabilityArgs") or rt.capability_args)

    def load_cache(self, network_name: str, container_id: str, ifname: str) -> dict | None:
        return atomic.read_json(self._cache_path(network_name, container_id, ifname))

    def cached_attachments(self) -> list[dict]:
        """Every cached attachment (used by recovery to find what a dead daemon left behind)."""
        out = []
        for fn in sorted(os.listdir(self.cache_dir)):
            if fn.endswith(".json") and not fn.startswith("."):
                data = atomic.read_json(os.path.join(self.cache_dir, fn))
                if data and data.get("kind") == "cniCacheV1":
                    out.append(data)
        return out
