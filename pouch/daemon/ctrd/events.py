"""Watch containerd's event stream and queue the task events pouchd acts on.

ctrd never calls a manager: it decodes /tasks/exit and /tasks/oom envelopes
into ``TaskEvent`` records and puts them on an asyncio.Queue that the
container manager consumes.  The subscription is re-established when
containerd restarts; ``connected`` is set whenever a subscription is live.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import grpc

from .client import Ctrd, timestamp_to_ns
from .pb.api.events import task_pb2

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
        while True:
            call = self.ctrd.subscribe(filters)
            try:
                # containerd sends no headers until the first event: the
                # subscription is registered once the stream is opened
                self.connected.set()
                async for env in call:
                    ev = self._decode(env)
                    if ev:
                        self.queue.put_nowait(ev)
            except asyncio.CancelledError:
                call.cancel()
                raise
            except grpc.aio.AioRpcError as e:
                log.warning("containerd event stream broke (%s); resubscribing", e.code())
            self.connected.clear()
            await asyncio.sleep(0.2)

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
