"""Helper process for ``cp`` (the archive API): stat, tar or untar a path *inside* a container root.

Run by pouchd as ``python -m pouch.daemon.chroot_tar OP ROOT PATH [OPTIONS]``.  It imports what it
needs, then chroots into ROOT (``/proc/<pid>/root`` of a running container, a mounted snapshot of
a stopped one) before touching PATH, so every symlink in the container, absolute or ``..``,
resolves inside the container and never to the host's files (what Docker's chrootarchive does).

OP:
  stat PATH          print {"name","size","mode","mtime","linkTarget"} (mode in Go FileMode bits)
  get PATH           write PATH's stat (as for stat) and a newline, then a tar of PATH, entries
                     under PATH's base name ("." for "dir/."), to stdout
  put DIR [--no-overwrite-dir-non-dir] [--chown UID:GID]
                     extract the tar on stdin into the existing directory DIR
Exit status: 0 ok; 2 no such path; 3 not a directory; 4 would replace a dir by a non-dir (or
the reverse); 1 anything else (message on stderr).
"""
from __future__ import annotations

import json
import os
import stat
import sys
import tarfile
import time

NOT_FOUND, NOT_DIR, TYPE_CLASH = 2, 3, 4

# Go's os.FileMode type bits, which Docker clients read from X-Docker-Container-Path-Stat
_GO_TYPE = [(stat.S_ISDIR, 1 << 31), (stat.S_ISLNK, 1 << 27), (stat.S_ISBLK, 1 << 26),
            (stat.S_ISFIFO, 1 << 25), (stat.S_ISSOCK, 1 << 24), (stat.S_ISCHR, (1 << 26) | (1 << 21))]


def go_mode(st_mode: int) -> int:
    mode = stat.S_IMODE(st_mode) & 0o777
    for test, bit in _GO_TYPE:
        if test(st_mode):
            mode |= bit
    if st_mode & stat.S_ISUID:
        mode |= 1 << 23
    if st_mode & stat.S_ISGID:
        mode |= 1 << 22
    if st_mode & stat.S_ISVTX:
        mode |= 1 << 20
    return mode


def _resolve(path: str) -> str:
    """Follow a trailing symlink unless the path ends in "/" or "/." (as Docker does)."""
    if path.endswith(("/", "/.")):
        return path
    return os.path.realpath(path) if os.path.islink(path) else path


def path_stat(path: str) -> dict:
    # a trailing "/" or "/." means the directory a symlink points to; else the link itself
    st = os.stat(path) if path.endswith(("/", "/.")) else os.lstat(path)
    target = ""
    if stat.S_ISLNK(st.st_mode):
        target = os.path.realpath(path)
    mtime = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(st.st_mtime)) + \
        ".%09dZ" % (st.st_mtime_ns % 1_000_000_000)
    return {"name": os.path.basename(path.rstrip("/")) or "/", "size": st.st_size,
            "mode": go_mode(st.st_mode), "mtime": mtime, "linkTarget": target}


def get(path: str, out) -> None:
    src = path  # a trailing symlink is archived as the link (the client follows it with -L)
    os.lstat(src)
    base = "." if path.endswith("/.") else os.path.basename(path.rstrip("/")) or "."
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.add(src, arcname=base, recursive=True)


def export(out) -> None:
    """The whole root filesystem as a tar (``docker export``): one filesystem only, so the
    container's /proc, /sys, /dev and volumes are left out (their mount points stay, empty)."""
    root_dev = os.lstat("/").st_dev
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for top, dirs, files in os.walk("/"):
            keep = []
            for name in sorted(dirs):
                p = os.path.join(top, name)
                tar.add(p, arcname=p.lstrip("/"), recursive=False)
                if os.lstat(p).st_dev == root_dev:
                    keep.append(name)
            dirs[:] = keep
            for name in sorted(files):
                p = os.path.join(top, name)
                try:
                    if os.lstat(p).st_dev != root_dev:
                        continue  # a file bind-mounted over the rootfs (/etc/hosts, ...)
                    tar.add(p, arcname=p.lstrip("/"), recursive=False)
                except FileNotFoundError:
                    continue  # gone while we walked (a running container)


def put(dest: str, src, no_overwrite_dir_non_dir: bool, chown: tuple[int, int] | None) -> int:
    dest = _resolve(dest)
    if not os.path.isdir(dest):
        return NOT_DIR
    with tarfile.open(fileobj=src, mode="r|") as tar:
        for member in tar:
            parts = member.name.split("/")
            if member.name.startswith("/") or ".." in parts:
                sys.stderr.write(f"invalid archive entry {member.name!r}: it leaves the destination\n")
                return 1
            target = os.path.join(dest, member.name)
            if no_overwrite_dir_non_dir and os.path.lexists(target):
                if os.path.isdir(target) != member.isdir():
                    sys.stderr.write(f"cannot overwrite {'directory' if os.path.isdir(target) else 'non-directory'} "
                                     f"{target!r} with {'directory' if member.isdir() else 'non-directory'}\n")
                    return TYPE_CLASH
            if chown is not None:
                member.uid, member.gid = chown
                member.uname = member.gname = ""
            tar.extract(member, dest, numeric_owner=True, **_EXTRACT_KW)
    return 0


# the root is the container's, so nothing the archive names can reach the host; keep owners,
# modes and links as given (the 'fully_trusted' filter where this Python has filters)
_EXTRACT_KW = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}


def main(argv: list[str]) -> int:
    op, root, path, *opts = argv
    os.chroot(root)
    os.chdir("/")
    path = "/" + path.lstrip("/") if path not in ("", ".") else "/"
    try:
        if op == "stat":
            sys.stdout.write(json.dumps(path_stat(path)))
        elif op == "get":
            st = path_stat(path)  # the archive API sends it as a header before the tar
            sys.stdout.buffer.write(json.dumps(st).encode() + b"\n")
            get(path, sys.stdout.buffer)
        elif op == "export":
            export(sys.stdout.buffer)
        elif op == "put":
            chown = None
            if "--chown" in opts:
                uid, gid = opts[opts.index("--chown") + 1].split(":")
                chown = (int(uid), int(gid))
            return put(path, sys.stdin.buffer, "--no-overwrite-dir-non-dir" in opts, chown)
        else:
            sys.stderr.write(f"unknown operation {op}\n")
            return 1
    except FileNotFoundError as e:
        sys.stderr.write(f"Could not find the file {e.filename or path} in container\n")
        return NOT_FOUND
    except NotADirectoryError:
        return NOT_DIR
    except (OSError, tarfile.TarError) as e:
        sys.stderr.write(f"{e}\n")
        return 1
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
