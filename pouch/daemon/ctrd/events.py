"""Watch containerd's event stream and queue the task events pouchd acts on.

ctrd never calls a manager: it decodes /tasks/exit and /tasks/oom envelopes
into ``TaskEvent`` records and puts them on an asyncio.Queue that the
container manager consumes.  The subscription is re-established when
containerd restarts; ``connected`` is set whenever a subscription is live.

Events published while no subscription was live are lost, so after each
resubscription the watcher resyncs: it queues a ``/tasks/exit`` for every task
containerd reports stopped, then one ``RESYNC`` event (``exec_id="*"``) on
which the exec manager checks its running execs the same way.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import grpc

from .client import Ctrd, timestamp_to_ns
from .pb.api.events import task_pb2
from .pb.api.types.task import task_pb2 as task_types

RESYNC = "/pouch/resync"

log = logging.getLogger(__name__)

TOPICS = {
    "/tasks/exit": task_pb2.TaskExit,
    "/tasks/oom": task_pb2.TaskOOM,
}


@dataclass
class TaskEvent:
    topic: str
    container_id: str
    exec_id: str = ""
    pid: int = 0
    exit_status: int = 0
    exited_at_ns: int = 0


class EventWatcher:
    def __init__(self, ctrd: Ctrd) -> None:
        self.ctrd = ctrd
        self.queue: asyncio.Queue[TaskEvent] = asyncio.Queue()
        self.connected = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    async def _run(self) -> None:
        filters = [f'topic=="{t}",namespace=="{self.ctrd.namespace}"' for t in TOPICS]
        broke = False
        resync: asyncio.Task | None = None
        while True:
            call = self.ctrd.subscribe(filters)
            try:
                # containerd sends no headers until the first event: the
                # subscription is registered once the stream is opened
                self.connected.set()
                if broke:
                    resync = asyncio.get_running_loop().create_task(self._resync())
                async for env in call:
                    ev = self._decode(env)
                    if ev:
                        self.queue.put_nowait(ev)
            except asyncio.CancelledError:
                call.cancel()
                if resync:
                    resync.cancel()
                raise
            except grpc.aio.AioRpcError as e:
                if not broke:
                    log.warning("containerd event stream broke (%s); resubscribing", e.code())
            broke = True
            self.connected.clear()
            await asyncio.sleep(0.2)

    async def _resync(self, delay: float = 0.3) -> None:
        """Queue the exits missed while unsubscribed (duplicates are ignored downstream)."""
        await asyncio.sleep(delay)  # let the new subscription register first
        try:
            tasks = await self.ctrd.task_list()
        except Exception as e:  # containerd went away again: the next resubscription retries
            log.debug("resync failed: %s", e)
            return
        log.info("containerd event stream back; resyncing %d tasks", len(tasks))
        for t in tasks:
            if t.status == task_types.STOPPED:
                self.queue.put_nowait(TaskEvent("/tasks/exit", t.id, "", t.pid, t.exit_status,
                                                timestamp_to_ns(t.exited_at)))
        self.queue.put_nowait(TaskEvent(RESYNC, "", exec_id="*"))

    @staticmethod
    def _decode(env) -> TaskEvent | None:
        cls = TOPICS.get(env.topic)
        if cls is None:
            return None
        msg = cls()
        msg.ParseFromString(env.event.value)
        if env.topic == "/tasks/exit":
            return TaskEvent(env.topic, msg.container_id, msg.id if msg.id != msg.container_id else "",
                             msg.pid, msg.exit_status, timestamp_to_ns(msg.exited_at))
        return TaskEvent(env.topic, msg.container_id)
