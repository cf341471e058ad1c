"""User-namespace remapping (`pouchd --userns-remap`): subordinate id ranges and the spec fields.

`IdRange.from_flag("default" | "user[:group]" | "uid[:gid]")` reads /etc/subuid and /etc/subgid;
"default" uses (and, like Docker's "dockremap", creates on first use) the system user
`pouchremap` with a 65536-id range.  `apply_userns(spec, ids)` adds the user namespace and its
uid/gid mappings to an OCI spec; `remap_tree(path, ids)` shifts the owners of a directory tree
into the range (the rootfs a remapped container sees as owned by root).
"""
from __future__ import annotations

import grp
import os
import pwd
import stat
import subprocess
from dataclasses import dataclass

from .errors import InvalidOciConfig

DEFAULT_USER = "pouchremap"
SUBUID, SUBGID = "/etc/subuid", "/etc/subgid"


@dataclass(frozen=True)
class IdRange:
    uid_start: int
    uid_size: int
    gid_start: int
    gid_size: int

    @classmethod
    def from_flag(cls, value: str, subuid: str = SUBUID, subgid: str = SUBGID) -> "IdRange":
        value = (value or "").strip()
        if not value:
            raise InvalidOciConfig("--userns-remap needs a value: default, user[:group] or uid[:gid]")
        if value == "default":
            _ensure_default_user(subuid, subgid)
            value = DEFAULT_USER
        user, _, group = value.partition(":")
        uname, uid = _user(user)
        gname, gid = _group(group) if group else _group(str(pwd.getpwnam(uname).pw_gid) if uname else user)
        u = _lookup(subuid, (uname, str(uid)))
        g = _lookup(subgid, (gname, str(gid), uname, str(uid)) if not group else (gname, str(gid)))
        if u is None:
            raise InvalidOciConfig(f"--userns-remap {value}: no subordinate uid range for {uname or uid} "
                                   f"in {subuid}")
        if g is None:
            raise InvalidOciConfig(f"--userns-remap {value}: no subordinate gid range for {gname or gid} "
                                   f"in {subgid}")
        return cls(u[0], u[1], g[0], g[1])

    def host_uid(self, uid: int) -> int:
        return self.uid_start + uid if 0 <= uid < self.uid_size else self.uid_start

    def host_gid(self, gid: int) -> int:
        return self.gid_start + gid if 0 <= gid < self.gid_size else self.gid_start

    @property
    def key(self) -> str:
        return f"{self.uid_start}.{self.gid_start}"


def _user(user: str) -> tuple[str, int]:
    try:
        ent = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
        return ent.pw_name, ent.pw_uid
    except KeyError:
        if user.isdigit():
            return "", int(user)
        raise InvalidOciConfig(f"--userns-remap: no such user {user!r}") from None


def _group(group: str) -> tuple[str, int]:
    try:
        ent = grp.getgrgid(int(group)) if group.isdigit() else grp.getgrnam(group)
        return ent.gr_name, ent.gr_gid
    except KeyError:
        if group.isdigit():
            return "", int(group)
        raise InvalidOciConfig(f"--userns-remap: no such group {group!r}") from None


def _lookup(path: str, names) -> tuple[int, int] | None:
    """First `name:start:count` line of a subordinate-id file whose name is one of `names`."""
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[0] in [n for n in names if n]:
                    return int(parts[1]), int(parts[2])
    except OSError:
        return None
    return None


def _ensure_default_user(subuid: str, subgid: str) -> None:
    """Create the `pouchremap` system user with a free 65536-id range, as Docker does for dockremap."""
    try:
        pwd.getpwnam(DEFAULT_USER)
    except KeyError:
        r = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/bin/false", DEFAULT_USER],
                           capture_output=True, text=True)
        if r.returncode:
            raise InvalidOciConfig(f"--userns-remap default: cannot create user {DEFAULT_USER}: "
                                   f"{r.stderr.strip()}") from None
    if _lookup(subuid, (DEFAULT_USER,)) and _lookup(subgid, (DEFAULT_USER,)):
        return
    start = _free_start(subuid, subgid)
    span = f"{start}-{start + 65535}"
    r = subprocess.run(["usermod", "--add-subuids", span, "--add-subgids", span, DEFAULT_USER],
                       capture_output=True, text=True)
    if r.returncode:
        raise InvalidOciConfig(f"--userns-remap default: cannot give {DEFAULT_USER} ids {span}: "
                               f"{r.stderr.strip()}")


def _free_start(*paths: str) -> int:
    end = 100000
    for path in paths:
        try:
            with open(path) as f:
                for line in f:
                    parts = line.strip().split(":")
                    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                        end = max(end, int(parts[1]) + int(parts[2]))
        except OSError:
            pass
    return end


def apply_userns(spec: dict, ids: IdRange) -> None:
    """Give the container its own user namespace, root mapped to the start of the range."""
    linux = spec.setdefault("linux", {})
    ns = linux.setdefault("namespaces", [])
    if not any(n.get("type") == "user" for n in ns):
        ns.append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": ids.uid_start, "size": ids.uid_size}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": ids.gid_start, "size": ids.gid_size}]


def remap_tree(path: str, ids: IdRange) -> int:
    """Shift every owner under `path` (not following symlinks) into the range; keeps set-id bits,
    which chown(2) would clear.  Returns the number of entries changed."""
    n = 0

    def shift(p: str) -> None:
        nonlocal n
        st = os.lstat(p)
        uid, gid = ids.host_uid(st.st_uid), ids.host_gid(st.st_gid)
        if (uid, gid) == (st.st_uid, st.st_gid):
            return
        os.lchown(p, uid, gid)
        if not stat.S_ISLNK(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
            os.chmod(p, stat.S_IMODE(st.st_mode))
        n += 1

    shift(path)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            shift(os.path.join(root, name))
    return n


def check_traversable(paths, ids: IdRange) -> None:
    """Every directory above `paths` must let the remapped root through (o+x, or owned by it),
    or runc fails later with a bare "permission denied" (Docker checks the same at start-up)."""
    for path in paths:
        d = os.path.abspath(path)
        while True:
            d = os.path.dirname(d)
            if d == "/":
                break
            try:
                st = os.stat(d)
            except FileNotFoundError:
                continue
            if st.st_mode & stat.S_IXOTH or (st.st_uid == ids.uid_start and st.st_mode & stat.S_IXUSR) or \
                    (st.st_gid == ids.gid_start and st.st_mode & stat.S_IXGRP):
                continue
            raise InvalidOciConfig(f"--userns-remap: {d} (above {path}) is not searchable by the remapped "
                                   f"root {ids.uid_start}:{ids.gid_start}; allow it with chmod o+x {d}")
