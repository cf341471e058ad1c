"""``cp``: stat, read and write paths in a container's filesystem as tar (Moby's archive API).

The work happens in a helper process (``pouch.daemon.chroot_tar``) chrooted into the container's
root, so the container's symlinks cannot point pouchd at the host's files.  For a running
container the root is ``/proc/<pid>/root`` (its mounts included: volumes, tmpfs); a stopped one
has its read-write snapshot mounted on a temporary directory for the duration of the call
(volumes are not part of that view).
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import sys
from typing import AsyncIterator, Awaitable, Callable

from pouch.errtypes import Conflict, InvalidArgument, NotFound

from ..ctrd.client import Ctrd, mounts_to_dicts
from ..ctrd.mount import mounted

from .. import chroot_tar

# run by file in isolated mode: stdlib only, nothing to import once it has chrooted
HELPER = [sys.executable, "-I", chroot_tar.__file__]
_CODES = {2: NotFound, 3: InvalidArgument, 4: Conflict}
CHUNK = 1 << 20


class ContainerArchive:
    def __init__(self, ctrd: Ctrd, root_ids: Callable[[], tuple[int, int]]) -> None:
        self.ctrd = ctrd
        self.root_ids = root_ids  # (uid, gid) of the containers' root (0:0 unless --userns-remap)

    @contextlib.asynccontextmanager
    async def _root(self, c):
        if c.status in ("running", "paused") and c.state.get("Pid"):
            yield f"/proc/{c.state['Pid']}/root"
            return
        mounts = mounts_to_dicts(await self.ctrd.snapshot_mounts(c.id))
        cm = mounted(mounts, prefix="pouch-cp-")
        root = await asyncio.to_thread(cm.__enter__)
        try:
            yield root
        finally:
            await asyncio.to_thread(cm.__exit__, None, None, None)

    async def stat(self, c, path: str) -> dict:
        path = _check_path(path)
        async with self._root(c) as root:
            proc = await _spawn("stat", root, path)
            out, err = await proc.communicate()
        _raise_for(proc.returncode, err, path)
        return json.loads(out)

    async def get(self, c, path: str, send_headers: Callable[[dict], Awaitable[Callable]]) -> None:
        """Stream a tar of ``path``: ``send_headers(stat)`` returns the body writer."""
        path = _check_path(path)
        async with self._root(c) as root:
            proc = await _spawn("get", root, path)  # its first line is the stat, then the tar
            try:
                line = await proc.stdout.readline()
                if not line.endswith(b"\n"):
                    await proc.wait()
                    _raise_for(proc.returncode or 1, await proc.stderr.read(), path)
                write = await send_headers(json.loads(line))
                while chunk := await proc.stdout.read(CHUNK):
                    await write(chunk)
                await proc.wait()
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()

    async def export(self, c, send_headers: Callable[[], Awaitable[Callable]]) -> None:
        """Stream the container's root filesystem as a tar (``docker export``)."""
        async with self._root(c) as root:
            proc = await _spawn("export", root, "/")
            try:
                first = await proc.stdout.read(CHUNK)
                if not first:
                    await proc.wait()
                    _raise_for(proc.returncode or 1, await proc.stderr.read(), "/")
                write = await send_headers()
                await write(first)
                while chunk := await proc.stdout.read(CHUNK):
                    await write(chunk)
                await proc.wait()
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()

    async def put(self, c, path: str, body: AsyncIterator[bytes], no_overwrite_dir_non_dir: bool,
                  copy_uid_gid: bool) -> None:
        path = _check_path(path)
        if c.host_config.get("ReadonlyRootfs"):
            raise Conflict(f"container {c.id[:12]} has a read-only root filesystem")
        opts = ["--no-overwrite-dir-non-dir"] if no_overwrite_dir_non_dir else []
        if not copy_uid_gid:
            uid, gid = self.root_ids()
            opts += ["--chown", f"{uid}:{gid}"]
        async with self._root(c) as root:
            proc = await _spawn("put", root, path, *opts, stdin=True)
            try:
                async for chunk in body:
                    proc.stdin.write(chunk)
                    await proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the helper stopped reading: its exit status says why
            finally:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    proc.stdin.close()
            err = await proc.stderr.read()
            await proc.wait()
        _raise_for(proc.returncode, err, path)


def stat_header(st: dict) -> str:
    return base64.b64encode(json.dumps(st).encode()).decode()


def _check_path(path: str) -> str:
    """The container path to use: a relative one is relative to the container's / (as Docker
    and Pouch take it)."""
    if not path:
        raise InvalidArgument("path must not be empty")
    return path if path.startswith("/") else "/" + path


async def _spawn(op: str, root: str, path: str, *opts: str, stdin: bool = False):
    return await asyncio.create_subprocess_exec(
        *HELPER, op, root, path, *opts, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


def _raise_for(code: int, err: bytes, path: str) -> None:
    if code == 0:
        return
    text = err.decode(errors="replace").strip().splitlines()
    msg = text[-1] if text else f"cp helper failed with status {code}"
    if code == 2:
        msg = f"Could not find the file {path} in container"
    elif code == 3:
        msg = f"extraction point is not a directory: {path}"
    raise _CODES.get(code, InvalidArgument)(msg)
