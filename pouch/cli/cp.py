"""Command: cp (files between a container and the host, through the archive API).

    pouch cp [-a] [-L] CONTAINER:SRC_PATH DEST_PATH|-
    pouch cp [-a] [-L] SRC_PATH|- CONTAINER:DEST_PATH

Docker's rules: a directory is copied with its name into an existing directory, or as the new
name when the destination does not exist; ``SRC/.`` copies a directory's contents; ``-`` is a
tar stream on stdin or stdout.
"""
import os
import sys
import tarfile
import tempfile

from pouch.cli.common import CLIError
from pouch.client.errors import NotFound

_GO_DIR = 1 << 31
_GO_SYMLINK = 1 << 27


def setup(name, parser):
    parser.add_argument("-a", "--archive", action="store_true", help="Archive mode (copy all uid/gid information)")
    parser.add_argument("-L", "--follow-link", action="store_true", help="Always follow symbol link in SRC_PATH")
    parser.add_argument("src")
    parser.add_argument("dest")
    return run_cp


def _split(arg):
    """(container, path) for CONTAINER:PATH; (None, arg) for a local path."""
    if arg.startswith((".", "/")) or ":" not in arg:
        return None, arg
    container, _, path = arg.partition(":")
    return container, path


def run_cp(ctx, args):
    src_c, src = _split(args.src)
    dst_c, dst = _split(args.dest)
    if src_c and dst_c:
        raise CLIError("copying between containers is not supported")
    if not src_c and not dst_c:
        raise CLIError("must specify at least one container source")
    if src_c:
        return _from_container(ctx, args, src_c, _abs(src), dst)
    return _to_container(ctx, args, src, dst_c, _abs(dst))


def _abs(path):
    if not path:
        raise CLIError("path must not be empty")
    return path if path.startswith("/") else "/" + path


def _is_dir(st):
    return bool(st.get("mode", 0) & _GO_DIR)


def _stat(ctx, container, path):
    try:
        return ctx.client.stat_path(container, path)
    except NotFound:
        return None


# -- container -> host -------------------------------------------------------------------

def _from_container(ctx, args, container, src, dst):
    if args.follow_link:
        st = _stat(ctx, container, src)
        if st and st.get("mode", 0) & _GO_SYMLINK and st.get("linkTarget"):
            src = st["linkTarget"]
    try:
        resp, st = ctx.client.get_archive(container, src)
    except NotFound as exc:
        raise CLIError(str(exc))
    with resp:
        if dst == "-":
            while chunk := resp.read(1 << 20):
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
            return 0
        src_dir = _is_dir(st)
        if os.path.isdir(dst):
            _extract(resp, dst, rename=None)
            return 0
        if os.path.lexists(dst):
            if src_dir:
                raise CLIError(f"cannot copy directory {src} to the file {dst}")
        elif dst.endswith("/"):
            raise CLIError(f"destination directory {dst} does not exist")
        parent = os.path.dirname(os.path.abspath(dst))
        if not os.path.isdir(parent):
            raise CLIError(f"destination directory {parent} does not exist")
        if src.endswith("/.") and not os.path.lexists(dst):
            os.mkdir(dst)
            _extract(resp, dst, rename=None)
            return 0
        _extract(resp, parent, rename=os.path.basename(os.path.abspath(dst)))
    return 0


def _extract(stream, dest, rename):
    """Extract the tar ``stream`` into ``dest``; ``rename``: new name of its top-level entry."""
    kw = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            parts = member.name.split("/")
            if member.name.startswith("/") or ".." in parts:
                raise CLIError(f"refusing archive entry {member.name!r}: outside the destination")
            if rename is not None:
                member.name = "/".join([rename] + parts[1:])
            tar.extract(member, dest, numeric_owner=True, **kw)


# -- host -> container -------------------------------------------------------------------

def _to_container(ctx, args, src, container, dst):
    if src == "-":
        st = _stat(ctx, container, dst)
        if st is None or not _is_dir(st):
            raise CLIError(f"destination {container}:{dst} must be a directory")
        ctx.client.put_archive(container, dst, sys.stdin.buffer, no_overwrite_dir_non_dir=True,
                               copy_uid_gid=args.archive)
        return 0
    if args.follow_link:
        src = os.path.realpath(src)
    if not os.path.lexists(src):
        raise CLIError(f"no such file or directory: {src}")
    src_dir = os.path.isdir(src)
    contents = src.endswith("/.")
    st = _stat(ctx, container, dst)
    if st is not None and st.get("mode", 0) & _GO_SYMLINK and st.get("linkTarget"):
        dst = st["linkTarget"]  # a destination symlink is followed once, as docker cp does
        st = _stat(ctx, container, dst)
    if st is not None and _is_dir(st):
        target, name = dst, ("." if contents else os.path.basename(src.rstrip("/")))
    elif st is not None:
        if src_dir:
            raise CLIError(f"cannot copy a directory to the file {container}:{dst}")
        target, name = os.path.dirname(dst) or "/", os.path.basename(dst)
    else:
        if dst.endswith("/"):
            raise CLIError(f"destination directory {container}:{dst} does not exist")
        target, name = os.path.dirname(dst.rstrip("/")) or "/", os.path.basename(dst.rstrip("/"))
    with tempfile.TemporaryFile() as buf:
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.add(src, arcname=name, recursive=True)
        buf.seek(0)
        try:
            ctx.client.put_archive(container, target, buf, no_overwrite_dir_non_dir=True,
                                   copy_uid_gid=args.archive)
        except NotFound as exc:
            raise CLIError(str(exc))
    return 0
