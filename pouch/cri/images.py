"""The CRI ImageService over the image manager and puller of containerd namespace k8s.io."""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time

from pouch.errtypes import InvalidArgument, NotFound
from pouch.registry import Credentials
from pouch.registry.credentials import request_auth
from pouch.registry.reference import registry_key

from .pb import api_pb2 as pb
from .stats import dir_usage


def _uid_user(cfg: dict) -> tuple[pb.Int64Value | None, str]:
    user = ((cfg.get("config") or {}).get("User") or "").split(":")[0]
    if user.isdigit():
        return pb.Int64Value(value=int(user)), ""
    return None, user


def credentials(auth: pb.AuthConfig) -> Credentials | None:
    user, password = auth.username, auth.password
    if not user and auth.auth:
        try:
            user, _, password = base64.b64decode(auth.auth).decode().partition(":")
        except (binascii.Error, ValueError):
            raise InvalidArgument("auth is not base64(user:password)") from None
    return Credentials(user, password) if user else None


def auth_applies(server_address: str, domain: str) -> bool:
    """Whether an auth config for ``server_address`` (empty: the image's registry) is meant for
    the registry ``domain`` (host[:port]; docker.io under any of its names)."""
    if not server_address:
        return True
    key = registry_key(server_address)
    if key != registry_key("docker.io"):
        key = key.split("/")[0]  # host[:port] of "https://host:port/v2/"
    return key == registry_key(domain)


class ImageService:
    def __init__(self, images, puller, registry, users_of, snapshot_root: str, period: int) -> None:
        self.images = images          # ImageManager on k8s.io
        self.puller = puller
        self.registry = registry
        self.users_of = users_of
        self.snapshot_root = snapshot_root
        self.period = max(int(period), 1)
        self._fs: tuple[float, int, int] | None = None

    def _image(self, img) -> pb.Image:
        uid, username = _uid_user(img.config)
        out = pb.Image(id=img.id, repo_tags=img.repo_tags, repo_digests=img.repo_digests, size=img.size,
                       username=username, spec=pb.ImageSpec(image=img.id))
        if uid is not None:
            out.uid.CopyFrom(uid)
        return out

    async def ListImages(self, req, ctx):
        want = req.filter.image.image
        if want:
            try:
                return pb.ListImagesResponse(images=[self._image(self.images.get(want))])
            except NotFound:
                return pb.ListImagesResponse()
        return pb.ListImagesResponse(images=[self._image(i) for i in self.images.list()])

    async def ImageStatus(self, req, ctx):
        if not req.image.image:
            raise InvalidArgument("image must not be empty")
        try:
            img = self.images.get(req.image.image)
        except NotFound:
            return pb.ImageStatusResponse()
        info = {}
        if req.verbose:
            info["info"] = json.dumps({"id": img.id, "chainID": img.chain_id, "manifest": img.manifest_digest,
                                       "imageSpec": img.config})
        return pb.ImageStatusResponse(image=self._image(img), info=info)

    async def PullImage(self, req, ctx):
        from pouch.daemon.mgr.pull import to_reference
        if not req.image.image:
            raise InvalidArgument("image must not be empty")
        ref = to_reference(req.image.image)
        creds = credentials(req.auth) if req.HasField("auth") else None
        if creds is not None and not auth_applies(req.auth.server_address, ref.domain):
            creds = None  # kubelet's auth for another registry: never sent to this one
        with request_auth(ref.domain, creds):  # this pull's only, for the image's own registry only
            resolved = await self.puller.resolve(ref)
            have = self.images.by_id.get(self.images.by_name.get(str(ref), ""))
            if have is not None and have.manifest_digest == resolved.digest \
                    and resolved.index_digest in (None, have.index_digest):
                # the registry still names what this name holds (kubelet's PullImage of a present
                # image): nothing to fetch, and no lease, content and image-record round trips
                return pb.PullImageResponse(image_ref=have.id)
            await self.puller.pull(ref, resolved=resolved)
        return pb.PullImageResponse(image_ref=self.images.get(str(ref)).id)

    async def RemoveImage(self, req, ctx):
        if not req.image.image:
            raise InvalidArgument("image must not be empty")
        try:
            img = self.images.get(req.image.image)
        except NotFound:
            return pb.RemoveImageResponse()
        try:  # by id, forced: every name goes, then the image
            await self.images.remove(img.id, True, [])
        except NotFound:
            pass
        return pb.RemoveImageResponse()

    async def ImageFsInfo(self, req, ctx):
        now = time.monotonic()
        if self._fs is None or now - self._fs[0] >= self.period:
            size, inodes = await asyncio.to_thread(dir_usage, self.snapshot_root)
            self._fs = (now, size, inodes)
        usage = pb.FilesystemUsage(timestamp=time.time_ns(),
                                   fs_id=pb.FilesystemIdentifier(mountpoint=self.snapshot_root),
                                   used_bytes=pb.UInt64Value(value=self._fs[1]),
                                   inodes_used=pb.UInt64Value(value=self._fs[2]))
        return pb.ImageFsInfoResponse(image_filesystems=[usage], container_filesystems=[usage])
