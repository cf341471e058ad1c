"""``POST /containers/{id}/upgrade`` (Pouch's ``pouch upgrade``): a container onto a new image.

The container keeps its id, name, configuration, networks and volumes (anonymous ones too: they
are re-attached by name at the same places); its root filesystem becomes a fresh writable layer
on the new image, and the command the new image's (or the one given).  A running container is
stopped first and started again after.

Nothing is lost if it fails: the old writable layer is committed aside (a snapshot named
``<id>-upgrade-<n>``) before anything changes, and on any failure (a start that fails, say) it
comes back under the container, with the old configuration and spec, started again if it ran;
it then stays as the parent of the container's layer and goes when the container is removed
(``UpgradeBackups`` in the meta).  On success the kept layers are removed.  If pouchd dies
mid-upgrade, an ``Upgrading`` marker in the meta says how far it got and whether the container
ran: ``recover`` (at the next start) rolls back what had not yet switched to the new image and
completes what had, and a container that ran before the upgrade is started again.
"""
from __future__ import annotations

import asyncio
import copy
import logging
import secrets

from pouch.errtypes import Conflict, InvalidArgument, NotModified

from .. import failpoint
from .container_model import now_rfc3339
from .spec import DEFAULT_PATH, merge_env

log = logging.getLogger(__name__)


async def upgrade_unlocked(mgr, c, image: str, img, cmd, entrypoint) -> None:
    """The upgrade of ``c`` (ContainerManager.upgrade holds its lock: only _unlocked calls here)."""
    if img.id == c.meta.get("Image"):  # as Pouch
        raise InvalidArgument("failed to upgrade container: image not changed")
    if c.status not in ("running", "created", "exited"):
        raise Conflict(f"container {c.id[:12]} is {c.status}: upgrade needs it running or stopped")
    ctrd, cid = mgr.ctrd, c.id
    old_meta = copy.deepcopy(c.meta)
    old_spec = await ctrd.container_spec(cid)
    old_image_name = await ctrd.container_image(cid)
    was_running = c.running
    if was_running:
        try:
            await mgr._stop_unlocked(c)
        except NotModified:
            pass
    backup = f"{cid}-upgrade-{secrets.token_hex(4)}"
    # a crash from here on is undone at the next start (recover): the marker says how, and
    # whether the container ran
    marker = {"Image": old_image_name, "Spec": old_spec, "Backup": backup, "Running": was_running,
              "Meta": old_meta, "Phase": "commit"}
    c.meta["Upgrading"] = marker
    mgr.save(c)
    failpoint.crash("upgrade-before-commit")
    try:
        await ctrd.snapshot_commit(backup, cid, labels={"containerd.io/gc.root": now_rfc3339()})
    except BaseException:
        c.meta.pop("Upgrading", None)
        mgr.save(c)
        if was_running:
            await mgr._start_unlocked(c)
        raise
    failpoint.crash("upgrade-after-commit")
    try:
        old = mgr.images.by_id.get(c.meta["Image"])
        c.config["Env"] = rebase_env(c.config.get("Env"), _image_env(old), _image_env(img))
        _retarget(c, image, img.id, cmd, entrypoint)
        spec = await mgr.prepare_rootfs_and_spec(c, img, [])
        await ctrd.container_update_image_spec(cid, str(sorted(img.names)[0]) if img.names else img.id, spec)
        # the new layer and spec are in place: a crash from here on finishes the upgrade
        marker.update(Phase="start", Older=c.meta.pop("UpgradeBackups", []))
        mgr.save(c)
        failpoint.crash("upgrade-before-start")
        if was_running:
            await mgr._start_unlocked(c)
    except BaseException as e:
        log.warning("upgrade of %s to %s failed, rolling back: %s", cid[:12], image, e)
        await _roll_back(mgr, c, marker)
        raise
    await _finish(mgr, c, marker)
    mgr.publish(c, "upgrade")


async def _finish(mgr, c, marker: dict) -> None:
    """The upgrade took: drop the marker, then the kept layers (children before parents)."""
    c.meta.pop("Upgrading", None)
    mgr.save(c)
    if mgr.sandbox.disk is not None:  # the old layers' quota filesystems go before the layers do
        await asyncio.to_thread(mgr.sandbox.disk.retire, c)
    for key in [marker["Backup"], *reversed(marker.get("Older") or [])]:
        await mgr.ctrd.snapshot_remove_quietly(key)


def _image_env(img) -> list[str]:
    return list(((img.config.get("config") or {}).get("Env") or [])) if img is not None else []


def rebase_env(env, old_image_env: list[str], new_image_env: list[str]) -> list[str]:
    """Config.Env holds the image's Env merged in at create: on a new image, the entries that came
    from the old image give way to the new image's, the user's own stay."""
    inherited = set(old_image_env) | ({DEFAULT_PATH} if not any(
        e.startswith("PATH=") for e in old_image_env) else set())
    return merge_env(new_image_env, [e for e in env or [] if e not in inherited])


def _retarget(c, image: str, image_id: str, cmd, entrypoint) -> None:
    """The container's config on the new image, its volumes pinned by name."""
    config, host = c.config, c.host_config
    config["Image"] = image
    c.meta["Image"] = image_id
    if cmd:
        config["Cmd"] = list(cmd)
    if entrypoint is not None:
        config["Entrypoint"] = list(entrypoint) or None
    volumes = [m for m in c.meta.get("Mounts") or [] if m.get("Type") == "volume"]
    pinned = {m["Destination"] for m in volumes}
    from pouch.volume import mounts as vmounts
    host["Binds"] = [b for b in host.get("Binds") or [] if vmounts.parse_volume(b).destination not in pinned]
    host["Binds"] += [f"{m['Name']}:{m['Destination']}" + ("" if m.get("RW", True) else ":ro") for m in volumes]
    host["Mounts"] = [m for m in host.get("Mounts") or [] if m.get("Target") not in pinned] or None
    if host["Mounts"] is None:
        host.pop("Mounts")


async def _put_back(ctrd, cid: str, backup: str, image_name: str, spec: dict) -> None:
    """The old writable layer back under the container's key (as the parent of a fresh active
    snapshot: what the container sees is exactly what it had), and the old spec."""
    await ctrd.snapshot_remove_quietly(cid)
    await ctrd.snapshot_prepare(cid, backup, labels={"containerd.io/gc.root": now_rfc3339()})
    await ctrd.container_update_image_spec(cid, image_name, spec)


async def _quiet_quota(aw, cid: str) -> None:
    try:
        await aw
    except Exception as e:  # the layer (and the container) come back regardless
        log.warning("upgrade rollback: disk quota of %s: %s", cid[:12], e)


async def _roll_back(mgr, c, marker: dict) -> None:
    """Old layer, spec and configuration back; started again if it ran before the upgrade."""
    backup, old_meta = marker["Backup"], marker["Meta"]
    disk = mgr.sandbox.disk
    if disk is not None:  # the failed new layer's quota fs, before that layer goes
        await _quiet_quota(disk.drop_layer(c, mgr.ctrd), c.id)
    await _put_back(mgr.ctrd, c.id, backup, marker["Image"], marker["Spec"])
    state = c.meta.get("State")  # what the container is now (stopped), not what it was
    c.meta.clear()
    c.meta.update(copy.deepcopy(old_meta))  # taken before the marker was set
    c.meta["State"] = state
    c.meta["UpgradeBackups"] = list(old_meta.get("UpgradeBackups") or []) + [backup]
    if disk is not None:  # the fresh layer on the old one keeps the container's quota
        await _quiet_quota(disk.limit_layer(c, mgr.ctrd), c.id)
    mgr.save(c)
    if marker["Running"]:
        try:
            await mgr._start_unlocked(c)
        except Exception as e:  # the old container could not start either: leave it stopped
            log.warning("upgrade rollback: restarting %s failed: %s", c.id[:12], e)


async def recover(mgr, c, task_running: bool) -> bool:
    """After a crash mid-upgrade (the ``Upgrading`` marker is in the container's meta): before
    the new layer and spec were in place, put the old ones back, as a failed upgrade would have;
    after, the upgrade stands.  Returns whether the container must be started again (it ran
    before the upgrade and runs no task now): the caller starts it once the daemon is up, and
    ``finish_after_start`` then completes or rolls back the upgrade."""
    marker = c.meta.get("Upgrading")
    if marker is None:
        return False
    ctrd, cid, backup = mgr.ctrd, c.id, marker["Backup"]
    if marker.get("Phase") == "start":
        if task_running or not marker.get("Running", False):
            await _finish(mgr, c, marker)
            log.warning("container %s: an interrupted upgrade to %s was completed", cid[:12],
                        c.config.get("Image"))
            return False
        return True  # started (and the upgrade finished or rolled back) by finish_after_start
    c.meta.pop("Upgrading")
    if await ctrd.snapshot_exists(backup):  # else the crash came before the commit: nothing moved
        disk = mgr.sandbox.disk
        if disk is not None:  # a quota fs the crashed upgrade made for its new layer
            await _quiet_quota(disk.drop_layer(c, ctrd), cid)
        await _put_back(ctrd, cid, backup, marker["Image"], marker["Spec"])
        c.meta["UpgradeBackups"] = list(c.meta.get("UpgradeBackups") or []) + [backup]
        if disk is not None:
            await _quiet_quota(disk.limit_layer(c, ctrd), cid)
    log.warning("container %s: an upgrade was interrupted; rolled back", cid[:12])
    mgr.save(c)
    return bool(marker.get("Running", False))


async def finish_after_start(mgr, c) -> None:
    """Start a container whose upgrade a crash interrupted, as that upgrade would have: on the
    new image if it was in place (rolling back to the old one if that start fails), else on the
    old one it was put back on."""
    async with mgr._locked(c.id):
        marker = c.meta.get("Upgrading")
        try:
            await mgr._start_unlocked(c)
        except Exception as e:
            if marker is None:
                log.warning("restarting %s after an interrupted upgrade failed: %s", c.id[:12], e)
                return
            log.warning("interrupted upgrade of %s: the new image does not start (%s); rolling back",
                        c.id[:12], e)
            await _roll_back(mgr, c, marker)
            return
        if marker is not None:
            await _finish(mgr, c, marker)
            log.warning("container %s: an interrupted upgrade to %s was completed", c.id[:12],
                        c.config.get("Image"))
