"""Shim groups: which containers share one containerd runc v2 shim process.

containerd 1.6's runc v2 shim (``io.containerd.runc.v2``) serves from one process every
container whose OCI spec carries the same ``io.containerd.runc.v2.group`` annotation (or, for
Kubernetes pods, ``io.kubernetes.cri.sandbox-id``): the first task create of a group starts the
shim, the next ones find its socket and join it, and the shim ignores containerd's shutdown
request until its last container's task is deleted, then exits.  One shim costs ~10 MB; a group of
N running containers costs one shim plus a little per container.

The policy (pouchd ``--shim-group-size N``, default ``DEFAULT_SIZE``): at create, a container
joins the fullest group of its runtime that has fewer than N members (members are the containers
assigned to it, running or not, until they are removed), else opens a new one.  The group is fixed
for the container's life (it is in the spec containerd keeps, and in the container's record, so a
restarted pouchd rebuilds the membership).  A container keeps a shim of its own when N <= 1, when
its runtime cannot share one (``Runtime.shim_group`` False: gVisor), or when its own
SpecAnnotation already names a group (the user's grouping wins).

What a group shares is its shim only: stop, kill, rm, pause, exec, update of one member go to that
member alone.  What it also shares is the shim's fate: a shim killed takes every member's task
with it (containerd reports each one's exit), so N bounds that blast radius as well as the memory.
"""
from __future__ import annotations

import secrets

GROUP_ANNOTATION = "io.containerd.runc.v2.group"
GROUP_LABELS = (GROUP_ANNOTATION, "io.kubernetes.cri.sandbox-id")  # what the runc v2 shim groups by
DEFAULT_SIZE = 16


class ShimGroups:
    """Group membership of one container manager: group id -> member container ids."""

    def __init__(self, size: int = 1) -> None:
        self.size = size
        self.members: dict[str, set[str]] = {}
        self.runtime_of: dict[str, str] = {}  # group id -> runtime name

    def wants_group(self, config: dict, runtime) -> bool:
        annotations = config.get("SpecAnnotation") or {}
        return (self.size > 1 and getattr(runtime, "shim_group", True)
                and not (isinstance(annotations, dict) and any(k in annotations for k in GROUP_LABELS)))

    def assign(self, cid: str, runtime: str) -> str:
        """The group ``cid`` joins (now a member of it)."""
        best = None
        for gid, members in self.members.items():
            if self.runtime_of[gid] == runtime and len(members) < self.size and (
                    best is None or len(members) > len(self.members[best])):
                best = gid
        if best is None:
            best = "pouch-" + secrets.token_hex(8)
            self.members[best], self.runtime_of[best] = set(), runtime
        self.members[best].add(cid)
        return best

    def adopt(self, cid: str, gid: str, runtime: str) -> None:
        """A container restored with its record's group."""
        if gid:
            self.members.setdefault(gid, set()).add(cid)
            self.runtime_of.setdefault(gid, runtime)

    def release(self, cid: str, gid: str) -> None:
        """``cid`` is removed: its place in the group is free."""
        members = self.members.get(gid)
        if members is None:
            return
        members.discard(cid)
        if not members:
            self.members.pop(gid, None)
            self.runtime_of.pop(gid, None)

    def annotate(self, c, spec: dict, runtime) -> None:
        """Put ``c``'s group into its spec, assigning one first if it has none yet and wants one."""
        if not c.private.shim_group and self.wants_group(c.config, runtime):
            c.private.shim_group = self.assign(c.id, runtime.name)
        if c.private.shim_group:
            spec.setdefault("annotations", {})[GROUP_ANNOTATION] = c.private.shim_group
