"""``GET /containers/{id}/changes`` (``docker diff``): what a container changed in its filesystem.

With the overlayfs snapshotter the container's writable layer is its snapshot's upper directory:
every entry there was added (absent from the image's layers) or changed (present below), and an
overlay whiteout (a 0/0 character device) is a deletion.  Mount points the runtime had to create
for pouchd's own mounts (/etc/hosts, /etc/resolv.conf, ...) are not the user's changes and are
left out, as Docker keeps them in an init layer.  Kinds: 0 changed, 1 added, 2 deleted.
"""
from __future__ import annotations

import os
import stat

from pouch.errtypes import NotImplementedYet

from ..ctrd.client import Ctrd, mounts_to_dicts

CHANGED, ADDED, DELETED = 0, 1, 2


async def container_changes(ctrd: Ctrd, cid: str) -> list[dict]:
    mounts = mounts_to_dicts(await ctrd.snapshot_mounts(cid))
    if len(mounts) != 1 or mounts[0]["type"] != "overlay":
        raise NotImplementedYet("container changes need the overlayfs snapshotter")
    opts = dict(o.split("=", 1) for o in mounts[0]["options"] if "=" in o)
    upper, lowers = opts["upperdir"], [d for d in opts.get("lowerdir", "").split(":") if d]
    spec = await ctrd.container_spec(cid)
    ours = {m["destination"] for m in spec.get("mounts", [])}
    return walk_upper(upper, lowers, ours)


def walk_upper(upper: str, lowers: list[str], mount_points: set[str] = frozenset()) -> list[dict]:
    """The changes an overlay upper dir records, sorted by path."""
    out = []
    skipped: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(upper):
        rel_dir = os.path.relpath(dirpath, upper)
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            path = "/" + os.path.normpath(os.path.join(rel_dir, name)).lstrip("./")
            st = os.lstat(full)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                out.append({"Path": path, "Kind": DELETED})
                continue
            below = any(os.path.lexists(os.path.join(low, path.lstrip("/"))) for low in lowers)
            if path in mount_points and not below and _empty(full, st):
                skipped.add(path)
                continue  # made by the runtime to mount over
            if path == "/etc/mtab" and not below and stat.S_ISLNK(st.st_mode) \
                    and os.readlink(full) == "/proc/mounts":
                skipped.add(path)
                continue  # pouchd's own (create_checks.ensure_mtab), as Docker's init layer
            out.append({"Path": path, "Kind": CHANGED if below else ADDED})
    # a directory copied up only to hold what was skipped above is no change of the user's
    changed = {c["Path"] for c in out}
    out = [c for c in out if not (c["Kind"] == CHANGED and any(p.startswith(c["Path"] + "/") for p in skipped)
                                  and not any(p.startswith(c["Path"] + "/") for p in changed))]
    return sorted(out, key=lambda c: c["Path"])


def _empty(path: str, st: os.stat_result) -> bool:
    if stat.S_ISDIR(st.st_mode):
        return not os.listdir(path)
    return stat.S_ISREG(st.st_mode) and st.st_size == 0
