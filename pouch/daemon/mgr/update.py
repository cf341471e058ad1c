"""``POST /containers/{id}/update`` as Pouch's UpdateConfig: resources, RestartPolicy, Env, Label
(also Moby's Labels), SpecAnnotation and DiskQuota.

An empty body is accepted (nothing changes; Pouch does the same).  Env merges as Pouch's
mergeEnvSlice: ``K=v`` sets, ``K=`` empties, a bare ``K`` removes.  It reaches a running
container's later execs (they read the record) and its next start (the stored spec's
process.env).  Labels ``k=v`` set, a bare ``k`` (or ``k=``) removes.  Warnings from the resource
validation are returned, not dropped.  Nothing is changed when any part is invalid.
"""
from __future__ import annotations

import asyncio

from pouch.errtypes import InvalidArgument

NON_RESOURCE = {"RestartPolicy", "Env", "Label", "Labels", "SpecAnnotation"}


def env_entries(values, what: str = "env") -> list[str]:
    """Validate env entries as Pouch's opts.ParseEnvs: trimmed, non-empty, key non-empty."""
    if values is None:
        return []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InvalidArgument(f"{what} must be a list of strings")
    out = []
    for raw in values:
        env = raw.strip()
        if not env:
            raise InvalidArgument("invalid env: env cannot be empty")
        key, sep, val = env.partition("=")
        if not key:
            raise InvalidArgument(f"invalid env {env}: key of env cannot be empty")
        out.append(f"{key}={val}" if sep else key)
    return out


def merge_env(old: list[str], new: list[str]) -> list[str]:
    merged: dict[str, str | None] = {}
    for e in old or []:
        k, sep, v = e.partition("=")
        merged[k] = v if sep else None
    for e in new:
        k, sep, v = e.partition("=")
        if sep:
            merged[k] = v
        else:
            merged.pop(k, None)
    return [k if v is None else f"{k}={v}" for k, v in merged.items()]


def _labels(values) -> dict:
    if values is None:
        return {}
    if isinstance(values, dict):
        return {str(k): str(v) for k, v in values.items()}
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InvalidArgument("Label must be a list of key=value strings")
    out = {}
    for item in values:
        k, _, v = item.partition("=")
        if not k:
            raise InvalidArgument(f"invalid label {item!r}: empty key")
        out[k] = v
    return out


async def update(mgr, c, body: dict) -> list[str]:
    from . import restart as restart_policy
    from pouch.oci import resources as oci_resources
    from pouch.oci import update_cgroup, update_throttles
    from .spec import cgroups_path_of

    if not isinstance(body, dict):
        raise InvalidArgument("update config must be a JSON object")
    host = c.host_config
    policy = None
    rp = body.get("RestartPolicy")
    if rp is not None and (not isinstance(rp, dict) or rp.get("Name") is not None):
        policy = restart_policy.validate(rp, bool(host.get("AutoRemove")))
    env = env_entries(body.get("Env"))
    labels = _labels(body.get("Label") if body.get("Label") is not None else body.get("Labels"))
    annotations = body.get("SpecAnnotation") or {}
    if not isinstance(annotations, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                    for k, v in annotations.items()):
        raise InvalidArgument("SpecAnnotation must be a map of strings")
    resources = {k: v for k, v in body.items() if k not in NON_RESOURCE and v not in (None, "", 0, [])}
    if resources.get("Memory") and not resources.get("MemorySwap"):
        swap = host.get("MemorySwap") or 0
        if swap > 0 and resources["Memory"] > swap:
            raise InvalidArgument("Memory limit should be smaller than already set memoryswap limit, "
                                  "update the memoryswap at the same time")
    warnings: list[str] = []
    oci = None
    if resources:
        merged = dict(host)
        merged.update(resources)
        oci, warnings = oci_resources.build(merged)  # InvalidOciConfig: a 400 with its message
        await mgr.sandbox.update_resources(c, resources)  # quota and friends validate too
        if c.running:
            cg_path = cgroups_path_of(c.id, host, mgr.cgroup_parent)
            if mgr.runtimes.get(host.get("Runtime")).live_update:
                await mgr.ctrd.task_update(c.id, oci)
                await asyncio.to_thread(update_throttles, cg_path, oci)  # runc update skips them
            else:  # runsc has no `update`: write the sandbox's cgroup files
                await asyncio.to_thread(update_cgroup, cg_path, oci)
    new_env = merge_env(c.config.get("Env") or [], env) if env else None
    if oci is not None or new_env is not None or annotations:
        # the stored spec too, so the next start (or restart) keeps them
        spec = await mgr.ctrd.container_spec(c.id)
        if oci is not None:
            spec.setdefault("linux", {}).setdefault("resources", {}).update(oci)
        if new_env is not None:
            proc_env = merge_env(spec.get("process", {}).get("env") or [], env)
            spec.setdefault("process", {})["env"] = [e for e in proc_env if "=" in e]
        if annotations:
            spec.setdefault("annotations", {}).update(annotations)
        await mgr.ctrd.container_update_spec(c.id, spec)
    if policy is not None:
        host["RestartPolicy"] = policy
    host.update(resources)
    if new_env is not None:
        c.config["Env"] = new_env
    if labels:
        cur = dict(c.config.get("Labels") or {})
        for k, v in labels.items():
            if v:
                cur[k] = v
            else:
                cur.pop(k, None)
        c.config["Labels"] = cur
    if annotations:
        c.config["SpecAnnotation"] = {**(c.config.get("SpecAnnotation") or {}), **annotations}
    mgr.save(c)
    mgr.publish(c, "update")
    return list(warnings)
