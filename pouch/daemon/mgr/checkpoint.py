"""Checkpoint and restore through CRIU (Pouch's `pouch checkpoint create|ls|rm`, `start --checkpoint`).

A checkpoint is a CRIU image directory ``<dir>/<name>``, ``<dir>`` being the container's
``<home>/containers/<id>/checkpoints`` or the caller's ``--checkpoint-dir``.  It is made with the
container's OCI runtime (``runc checkpoint``, under containerd's runc shim state) and restored by
handing containerd a tar of it as the new task's checkpoint.  CRIU itself is probed once with
``criu check``: where it fails (this kernel's vdso, a missing criu), every call answers 501 with
CRIU's own report, and nothing is changed.
"""
from __future__ import annotations

import asyncio
import os
import re
import shutil

from pouch.errtypes import Conflict, InvalidArgument, NotFound, NotImplementedYet

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
CHECKPOINT_MEDIA = "application/vnd.containerd.container.criu.checkpoint.criu.tar"
_probe: dict[str, tuple[bool, str]] = {}


class CriuUnavailable(NotImplementedYet):
    """501: checkpoint/restore needs a working CRIU and `criu check` says there is none."""


async def criu_report() -> tuple[bool, str]:
    """(works, what `criu check` said), probed once per daemon."""
    if "criu" not in _probe:
        exe = shutil.which("criu") or ("/usr/sbin/criu" if os.path.exists("/usr/sbin/criu") else None)
        if exe is None:
            _probe["criu"] = (False, "criu is not installed (apt-get install criu)")
        else:
            proc = await asyncio.create_subprocess_exec(exe, "check", stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.STDOUT)
            out, _ = await proc.communicate()
            text = out.decode(errors="replace").strip()
            ok = proc.returncode == 0 and "Error" not in text
            errors = [line for line in text.splitlines() if "Error" in line] or text.splitlines()[-1:]
            _probe["criu"] = (ok, "; ".join(errors) if not ok else text)
    return _probe["criu"]


async def require_criu() -> None:
    ok, report = await criu_report()
    if not ok:
        raise CriuUnavailable(f"checkpoint/restore needs CRIU, and `criu check` fails on this host: {report}")


def _dir(c, root: str, checkpoint_dir: str | None) -> str:
    if checkpoint_dir:
        if not os.path.isabs(checkpoint_dir):
            raise InvalidArgument(f"checkpoint dir {checkpoint_dir!r} must be an absolute path")
        return checkpoint_dir
    return os.path.join(root, c.id, "checkpoints")


def _name(name: str) -> str:
    if not name or not NAME_RE.match(name):
        raise InvalidArgument(f"invalid checkpoint name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name


class CheckpointManager:
    def __init__(self, containers, runtime_state_root: str = "/run/containerd/runc") -> None:
        self.containers = containers
        self.state_root = runtime_state_root

    async def create(self, ref: str, body: dict) -> str:
        c = self.containers.get(ref)
        if not isinstance(body, dict):
            raise InvalidArgument("checkpoint options must be a JSON object")
        name = _name(body.get("CheckpointID") or "")
        base = _dir(c, self.containers.root, body.get("CheckpointDir") or None)
        await require_criu()
        if not c.running:
            raise Conflict(f"container {c.id[:12]} is not running: only a running container can be checkpointed")
        path = os.path.join(base, name)
        if os.path.exists(path):
            raise Conflict(f"checkpoint {name} of container {c.id[:12]} already exists")
        rt = self.containers.runtimes.get(c.host_config.get("Runtime"))
        root = rt.options.get("Root") or os.path.join(self.state_root, self.containers.ctrd.namespace)
        os.makedirs(path, mode=0o700)
        args = [rt.path, "--root", root, "checkpoint", "--image-path", path,
                "--work-path", os.path.join(path, "work")]
        if not body.get("Exit"):
            args.append("--leave-running")
        proc = await asyncio.create_subprocess_exec(*args, c.id, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            shutil.rmtree(path, ignore_errors=True)
            raise InvalidArgument(f"checkpoint of {c.id[:12]} failed: {out.decode(errors='replace').strip()}")
        return name

    async def list(self, ref: str, checkpoint_dir: str | None) -> list[str]:
        c = self.containers.get(ref)
        base = _dir(c, self.containers.root, checkpoint_dir)
        await require_criu()
        try:
            return sorted(d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d)))
        except FileNotFoundError:
            return []

    async def delete(self, ref: str, name: str, checkpoint_dir: str | None) -> None:
        c = self.containers.get(ref)
        path = os.path.join(_dir(c, self.containers.root, checkpoint_dir), _name(name))
        await require_criu()
        if not os.path.isdir(path):
            raise NotFound(f"checkpoint {name} of container {c.id[:12]} not found")
        shutil.rmtree(path)

    async def restore_image(self, c, name: str, checkpoint_dir: str | None):
        """The containerd descriptor of checkpoint ``name`` (a tar in the content store) for the
        container's next task; 404 if there is no such checkpoint."""
        path = os.path.join(_dir(c, self.containers.root, checkpoint_dir), _name(name))
        await require_criu()
        if not os.path.isdir(path):
            raise NotFound(f"checkpoint {name} of container {c.id[:12]} not found")
        import hashlib
        data = await asyncio.to_thread(_tar, path)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        ctrd = self.containers.ctrd
        await ctrd.write_content(digest, len(data), [data])
        from ..ctrd.client import descriptor
        return descriptor(CHECKPOINT_MEDIA, digest, len(data))


def _tar(path: str) -> bytes:
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        t.add(path, arcname=".")
    return buf.getvalue()
