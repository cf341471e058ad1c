"""The exec manager: extra processes in running containers (docker exec).

Exec instances live in memory only, as in Docker.  Each gets its own FIFOs;
its exit arrives as a /tasks/exit event with its exec id, which the
container manager's event loop hands to ``handle_exit``.  The ContainerManager builds its
ExecManager (``mgr.containers.execs``) and offers it as ``exec_*`` methods too.

API: ``create(ref, body) -> Exec`` (Moby's exec config: Cmd, Env, User, Tty, AttachStdin, ...),
``get(eid)``, ``start(eid, open_stream=None)`` (detached without ``open_stream``; else one
``AttachSession``, as for attach: -> "ended", "detached" or "gone"), ``resize(eid, h, w)``,
``inspect(eid) -> dict``.

Records: a running exec is listed in its container's ``ExecIDs``; once it exits it leaves that
list, and its record stays inspectable (exit code) among the last ``KEEP_FINISHED`` finished
execs of its container; all go with the container.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
from typing import TYPE_CHECKING

from pouch.errtypes import Conflict, InvalidArgument, NotFound

from ..ctrd.client import Ctrd, mounts_to_dicts
from ..ctrd.events import RESYNC, TaskEvent
from ..ctrd.pb.api.types.task import task_pb2 as task_types
from ..events.exchange import EventExchange
from .attach import AttachSession, OpenStream, detach_sequence
from .io import ProcessIO
from .spec import merge_env, resolve_user, rootfs_layer_dirs

if TYPE_CHECKING:
    from .container import ContainerManager

log = logging.getLogger(__name__)

KEEP_FINISHED = 16  # finished execs kept inspectable per container


class Exec:
    def __init__(self, eid: str, container_id: str, config: dict) -> None:
        self.id = eid
        self.container_id = container_id
        self.config = config
        self.running = False
        self.exit_code: int | None = None
        self.pid = 0
        self.io: ProcessIO | None = None
        self.attached: set[asyncio.Queue] = set()
        self.done = asyncio.Event()
        self.started = asyncio.Event()
        self.starting = False  # between task_exec and task_start's answer
        self.pending_exit: TaskEvent | None = None  # an exit event that overtook task_start's answer
        self.finishing = False  # its exit is being handled (handle_exit)

    def inspect(self) -> dict:
        cfg = self.config
        return {
            "ID": self.id, "Running": self.running, "ExitCode": self.exit_code,
            "ProcessConfig": {"tty": bool(cfg.get("Tty")), "entrypoint": cfg["Cmd"][0],
                              "arguments": cfg["Cmd"][1:], "privileged": bool(cfg.get("Privileged")),
                              "user": cfg.get("User", "")},
            "OpenStdin": bool(cfg.get("AttachStdin")), "OpenStderr": bool(cfg.get("AttachStderr")),
            "OpenStdout": bool(cfg.get("AttachStdout")), "CanRemove": False,
            "ContainerID": self.container_id, "DetachKeys": cfg.get("DetachKeys", ""), "Pid": self.pid,
        }


class _ProcessBase:
    """What every exec of one container run shares: its rootfs layer dirs (for /etc/passwd) and
    its spec's process (user's extra groups, capabilities, cwd, no_new_privs, AppArmor).  Neither
    changes while the container runs (``update`` touches resources, env and annotations only),
    so it is read from containerd once per run instead of twice per exec."""

    __slots__ = ("layer_dirs", "process", "run")

    def __init__(self, run: tuple, layer_dirs: list[str], process: dict) -> None:
        self.run, self.layer_dirs, self.process = run, layer_dirs, process


class ExecManager:
    def __init__(self, containers: "ContainerManager", ctrd: Ctrd, events: EventExchange, fifo_root: str) -> None:
        self.containers = containers
        self.ctrd = ctrd
        self.events = events
        self.fifo_root = fifo_root
        self.execs: dict[str, Exec] = {}
        self._bases: dict[str, _ProcessBase] = {}  # container id -> its current run's _ProcessBase
        self._removing: set[asyncio.Task] = set()  # FIFO directories being removed

    def create(self, ref: str, body: dict) -> Exec:
        c = self.containers.get(ref)
        if c.status != "running":
            raise Conflict(f"Container {c.id} is not running" if c.status != "paused"
                           else f"Container {c.id} is paused, unpause the container before exec")
        cmd = body.get("Cmd")
        if not cmd or not isinstance(cmd, list):
            raise InvalidArgument("No exec command specified")
        e = Exec(secrets.token_hex(32), c.id, body)
        self.execs[e.id] = e
        c.meta["ExecIDs"] = (c.meta.get("ExecIDs") or []) + [e.id]
        self.containers.publish(c, "exec_create: " + " ".join(cmd), {"execID": e.id})
        return e

    def get(self, eid: str) -> Exec:
        e = self.execs.get(eid)
        if e is None:
            raise NotFound(f"No such exec instance: {eid}", "exec", eid)
        return e

    def inspect(self, eid: str) -> dict:
        return self.get(eid).inspect()

    async def start(self, eid: str, open_stream: OpenStream | None = None) -> str:
        """Run the exec; detached without ``open_stream``, else attached until its output ends
        or the client detaches/goes.  A failure to start is told to an attached client on its
        stream (an exit code 126/127 is left for inspect); a detached start raises it."""
        e = self.get(eid)
        if open_stream is None:
            await self._start(e)
            return "ended"
        cfg = e.config
        tty = bool(cfg.get("Tty"))
        keys = detach_sequence(cfg.get("DetachKeys") or None)
        want = {s for s, k in (("stdout", "AttachStdout"), ("stderr", "AttachStderr")) if cfg.get(k, True)}
        stdin = bool(cfg.get("AttachStdin"))
        conn = await open_stream(tty)
        session = AttachSession(conn, e.attached, want, keys,
                                write_stdin=(lambda data: self._write_stdin(e, data)) if stdin else None,
                                close_stdin=(lambda: self.close_stdin(e)) if stdin else None)
        session.subscribe()
        try:
            await self._start(e)
        except Exception as err:
            if e.exit_code is None:  # failed before the process existed: "cannot invoke"
                e.exit_code = 126
            msg = getattr(err, "message", str(err))
            session.conn.write("stderr" if not tty else "stdout", (msg + "\n").encode())
            e.attached.discard(session.queue)
            session.conn.close()
            return "ended"
        return await session.run(ended=lambda: self._tell_exit(conn, e))

    @staticmethod
    def _tell_exit(conn, e: Exec) -> None:
        """The output ended because the process exited: a face that can carry the exit code on
        the stream (pouch's CLI asks for it) saves its client the inspect request."""
        send = getattr(conn, "send_exit_code", None)
        if send is not None and e.exit_code is not None:
            send(e.exit_code)

    async def _process_base(self, c) -> _ProcessBase:
        run = (c.state.get("Pid"), c.state.get("StartedAt"))
        base = self._bases.get(c.id)
        if base is None or base.run != run:
            mounts = mounts_to_dicts(await self.ctrd.snapshot_mounts(c.id))
            spec = await self.ctrd.container_spec(c.id)
            base = _ProcessBase(run, rootfs_layer_dirs(mounts), spec.get("process") or {})
            self._bases[c.id] = base
        return base

    @staticmethod
    async def _write_stdin(e: Exec, data: bytes) -> None:
        if e.io is not None:
            await e.io.write_stdin(data)

    async def _start(self, e: Exec) -> None:
        if e.running or e.exit_code is not None:
            raise Conflict(f"Error: Exec command {e.id} has already run")
        c = self.containers.get(e.container_id)
        if c.status != "running":
            raise Conflict(f"Container {c.id} is not running")
        cfg = e.config
        base = await self._process_base(c)
        image_cfg = (self.containers.images.by_id.get(c.meta["Image"]).config.get("config") or {}) \
            if c.meta["Image"] in self.containers.images.by_id else {}
        user = resolve_user(cfg.get("User") or c.config.get("User") or "", base.layer_dirs)
        env = merge_env(image_cfg.get("Env") or [], (c.config.get("Env") or []) + (cfg.get("Env") or []))
        tty = bool(cfg.get("Tty"))
        if tty and not any(x.startswith("TERM=") for x in env):
            env.append("TERM=xterm")
        sproc = base.process
        if not cfg.get("User"):  # the container's user: also its extra groups (--group-add, CRI's)
            extra = sproc.get("user", {}).get("additionalGids") or []
            if extra:
                user["additionalGids"] = sorted(set(user.get("additionalGids") or []) | set(extra))
        caps = sproc.get("capabilities")
        if cfg.get("Privileged"):  # every capability pouchd holds, as a --privileged container's
            from pouch.oci import caps as capmod
            caps = capmod.oci_capabilities(capmod.compute(None, None, True, capmod.held_capabilities()))
        proc = {"terminal": tty, "user": user, "args": cfg["Cmd"], "env": env,
                "cwd": cfg.get("WorkingDir") or c.config.get("WorkingDir") or sproc.get("cwd", "/"),
                "capabilities": caps, "noNewPrivileges": sproc.get("noNewPrivileges", False)}
        size = cfg.get("ConsoleSize")  # [height, width], as Docker's exec API: the terminal's size at start
        if tty and size and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size):
            proc["consoleSize"] = {"height": size[0], "width": size[1]}
        if sproc.get("apparmorProfile"):
            proc["apparmorProfile"] = sproc["apparmorProfile"]
        io = ProcessIO(os.path.join(self.fifo_root, c.id, "exec-" + e.id[:16]), tty,
                       bool(cfg.get("AttachStdin")), None, e.attached)
        io.open()
        e.io = io
        e.started.set()
        e.starting = True
        try:
            await self.ctrd.task_exec(c.id, e.id, proc, tty, io.stdin_path, io.stdout_path, io.stderr_path)
            e.running = True
            try:
                e.pid = await self.ctrd.task_start(c.id, e.id)
            except NotFound:
                # a quick process's exit event can overtake Start's answer; deleting the process
                # then made Start fail "process does not exist": it ran, its exit is the answer
                if e.pending_exit is None:
                    raise
                e.pid = e.pending_exit.pid
        except Exception as err:
            e.starting, e.pending_exit = False, None
            e.running = False
            e.exit_code = 126 if "permission denied" in str(err) else 127
            io.close()
            e.done.set()
            self._finished(c, e)
            try:
                await self.ctrd.process_delete(c.id, e.id)
            except Exception:
                pass
            msg = getattr(err, "message", str(err))
            if "not found" in msg or "no such file" in msg:
                raise InvalidArgument(msg) from None
            raise
        e.starting = False
        self.containers.publish(c, "exec_start: " + " ".join(cfg["Cmd"]), {"execID": e.id})
        if e.pending_exit is not None:
            ev, e.pending_exit = e.pending_exit, None
            await self.handle_exit(ev)

    async def handle_exit(self, ev: TaskEvent) -> None:
        if ev.topic == RESYNC:
            await self._resync()
            return
        e = self.execs.get(ev.exec_id)
        if e is None or e.exit_code is not None or e.finishing:
            return
        if e.starting:  # handled once task_start has answered (the process must exist until then)
            e.pending_exit = ev
            return
        e.finishing = True
        # DeleteProcess first: the shim answers once it has copied the process's last output into
        # our FIFOs, so the drain in io.close() below gets all of it (`docker exec -i C cat` lost
        # its output when the stream was closed on the exit event alone)
        try:
            await self.ctrd.process_delete(ev.container_id, ev.exec_id)
        except Exception:
            pass
        e.exit_code = ev.exit_status
        e.running = False
        if e.io is not None:  # the attached client's stream ends now (with the exit code, if it asked)
            e.io.close(remove=False)  # the FIFOs (this exec's own) go below, off the event loop
        e.done.set()
        c = self.containers.containers.get(e.container_id)
        if c is not None:
            self._finished(c, e)
            self.containers.publish(c, "exec_die", {"execID": e.id, "exitCode": str(ev.exit_status)})
        if e.io is not None:  # the FIFOs: off the event loop, in the background
            task = asyncio.get_running_loop().create_task(asyncio.to_thread(e.io.remove_fifos))
            self._removing.add(task)
            task.add_done_callback(self._removing.discard)

    def _finished(self, c, e: Exec) -> None:
        """An ended exec leaves its container's ExecIDs; only the last KEEP_FINISHED stay inspectable.
        (Nothing is written: ExecIDs are not kept across a restart, see container_model.)"""
        ids = [i for i in c.meta.get("ExecIDs") or [] if i != e.id]
        c.meta["ExecIDs"] = ids or None
        done = [x for x in self.execs.values() if x.container_id == c.id and x.exit_code is not None]
        for old in done[:-KEEP_FINISHED]:
            self.execs.pop(old.id, None)

    def forget_container(self, cid: str) -> None:
        """The container is gone: so are its exec records."""
        self._bases.pop(cid, None)
        for eid in [i for i, x in self.execs.items() if x.container_id == cid]:
            self.execs.pop(eid, None)

    async def _resync(self) -> None:
        """After an event-stream gap: finish every exec whose process containerd reports gone."""
        for e in [e for e in self.execs.values() if e.running]:
            try:
                p = await self.ctrd.task_get(e.container_id, e.id)
            except NotFound:
                code = 255
            except Exception:
                continue
            else:
                if p.status != task_types.STOPPED:
                    continue
                code = p.exit_status
            await self.handle_exit(TaskEvent("/tasks/exit", e.container_id, e.id, e.pid, code))

    async def close_stdin(self, e: Exec) -> None:
        """Stdin EOF: close our FIFO end and tell the shim to close its own."""
        if e.io is None:
            return
        e.io.close_stdin()
        for attempt in range(5):
            try:
                await self.ctrd.task_close_stdin(e.container_id, e.id)
                return
            except NotFound:  # the process has exited already
                return
            except Exception as err:  # the process waits for this EOF: do not give up at once
                if not e.running:
                    return
                log.warning("exec %s: closing stdin failed (%s), retrying", e.id[:12], err)
                await asyncio.sleep(0.05 * 2 ** attempt)

    async def resize(self, eid: str, h: int, w: int) -> None:
        e = self.get(eid)
        if not e.running:
            raise Conflict(f"exec {e.id} is not running")
        await self.ctrd.task_resize(e.container_id, w, h, e.id)
