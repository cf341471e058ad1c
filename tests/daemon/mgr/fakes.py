"""In-memory stand-ins for containerd (Ctrd), the image manager and the sandbox: enough of each
for the managers' rules to run in unit tests, without root, containerd or runc.

FakeCtrd keeps containers, snapshots and tasks in dicts and reports exits on an asyncio queue
the way ctrd's EventWatcher does (``events``); ``exit(cid, status)`` makes a task's process exit.
Hooks (``on_task_start``, ``task_create_gate``) let a test place an exit or a pause at the
moments the state machine cares about.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
from types import SimpleNamespace

from pouch.daemon.ctrd.events import TaskEvent
from pouch.daemon.ctrd.pb.api.types.task import task_pb2
from pouch.errtypes import AlreadyExists, NotFound


class FakeCtrd:
    snapshotter = "overlayfs"

    def __init__(self, root: str) -> None:
        self.root = root
        self.containers: dict[str, dict] = {}
        self.snapshots: dict[str, str] = {}  # key -> parent
        self.tasks: dict[str, SimpleNamespace] = {}
        self.events: asyncio.Queue = asyncio.Queue()
        self.next_pid = 1000
        self.on_task_start = None       # async fn(cid) run inside task_start
        self.task_create_gate: asyncio.Event | None = None  # task_create waits for it
        self.calls: list[str] = []

    # -- containers ------------------------------------------------------------
    async def container_create(self, cid, image, spec, runtime_options, snapshot_key, labels):
        if cid in self.containers:
            raise AlreadyExists(f"container {cid}: already exists")
        self.containers[cid] = {"image": image, "spec": spec, "snapshot": snapshot_key}

    async def container_delete(self, cid):
        if self.containers.pop(cid, None) is None:
            raise NotFound(f"container {cid} not found")

    async def container_spec(self, cid):
        return self.containers[cid]["spec"]

    async def container_update_spec(self, cid, spec):
        self.containers[cid]["spec"] = spec

    # -- snapshots ---------------------------------------------------------------
    async def snapshot_prepare(self, key, parent, labels=None):
        if key in self.snapshots:
            raise AlreadyExists(f"snapshot {key}: already exists")
        self.snapshots[key] = parent
        return await self.snapshot_mounts(key)

    async def snapshot_mounts(self, key):
        if key not in self.snapshots:
            raise NotFound(f"snapshot {key} does not exist")
        d = os.path.join(self.root, "snapshots", key)
        os.makedirs(os.path.join(d, "etc"), exist_ok=True)
        return [SimpleNamespace(type="bind", source=d, options=["rbind", "rw"])]

    async def snapshot_remove(self, key):
        if self.snapshots.pop(key, None) is None:
            raise NotFound(f"snapshot {key} does not exist")

    # -- tasks -----------------------------------------------------------------
    async def task_create(self, cid, mounts, stdin, stdout, stderr, tty, options=None, checkpoint=None):
        self.calls.append("task_create")
        if self.task_create_gate is not None:
            await self.task_create_gate.wait()
        if cid not in self.containers:
            raise NotFound(f"container {cid} not found")
        if cid in self.tasks:
            raise AlreadyExists(f"task {cid}: already exists")
        self.next_pid += 1
        self.tasks[cid] = SimpleNamespace(id=cid, pid=self.next_pid, status=task_pb2.CREATED, exit_status=0)
        return self.next_pid

    async def task_start(self, cid, exec_id=""):
        t = self._task(cid)
        t.status = task_pb2.RUNNING
        if self.on_task_start is not None:
            await self.on_task_start(cid)
        return t.pid

    async def task_kill(self, cid, sig, all=False):
        t = self._task(cid)
        if t.status != task_pb2.STOPPED:
            self.exit(cid, 128 + int(sig))

    async def task_delete(self, cid):
        t = self.tasks.pop(cid, None)
        if t is None:
            raise NotFound(f"task {cid} not found")
        return SimpleNamespace(exit_status=t.exit_status)

    async def task_get(self, cid, exec_id=""):
        return self._task(cid)

    async def task_list(self):
        return list(self.tasks.values())

    async def task_pause(self, cid):
        self._task(cid).status = task_pb2.PAUSED

    async def task_resume(self, cid):
        self._task(cid).status = task_pb2.RUNNING

    async def task_pids(self, cid):
        return [self._task(cid).pid]

    def _task(self, cid):
        t = self.tasks.get(cid)
        if t is None:
            raise NotFound(f"task {cid} not found")
        return t

    def exit(self, cid: str, status: int) -> None:
        """The task's process exits: containerd marks it stopped and sends /tasks/exit."""
        t = self._task(cid)
        t.status, t.exit_status = task_pb2.STOPPED, status
        self.events.put_nowait(TaskEvent("/tasks/exit", cid, "", t.pid, status))

    # -- content / leases (ImageManager) ----------------------------------------------
    @contextlib.asynccontextmanager
    async def lease(self):
        yield


class FakeImages:
    """The image manager as ContainerManager sees it: one image, lookups by name or id."""

    def __init__(self) -> None:
        self.img = SimpleNamespace(id="sha256:" + "ab" * 32, names={"docker.io/library/busybox:latest"},
                                   chain_id="sha256:" + "cd" * 32,
                                   config={"config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]}})
        self.by_id = {self.img.id: self.img}

    def get(self, ref: str):
        if ref in ("busybox", "busybox:latest", self.img.id):
            return self.img
        raise NotFound(f"No such image: {ref}")

    async def ensure_unpacked(self, img) -> None:
        pass


class FakeSandbox:
    """SandboxHooks without network, volumes, lxcfs or quota: records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def prepare(self, c, img, layer_dirs):
        self.calls.append(("prepare", c.id))
        c.meta.setdefault("NetworkSettings", {"Networks": {}, "Ports": {}, "SandboxKey": ""})
        return [], None

    async def apply_quota(self, c, upperdir):
        pass

    async def before_start(self, c):
        self.calls.append(("before_start", c.id))
        return None

    async def after_stop(self, c):
        self.calls.append(("after_stop", c.id))

    async def restored(self, c):
        pass

    async def release(self, c, remove_volumes=False):
        self.calls.append(("release", c.id))

    def release_storage(self, c, remove_volumes=False):
        self.calls.append(("release_storage", c.id))

    async def release_network(self, c):
        self.calls.append(("release_network", c.id))

    async def update_resources(self, c, changes):
        return {}
