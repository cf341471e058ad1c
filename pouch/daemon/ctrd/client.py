"""containerd gRPC client: one channel, the service stubs, and the calls pouchd makes.

Every call carries the containerd namespace; calls made inside ``lease()``
also carry a lease, so content and snapshots written by an unfinished image
import are never garbage-collected under it.  gRPC errors become pouch's
typed errors here (see errors.py) and nowhere else.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import uuid
from typing import AsyncIterator

import grpc
from google.protobuf import any_pb2, field_mask_pb2, timestamp_pb2

from .errors import translate
from .pb.api.services.containers.v1 import containers_pb2 as c_pb, containers_pb2_grpc as c_grpc
from .pb.api.services.content.v1 import content_pb2 as ct_pb, content_pb2_grpc as ct_grpc
from .pb.api.services.diff.v1 import diff_pb2 as d_pb, diff_pb2_grpc as d_grpc
from .pb.api.services.events.v1 import events_pb2 as e_pb, events_pb2_grpc as e_grpc
from .pb.api.services.images.v1 import images_pb2 as i_pb, images_pb2_grpc as i_grpc
from .pb.api.services.leases.v1 import leases_pb2 as l_pb, leases_pb2_grpc as l_grpc
from .pb.api.services.snapshots.v1 import snapshots_pb2 as s_pb, snapshots_pb2_grpc as s_grpc
from .pb.api.services.tasks.v1 import tasks_pb2 as t_pb, tasks_pb2_grpc as t_grpc
from .pb.api.services.version.v1 import version_pb2_grpc as v_grpc
from .pb.api.types import descriptor_pb2, mount_pb2
from .pb.runtime.v2.runc.options import oci_pb2

SPEC_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Spec"
PROCESS_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Process"
RESOURCES_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources"
RUNC_OPTIONS_TYPE = "containerd.runc.v1.Options"
RUNC_V2 = "io.containerd.runc.v2"
DEFAULT_SNAPSHOTTER = "overlayfs"
CHUNK = 1 << 20

_lease: contextvars.ContextVar[str | None] = contextvars.ContextVar("pouch_lease", default=None)


def json_any(type_url: str, obj) -> any_pb2.Any:
    return any_pb2.Any(type_url=type_url, value=json.dumps(obj).encode())


def runc_options(options: dict) -> any_pb2.Any:
    """runc shim options (BinaryName, Root, SystemdCgroup) as containerd's proto."""
    opts = oci_pb2.Options(binary_name=options.get("BinaryName", ""), root=options.get("Root", ""),
                           systemd_cgroup=bool(options.get("SystemdCgroup", False)))
    return any_pb2.Any(type_url=RUNC_OPTIONS_TYPE, value=opts.SerializeToString())


def descriptor(media_type: str, digest: str, size: int) -> descriptor_pb2.Descriptor:
    return descriptor_pb2.Descriptor(media_type=media_type, digest=digest, size=size)


DEADLINE = 120.0  # seconds, for any unary containerd call (a layer's diff apply gets an hour)


class Ctrd:
    """Thin async facade over containerd's services, scoped to one namespace."""

    def __init__(self, address: str, namespace: str = "default",
                 snapshotter: str = DEFAULT_SNAPSHOTTER) -> None:
        self.address = address
        self.namespace = namespace
        self.snapshotter = snapshotter  # overlayfs, or native where overlay cannot work
        opts = [("grpc.max_receive_message_length", 16 << 20),
                ("grpc.max_send_message_length", 16 << 20)]
        self.channel = grpc.aio.insecure_channel("unix://" + address, options=opts)
        ch = self.channel
        self.containers = c_grpc.ContainersStub(ch)
        self.tasks = t_grpc.TasksStub(ch)
        self.content = ct_grpc.ContentStub(ch)
        self.images = i_grpc.ImagesStub(ch)
        self.snapshots = s_grpc.SnapshotsStub(ch)
        self.diff = d_grpc.DiffStub(ch)
        self.leases = l_grpc.LeasesStub(ch)
        self.events = e_grpc.EventsStub(ch)
        self.version_svc = v_grpc.VersionStub(ch)

    async def close(self) -> None:
        await self.channel.close()

    def md(self) -> list[tuple[str, str]]:
        m = [("containerd-namespace", self.namespace)]
        lease = _lease.get()
        if lease:
            m.append(("containerd-lease", lease))
        return m

    async def call(self, method, request, timeout: float | None = None):
        """One unary call; every call has a deadline (DEADLINE unless given), so no lifecycle
        request waits for ever on a containerd that stopped answering."""
        try:
            return await method(request, metadata=self.md(), timeout=timeout or DEADLINE)
        except grpc.aio.AioRpcError as e:
            raise translate(e) from None

    @contextlib.asynccontextmanager
    async def lease(self, expire_seconds: int = 3600):
        """Hold a containerd lease for the calls made inside the block."""
        lid = "pouch-" + uuid.uuid4().hex
        from datetime import datetime, timedelta, timezone
        exp = (datetime.now(timezone.utc) + timedelta(seconds=expire_seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
        await self.call(self.leases.Create, l_pb.CreateRequest(
            id=lid, labels={"containerd.io/gc.expire": exp}))
        tok = _lease.set(lid)
        try:
            yield lid
        finally:
            _lease.reset(tok)
            with contextlib.suppress(Exception):
                await self.call(self.leases.Delete, l_pb.DeleteRequest(id=lid))

    async def version(self) -> str:
        r = await self.call(self.version_svc.Version, __import__("google.protobuf.empty_pb2", fromlist=["Empty"]).Empty())
        return r.version

    # -- content ---------------------------------------------------------
    async def content_info(self, digest: str):
        r = await self.call(self.content.Info, ct_pb.InfoRequest(digest=digest))
        return r.info

    async def content_exists(self, digest: str) -> bool:
        from pouch.errtypes import NotFound
        try:
            await self.content_info(digest)
            return True
        except NotFound:
            return False

    async def write_content(self, digest: str, size: int, chunks: AsyncIterator[bytes] | list[bytes],
                            labels: dict[str, str] | None = None) -> None:
        """Stream bytes into the content store; containerd verifies the digest."""
        ref = "pouch-" + digest

        async def requests():
            yield ct_pb.WriteContentRequest(action=ct_pb.WriteAction.STAT, ref=ref)
            offset = 0
            if isinstance(chunks, list):
                src = _aiter(chunks)
            else:
                src = chunks
            async for data in src:
                for i in range(0, len(data), CHUNK):
                    piece = data[i:i + CHUNK]
                    yield ct_pb.WriteContentRequest(action=ct_pb.WriteAction.WRITE, ref=ref,
                                                    offset=offset, data=piece, total=size)
                    offset += len(piece)
            yield ct_pb.WriteContentRequest(action=ct_pb.WriteAction.COMMIT, ref=ref, total=size,
                                            offset=offset, expected=digest, labels=labels or {})

        try:
            call = self.content.Write(requests(), metadata=self.md())
            async for _ in call:
                pass
        except grpc.aio.AioRpcError as e:
            err = translate(e)
            from pouch.errtypes import Conflict
            if isinstance(err, Conflict):  # already exists
                return
            with contextlib.suppress(Exception):
                await self.call(self.content.Abort, ct_pb.AbortRequest(ref=ref))
            raise err from None

    async def read_content(self, digest: str) -> AsyncIterator[bytes]:
        try:
            call = self.content.Read(ct_pb.ReadContentRequest(digest=digest), metadata=self.md())
            async for r in call:
                yield r.data
        except grpc.aio.AioRpcError as e:
            raise translate(e) from None

    async def read_blob(self, digest: str) -> bytes:
        return b"".join([c async for c in self.read_content(digest)])

    async def update_content_labels(self, digest: str, labels: dict[str, str]) -> None:
        info = ct_pb.Info(digest=digest, labels=labels)
        mask = field_mask_pb2.FieldMask(paths=[f"labels.{k}" for k in labels])
        await self.call(self.content.Update, ct_pb.UpdateRequest(info=info, update_mask=mask))

    # -- images ------------------------------------------------------------
    async def image_put(self, name: str, target: descriptor_pb2.Descriptor,
                        labels: dict[str, str] | None = None) -> None:
        from pouch.errtypes import AlreadyExists
        img = i_pb.Image(name=name, target=target, labels=labels or {})
        try:
            await self.call(self.images.Create, i_pb.CreateImageRequest(image=img))
        except AlreadyExists:
            await self.call(self.images.Update, i_pb.UpdateImageRequest(image=img))

    async def image_list(self):
        r = await self.call(self.images.List, i_pb.ListImagesRequest())
        return list(r.images)

    async def image_delete(self, name: str) -> None:
        await self.call(self.images.Delete, i_pb.DeleteImageRequest(name=name))

    async def collect_garbage(self) -> None:
        """Run containerd's garbage collector now and wait for it (a synchronous delete of an
        empty lease: containerd has no GC call of its own)."""
        lid = "pouch-gc-" + uuid.uuid4().hex
        await self.call(self.leases.Create, l_pb.CreateRequest(id=lid))
        await self.call(self.leases.Delete, l_pb.DeleteRequest(id=lid, sync=True))

    # -- snapshots --------------------------------------------------------
    async def snapshot_exists(self, key: str) -> bool:
        from pouch.errtypes import NotFound
        try:
            await self.call(self.snapshots.Stat, s_pb.StatSnapshotRequest(snapshotter=self.snapshotter, key=key))
            return True
        except NotFound:
            return False

    async def snapshotter_in_use(self, snapshotter: str) -> bool:
        """Whether ``snapshotter`` holds any snapshot in this namespace (False if it is not loaded)."""
        try:
            async for resp in self.snapshots.List(s_pb.ListSnapshotsRequest(snapshotter=snapshotter),
                                                  metadata=self.md(), timeout=20):
                if resp.info:
                    return True
        except grpc.aio.AioRpcError:
            return False
        return False

    async def snapshot_prepare(self, key: str, parent: str, labels: dict[str, str] | None = None):
        r = await self.call(self.snapshots.Prepare, s_pb.PrepareSnapshotRequest(
            snapshotter=self.snapshotter, key=key, parent=parent, labels=labels or {}))
        return list(r.mounts)

    async def snapshot_mounts(self, key: str):
        r = await self.call(self.snapshots.Mounts, s_pb.MountsRequest(snapshotter=self.snapshotter, key=key))
        return list(r.mounts)

    async def snapshot_commit(self, name: str, key: str, labels: dict[str, str] | None = None) -> None:
        await self.call(self.snapshots.Commit, s_pb.CommitSnapshotRequest(
            snapshotter=self.snapshotter, name=name, key=key, labels=labels or {}))

    async def snapshot_remove(self, key: str) -> None:
        await self.call(self.snapshots.Remove, s_pb.RemoveSnapshotRequest(snapshotter=self.snapshotter, key=key))

    async def snapshot_remove_quietly(self, key: str) -> None:
        """Remove a half-made snapshot on an error path (it may not exist)."""
        with contextlib.suppress(Exception):
            await self.snapshot_remove(key)

    async def snapshot_list(self) -> list:
        """Every snapshot of this snapshotter (Info: name, parent, kind, labels)."""
        out = []
        try:
            async for r in self.snapshots.List(s_pb.ListSnapshotsRequest(snapshotter=self.snapshotter),
                                               metadata=self.md(), timeout=60):
                out.extend(r.info)
        except grpc.aio.AioRpcError as e:
            raise translate(e) from None
        return out

    async def snapshot_usage(self, key: str) -> tuple[int, int]:
        r = await self.call(self.snapshots.Usage, s_pb.UsageRequest(snapshotter=self.snapshotter, key=key))
        return r.size, r.inodes

    async def diff_apply(self, desc: descriptor_pb2.Descriptor, mounts) -> descriptor_pb2.Descriptor:
        r = await self.call(self.diff.Apply, d_pb.ApplyRequest(diff=desc, mounts=mounts), timeout=3600)
        return r.applied

    # -- containers -----------------------------------------------------
    async def container_create(self, cid: str, image: str, spec: dict, runtime_options: any_pb2.Any,
                               snapshot_key: str, labels: dict[str, str]) -> None:
        c = c_pb.Container(
            id=cid, image=image, labels=labels,
            runtime=c_pb.Container.Runtime(name=RUNC_V2, options=runtime_options),
            spec=json_any(SPEC_TYPE, spec), snapshotter=self.snapshotter, snapshot_key=snapshot_key)
        await self.call(self.containers.Create, c_pb.CreateContainerRequest(container=c))

    async def container_spec(self, cid: str) -> dict:
        r = await self.call(self.containers.Get, c_pb.GetContainerRequest(id=cid))
        return json.loads(r.container.spec.value)

    async def container_update_spec(self, cid: str, spec: dict) -> None:
        c = c_pb.Container(id=cid, spec=json_any(SPEC_TYPE, spec))
        await self.call(self.containers.Update, c_pb.UpdateContainerRequest(
            container=c, update_mask=field_mask_pb2.FieldMask(paths=["spec"])))

    async def container_image(self, cid: str) -> str:
        r = await self.call(self.containers.Get, c_pb.GetContainerRequest(id=cid))
        return r.container.image

    async def container_update_image_spec(self, cid: str, image: str, spec: dict) -> None:
        c = c_pb.Container(id=cid, image=image, spec=json_any(SPEC_TYPE, spec))
        await self.call(self.containers.Update, c_pb.UpdateContainerRequest(
            container=c, update_mask=field_mask_pb2.FieldMask(paths=["image", "spec"])))

    async def container_delete(self, cid: str) -> None:
        await self.call(self.containers.Delete, c_pb.DeleteContainerRequest(id=cid))

    async def container_list(self):
        r = await self.call(self.containers.List, c_pb.ListContainersRequest())
        return list(r.containers)

    # -- tasks --------------------------------------------------------------
    async def task_create(self, cid: str, rootfs, stdin: str, stdout: str, stderr: str,
                          terminal: bool, options: any_pb2.Any | None = None, checkpoint=None) -> int:
        """``checkpoint``: a descriptor of a CRIU image tar in the content store to restore from."""
        r = await self.call(self.tasks.Create, t_pb.CreateTaskRequest(
            container_id=cid, rootfs=rootfs, stdin=stdin, stdout=stdout, stderr=stderr,
            terminal=terminal, options=options, checkpoint=checkpoint))
        return r.pid

    async def task_start(self, cid: str, exec_id: str = "") -> int:
        r = await self.call(self.tasks.Start, t_pb.StartRequest(container_id=cid, exec_id=exec_id))
        return r.pid

    async def task_get(self, cid: str, exec_id: str = ""):
        r = await self.call(self.tasks.Get, t_pb.GetRequest(container_id=cid, exec_id=exec_id))
        return r.process

    async def task_list(self):
        r = await self.call(self.tasks.List, t_pb.ListTasksRequest())
        return list(r.tasks)

    async def task_delete(self, cid: str):
        return await self.call(self.tasks.Delete, t_pb.DeleteTaskRequest(container_id=cid))

    async def process_delete(self, cid: str, exec_id: str):
        return await self.call(self.tasks.DeleteProcess, t_pb.DeleteProcessRequest(
            container_id=cid, exec_id=exec_id))

    async def task_kill(self, cid: str, signal: int, exec_id: str = "", all: bool = False) -> None:
        await self.call(self.tasks.Kill, t_pb.KillRequest(container_id=cid, exec_id=exec_id,
                                                          signal=signal, all=all))

    async def task_exec(self, cid: str, exec_id: str, process: dict, terminal: bool,
                        stdin: str, stdout: str, stderr: str) -> None:
        await self.call(self.tasks.Exec, t_pb.ExecProcessRequest(
            container_id=cid, exec_id=exec_id, terminal=terminal, stdin=stdin, stdout=stdout,
            stderr=stderr, spec=json_any(PROCESS_TYPE, process)))

    async def task_resize(self, cid: str, width: int, height: int, exec_id: str = "") -> None:
        await self.call(self.tasks.ResizePty, t_pb.ResizePtyRequest(
            container_id=cid, exec_id=exec_id, width=width, height=height))

    async def task_close_stdin(self, cid: str, exec_id: str = "") -> None:
        await self.call(self.tasks.CloseIO, t_pb.CloseIORequest(container_id=cid, exec_id=exec_id,
                                                                stdin=True))

    async def task_pause(self, cid: str) -> None:
        await self.call(self.tasks.Pause, t_pb.PauseTaskRequest(container_id=cid))

    async def task_resume(self, cid: str) -> None:
        await self.call(self.tasks.Resume, t_pb.ResumeTaskRequest(container_id=cid))

    async def task_pids(self, cid: str) -> list[int]:
        r = await self.call(self.tasks.ListPids, t_pb.ListPidsRequest(container_id=cid))
        return [p.pid for p in r.processes]

    async def task_update(self, cid: str, resources: dict) -> None:
        await self.call(self.tasks.Update, t_pb.UpdateTaskRequest(
            container_id=cid, resources=json_any(RESOURCES_TYPE, resources)))

    # -- events ------------------------------------------------------------
    def subscribe(self, filters: list[str]):
        return self.events.Subscribe(e_pb.SubscribeRequest(filters=filters), metadata=self.md())


async def _aiter(items):
    for i in items:
        yield i


def mounts_to_dicts(mounts) -> list[dict]:
    return [{"type": m.type, "source": m.source, "options": list(m.options)} for m in mounts]


def timestamp_to_ns(ts: timestamp_pb2.Timestamp) -> int:
    return ts.seconds * 1_000_000_000 + ts.nanos


Mount = mount_pb2.Mount
