"""``commit``: a new image from a container's filesystem changes.

containerd's diff service compares a read-only view of the image's top snapshot with the
container's read-write snapshot and writes the difference as a gzip layer into the content
store; the new config adds its diff id and a history entry (plus Dockerfile-like changes), and
ImageManager.store_image writes manifest, unpacks the layer (the one unpack path) and names it.
"""
from __future__ import annotations

import json
import time
import uuid

from pouch.errtypes import InvalidArgument, NotFound
from pouch.image import archive as arc

from ..ctrd.pb.api.services.diff.v1 import diff_pb2 as d_pb
from ..ctrd.pb.api.services.snapshots.v1 import snapshots_pb2 as s_pb
from .image import UNCOMPRESSED_LABEL, Image, ImageManager, full_name

OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


async def commit(images: ImageManager, container, repo_tag: str | None, comment: str = "",
                 author: str = "", changes: dict | None = None, pauser=None) -> Image:
    """Commit ``container`` (a ContainerManager Container) as a new image named ``repo_tag``.

    With ``pauser`` (the ContainerManager), a running container is paused while its changes are
    read, as Docker does, so the layer is one consistent state; it is resumed even on failure.
    """
    paused = False
    if pauser is not None and container.status == "running":
        await pauser.pause(container.id)
        paused = True
    try:
        return await _commit(images, container, repo_tag, comment, author, changes)
    finally:
        if paused:
            await pauser.unpause(container.id)


async def _commit(images: ImageManager, container, repo_tag: str | None, comment: str,
                  author: str, changes: dict | None) -> Image:
    ctrd = images.ctrd
    base = images.by_id.get(container.meta.get("Image", ""))
    if base is None:
        raise NotFound(f"image of container {container.meta.get('Id', '')[:12]} is gone; cannot commit")
    names = [full_name(repo_tag)] if repo_tag else []
    cid = container.meta["Id"]
    async with ctrd.lease():
        view = f"commit-view-{uuid.uuid4().hex}"
        r = await ctrd.call(ctrd.snapshots.View, s_pb.ViewSnapshotRequest(
            snapshotter=images.ctrd.snapshotter, key=view, parent=base.chain_id))
        try:
            upper = await ctrd.snapshot_mounts(cid)
            d = await ctrd.call(ctrd.diff.Diff, d_pb.DiffRequest(
                left=list(r.mounts), right=upper, media_type=OCI_LAYER_GZIP,
                ref=f"pouch-commit-{uuid.uuid4().hex}"))
        finally:
            try:
                await ctrd.snapshot_remove(view)
            except Exception:
                pass
        layer = d.diff
        info = await ctrd.content_info(layer.digest)
        diff_id = info.labels.get(UNCOMPRESSED_LABEL)
        if not diff_id:
            raise InvalidArgument(f"containerd's diff {layer.digest} carries no uncompressed digest")
        cfg = json.loads(json.dumps(base.config))
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        cfg["created"] = now
        if author:
            cfg["author"] = author
        cfg.setdefault("rootfs", {"type": "layers", "diff_ids": []})["diff_ids"].append(diff_id)
        cfg.setdefault("history", []).append({"created": now, "author": author, "comment": comment,
                                              "created_by": "pouch commit"})
        if changes:
            cfg.setdefault("config", {}).update(changes)
        cfg_bytes = json.dumps(cfg, separators=(",", ":")).encode()
        layers = [(l["digest"], l["size"], l["mediaType"]) for l in base.layers] + \
                 [(layer.digest, layer.size, layer.media_type)]
        manifest = {"schemaVersion": 2, "mediaType": arc.MT_DOCKER_MANIFEST,
                    "config": {"mediaType": arc.MT_DOCKER_CONFIG, "digest": "sha256:" + _sha(cfg_bytes),
                               "size": len(cfg_bytes)},
                    "layers": [{"mediaType": mt, "digest": dg, "size": sz} for dg, sz, mt in layers]}
        mbytes = json.dumps(manifest, separators=(",", ":")).encode()
        return await images.store_image(cfg_bytes, cfg, mbytes, arc.MT_DOCKER_MANIFEST, layers, names,
                                        event="commit")


def _sha(data: bytes) -> str:
    import hashlib
    return hashlib.sha256(data).hexdigest()
