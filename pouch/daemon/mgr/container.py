"""The container manager: lifecycle rules, state, and the meta store for containers.

create -> start -> (pause/unpause) -> stop/kill -> exit -> restart policy or
rest -> remove.  Exits arrive only through ctrd's event queue (``run_events``);
every state change is written to the meta store before it is announced on the
event exchange.  A failed create leaves nothing behind: no meta record, no
containerd container, no snapshot.  A removal drops the record and the name and answers
``wait condition=removed`` (run --rm's exit code) first, then deletes containerd's container and
snapshot before ``rm`` returns; the ids in between are in ``cleaning``.

Every container operation is a method here; the faces (the Moby HTTP routes, and others) only
parse, call one method and serialize.  ``ref`` is a name, an id or a unique id prefix.

- lookup: ``get(ref) -> Container``, ``list(filters=None, all=True, limit=-1)`` (Moby's ``ps``
  filters: status, name, id, label, ancestor, exited, runtime), ``users_of_image(image_id)``;
- lifecycle (each but create takes the container's lock): ``create(body, name)``, ``start``,
  ``stop(ref, timeout)``, ``restart(ref, timeout)``, ``kill(ref, signal)``,
  ``remove(ref, force, volumes)``, ``pause``, ``unpause``, ``rename(ref, new)``,
  ``update(ref, body) -> warnings``, ``upgrade(ref, image, cmd, entrypoint)``,
  ``connect(ref, network, aliases, ip)``, ``disconnect(ref, network)``;
- reading: ``wait(ref, condition) -> exit code``, ``top(ref, ps_args) -> {Titles, Processes}``,
  ``changes(ref) -> [{Path, Kind}]``, ``logs(ref, ...) -> (tty, async iterator of (stream,
  bytes))``, ``resize(ref, h, w)``;
- streams: ``attach(ref, open_stream, stdin=, stdout=, stderr=, logs=, stream=, detach_keys=)``
  joins a client to the main process through an ``AttachSession`` (mgr/attach.py);
- execs (``self.execs``, an ExecManager, mgr/exec.py): ``exec_create(ref, body) -> Exec``,
  ``exec_start(eid, open_stream=None)``, ``exec_inspect(eid)``, ``exec_resize(eid, h, w)``.

Locking: one ``asyncio.Lock`` per container (``Container.lock``), taken by every mutation through
``_locked(ref)``, which also re-checks that the container still exists once the lock is held (a
start that queued behind ``rm -f`` gets NotFound, never a half-recreated container).  A method
holding the lock calls only the ``_unlocked`` variants.  Exits (``handle_exit``) do not take the
lock: a ``stop`` holding it waits for them; auto-remove after an exit runs as its own task (a
``stop`` of a ``--rm`` container returns once it is gone).  A ``kill`` while a stop waits for
the exit signals at once rather than queueing behind that stop.  ``create`` takes no lock: the
container is not visible until its record is complete.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import shutil
import signal as _signal
import time

from pouch import rich
from pouch.oci import hooks as oci_hooks
from pouch.errtypes import (Conflict, InvalidArgument, NotFound, NotModified, PouchError,
                            SystemError_)

from .. import failpoint
from ..ctrd.client import Ctrd, mounts_to_dicts, runc_options
from ..ctrd.errors import runtime_message
from ..ctrd.events import RESYNC, TaskEvent
from ..events.exchange import EventExchange
from ..logger import jsonfile, make_logger
from ..logger.jsonfile import json_log_path
from ..meta.store import MetaStore
from . import restart as restart_policy
from .attach import AttachSession, OpenStream, detach_sequence
from .changes import container_changes
from .container_model import ZERO_TIME, Container, now_rfc3339, parse_rfc3339
from .image import ImageManager
from .io import ProcessIO
from .shimgroup import ShimGroups
from .spec import build_spec, merge_env, rootfs_layer_dirs, signal_number

log = logging.getLogger(__name__)

BUCKET = "containers"
NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


class ContainerManager:
    def __init__(self, store: MetaStore, ctrd: Ctrd, images: ImageManager, events: EventExchange,
                 home: str, run_dir: str, runtimes, sandbox, cgroup_parent: str = "default",
                 oci_hooks_dirs: list[str] | None = None, userns=None, bucket: str = BUCKET) -> None:
        self.store = store
        self.bucket = bucket  # meta store bucket: "containers"; the CRI's manager (k8s.io) has its own
        self.ctrd = ctrd
        self.images = images
        self.events = events
        self.root = os.path.join(home, "containers")
        self.fifo_root = os.path.join(run_dir, "fifo")
        self.runtimes = runtimes  # pouch.runtime.RuntimeRegistry
        self.cgroup_parent = cgroup_parent
        self.containers: dict[str, Container] = {}
        self.names: dict[str, str] = {}
        self.cleaning: set[str] = set()  # removed containers whose containerd objects are still going
        self._after_upgrade_crash: list[str] = []  # restored mid-upgrade: start once the daemon is up
        self.sandbox = sandbox  # SandboxHooks: network, volumes, lxcfs, quota
        self.oci_hooks_dirs = list(oci_hooks_dirs or [])  # OCI hook files (pouch.oci.hooks)
        from .exec import ExecManager
        self.execs = ExecManager(self, ctrd, events, self.fifo_root)
        self.on_resync = None  # the reconciler's repair, run after containerd reconnects
        self.userns = userns  # mgr.userns.UsernsRemap when pouchd runs with --userns-remap
        self.log_defaults = {"Type": "json-file", "Config": {}}  # pouchd --log-driver / --log-opt
        self.shim_groups = ShimGroups()  # containers sharing a runc shim; pouchd sets its size
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        os.makedirs(self.fifo_root, mode=0o700, exist_ok=True)

    # -- lookup -------------------------------------------------------------
    def get(self, ref: str) -> Container:
        if not ref:
            raise InvalidArgument("container name or ID must not be empty")
        ref = ref.lstrip("/")
        if ref in self.containers:
            return self.containers[ref]
        cid = self.names.get(ref)
        if cid:
            return self.containers[cid]
        hits = [c for i, c in self.containers.items() if i.startswith(ref)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}", "container", ref)

    def list(self, filters: dict[str, list[str]] | None = None, all: bool = True,
             limit: int = -1) -> list[Container]:
        """Newest first.  Without ``all`` only running containers (unless a status filter or a
        limit asks for others, as Moby does); ``filters`` as in ``GET /containers/json``."""
        filters = filters or {}
        out = []
        for c in sorted(self.containers.values(), key=lambda c: c.meta["Created"], reverse=True):
            if not all and not c.running and "status" not in filters and limit in (-1, 0, None):
                continue
            if filters and not _match(c, filters):
                continue
            out.append(c)
        return out[:limit] if limit and limit > 0 else out

    @contextlib.asynccontextmanager
    async def _locked(self, ref: str):
        """The container, its lock held; NotFound if it went while we waited for the lock."""
        c = self.get(ref)
        async with c.lock:
            if self.containers.get(c.id) is not c:
                raise NotFound(f"No such container: {ref}", "container", ref)
            yield c

    def users_of_image(self, image_id: str) -> list[str]:
        return [c.id for c in self.containers.values() if c.meta.get("Image") == image_id]

    def save(self, c: Container, eventually: bool = False) -> None:
        """Persist ``c``; ``eventually``: a full disk must not fail the caller (an exit, a removal),
        the store keeps the record and writes it once there is room."""
        c.rev += 1
        if self.containers.get(c.id) is c:  # never resurrect a removed container's record
            if eventually:
                self.store.put_eventually(self.bucket, c.id, c.record())
            else:
                self.store.put(self.bucket, c.id, c.record())

    def publish(self, c: Container, action: str, extra: dict | None = None) -> None:
        attrs = {"name": c.name, "image": c.config.get("Image", "")}
        attrs.update(c.config.get("Labels") or {})
        attrs.update(extra or {})
        self.events.publish("container", action, c.id, attrs)

    # -- create ---------------------------------------------------------------
    async def create(self, body: dict, name: str | None) -> Container:
        if not isinstance(body, dict):
            raise InvalidArgument("container config must be a JSON object")
        image_ref = body.get("Image")
        if not image_ref:
            raise InvalidArgument("image name is required (Config.Image)")
        host = dict(body.get("HostConfig") or {})
        config = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
        if name:
            if not NAME_RE.match(name):
                raise InvalidArgument(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
            name = name.lstrip("/")
            if name in self.names:
                raise Conflict(f'Conflict. The container name "/{name}" is already in use by container '
                               f'"{self.names[name]}". You have to remove (or rename) that container '
                               f'to be able to reuse that name.')
        img = self.images.get(image_ref)
        cid = _specific_id(config.pop("SpecificID", None) or "", self.containers.keys() | self.cleaning)
        # the image's Env is part of the container's (inspect shows PATH), as Docker and Pouch do
        config["Env"] = merge_env((img.config.get("config") or {}).get("Env") or [], config.get("Env") or [])
        host["RestartPolicy"] = restart_policy.validate(host.get("RestartPolicy"), bool(host.get("AutoRemove")))
        runtime = host.get("Runtime") or self.runtimes.default
        if runtime not in self.runtimes.names():
            raise InvalidArgument(f"Unknown runtime specified {runtime}: registered runtimes are "
                                  f"{', '.join(self.runtimes.names())}")
        rt = self.runtimes.get(runtime)
        rt.check_installed()
        if not isinstance(host.get("CgroupParent") or "", str):
            raise InvalidArgument("CgroupParent must be a string")
        host["CgroupParent"] = host.get("CgroupParent") or self.cgroup_parent
        host["Runtime"] = runtime
        log_cfg = host.get("LogConfig") or {}
        if not log_cfg.get("Type"):  # pouchd's --log-driver / --log-opt
            log_cfg = {"Type": self.log_defaults["Type"],
                       "Config": {**self.log_defaults["Config"], **(log_cfg.get("Config") or {})}}
        log_type = log_cfg["Type"]
        host["LogConfig"] = {"Type": log_type, "Config": dict(log_cfg.get("Config") or {})}
        if log_type == "none" and host["LogConfig"]["Config"]:
            raise InvalidArgument("log options are not supported with log driver none")
        make_logger(log_type, host["LogConfig"]["Config"], "0" * 12, os.devnull)  # validates
        if host.get("StopTimeout") is not None or config.get("StopTimeout") is not None:
            try:
                stop_timeout = int(config.get("StopTimeout") or 0)
            except (TypeError, ValueError):
                raise InvalidArgument("StopTimeout must be an integer") from None
            if stop_timeout < 0:
                raise InvalidArgument(f"invalid StopTimeout {stop_timeout}: it must not be negative")
        from .create_checks import amend
        amend(config, host)
        rich.validate(config)
        if rich.launch_env(config):
            config["Env"] = list(config.get("Env") or []) + rich.launch_env(config)
        if not config.get("StopSignal") and rich.stop_signal(config):
            config["StopSignal"] = rich.stop_signal(config)
        if config.get("StopSignal"):
            signal_number(config["StopSignal"])
        host.setdefault("NetworkMode", "default")

        if not name:
            name = cid[:6]
            while name in self.names:
                name = cid[: len(name) + 1]
        config.setdefault("Image", image_ref)
        cdir = os.path.join(self.root, cid)
        meta = {
            "Id": cid, "Name": name, "Created": now_rfc3339(), "Image": img.id,
            "Config": config, "HostConfig": host,
            "State": {"Status": "created", "Running": False, "Paused": False, "Restarting": False,
                      "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
                      "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME},
            "RestartCount": 0, "Driver": self.ctrd.snapshotter, "Platform": "linux",
            "LogPath": json_log_path(cdir, cid, host["LogConfig"]["Config"]) if log_type == "json-file" else "",
            "ResolvConfPath": "", "HostnamePath": "", "HostsPath": "",
            "SnapshotKey": cid, "ManualStop": False, "MountLabel": "", "ProcessLabel": "",
            "AppArmorProfile": "", "ExecIDs": None,
            "Internal": {"NetworkingConfig": body.get("NetworkingConfig") or {}},  # --ip/--network-alias
        }
        c = Container(meta)
        c.task_deleted = True  # never had one
        created: list[str] = []
        try:
            os.makedirs(cdir, mode=0o700)
            created.append("dir")
            spec = await self.prepare_rootfs_and_spec(c, img, created)
            await self.ctrd.container_create(cid, str(sorted(img.names)[0]) if img.names else img.id, spec,
                                             runc_options(rt.options), cid,
                                             {"io.pouch.name": name})
            created.append("ctrd")
            self.containers[cid] = c
            self.names[name] = cid
            self.save(c)
        except BaseException:
            await self._undo_create(cid, created, c)
            raise
        self.publish(c, "create")
        return c

    async def prepare_rootfs_and_spec(self, c: Container, img, created: list[str]) -> dict:
        """The container's writable snapshot on ``img`` (key: its id), its sandbox (network files,
        volumes, quota) and its OCI spec; records its command in the meta.  Appends to ``created``
        what a failure must undo ("snapshot", "hooks")."""
        cid, config, host = c.id, c.config, c.host_config
        mounts = await self._prepare_snapshot(cid, img)
        created.append("snapshot")
        c.prepared_mounts = (cid, mounts)  # the first start's rootfs: no Snapshots/Mounts round trip
        layer_dirs = rootfs_layer_dirs(mounts_to_dicts(mounts))
        c.meta["GraphDriverData"] = _graph_driver_data(mounts_to_dicts(mounts))
        created.append("hooks")  # prepare may fail half-way: release what it took
        extra_mounts, netns = await self.sandbox.prepare(c, img, layer_dirs)
        await self.sandbox.apply_quota(c, _upperdir(mounts))
        from .create_checks import ensure_mtab  # after the volumes' copy-up and the quota's mount
        await asyncio.to_thread(ensure_mtab, layer_dirs)
        spec, warnings = build_spec(cid, config, host, img.config.get("config") or {}, layer_dirs, extra_mounts,
                                    self.cgroup_path_parent(host), netns, self._namespace_paths(host))
        if self.userns:
            self.userns.apply(spec, os.path.join(self.root, cid))
        applied = oci_hooks.apply(spec, self.oci_hooks_dirs)
        if applied:
            log.info("container %s: OCI hooks %s", cid[:12], ", ".join(applied))
        self.shim_groups.annotate(c, spec, self.runtimes.get(host["Runtime"]))
        c.meta["Path"], c.meta["Args"] = spec["process"]["args"][0], spec["process"]["args"][1:]
        config["Hostname"] = config.get("Hostname") or spec.get("hostname", "")
        c.warnings = warnings
        return spec

    async def _prepare_snapshot(self, cid: str, img):
        """The container's writable snapshot on the image's top layer.  The image is almost always
        unpacked already: Prepare is tried first and only its NotFound (parent missing) costs an
        unpack, instead of a Stat round trip on every create."""
        labels = {"containerd.io/gc.root": now_rfc3339()}
        if self.userns is None and img.chain_id:
            try:
                return await self.ctrd.snapshot_prepare(cid, img.chain_id, labels=labels)
            except NotFound:
                pass  # its layers are not (or no longer) unpacked
        await self.images.ensure_unpacked(img)
        parent = await self.userns.parent(img.chain_id) if self.userns else img.chain_id
        return await self.ctrd.snapshot_prepare(cid, parent, labels=labels)

    async def _undo_create(self, cid: str, created: list[str], c: Container) -> None:
        self.containers.pop(cid, None)
        if self.names.get(c.name) == cid:
            self.names.pop(c.name, None)
        self.store.delete(self.bucket, cid)
        self.shim_groups.release(cid, c.private.shim_group)
        if "ctrd" in created:
            await _quiet(self.ctrd.container_delete(cid))
        if "hooks" in created:
            await _quiet(self.sandbox.release(c, True))
        if "snapshot" in created:
            await _quiet(self.ctrd.snapshot_remove(cid))
        if "dir" in created:
            shutil.rmtree(os.path.join(self.root, cid), ignore_errors=True)

    # -- start --------------------------------------------------------------------
    async def start(self, ref: str) -> Container:
        failure = None
        async with self._locked(ref) as c:
            try:
                await self._start_unlocked(c)
            except Exception as e:
                if not (c.host_config.get("AutoRemove") and not c.running):
                    raise
                failure = e
        if failure is None:
            return c
        # `run --rm` whose start failed: nothing is left behind (as moby does)
        await _quiet(self.remove(c.id, force=True, volumes=True))
        raise failure

    def cgroup_path_parent(self, host: dict) -> str:
        """The cgroup a container's own cgroup goes under: HostConfig.CgroupParent (a CRI pod's) or
        the daemon's --cgroup-parent."""
        return host.get("CgroupParent") or self.cgroup_parent

    async def _start_unlocked(self, c: Container) -> None:
        if c.status == "paused":
            raise Conflict("cannot start a paused container, try unpause instead")
        if c.status == "running":
            raise NotModified("container already started")
        if c.status == "removing":
            raise Conflict(f"container {c.id} is marked for removal and cannot be started")
        c.private.manual_stop = False
        await self._start_task(c)

    def _namespace_paths(self, host: dict) -> dict[str, str | None]:
        """--pid/--ipc/--uts: 'host' shares the host's, 'container:<x>' joins a running container's."""
        out: dict[str, str | None] = {}
        for key, ns in (("PidMode", "pid"), ("IpcMode", "ipc"), ("UTSMode", "uts")):
            mode = host.get(key) or ""
            if mode in ("", "private", "shareable"):
                continue
            if mode == "host":
                out[ns] = None
            elif mode.startswith("container:"):
                other = self.get(mode.split(":", 1)[1])
                if not other.running or not other.state.get("Pid"):
                    raise Conflict(f"cannot join the {ns} namespace of a non running container: {other.id}")
                out[ns] = f"/proc/{other.state['Pid']}/ns/{ns}"
                host[key] = f"container:{other.id}"
            else:
                raise InvalidArgument(f"invalid {key}: {mode!r}")
        return out

    async def _start_task(self, c: Container) -> None:
        cid = c.id
        io = self._open_io(c, self._logger(c))
        try:
            if not c.task_deleted:
                await _quiet(self.ctrd.task_delete(cid))  # a stale stopped task from a crash
            c.task_deleted = False
            attach = await self.sandbox.before_start(c)  # CNI attach runs alongside the create
            create_error = None
            try:
                mounts = self._rootfs_mounts(c) or await self.ctrd.snapshot_mounts(cid)
                pid = await self.ctrd.task_create(cid, mounts, io.stdin_path, io.stdout_path,
                                                  io.stderr_path, c.tty,
                                                  checkpoint=getattr(c, "restore_checkpoint", None))
            except BaseException as e:
                create_error = e
            if attach is not None:
                try:
                    await attach  # veth and address ready before the process runs
                except BaseException:
                    if create_error is None:
                        await _quiet(self.ctrd.task_delete(cid))
                    raise  # the network's error is the one the user needs to see
            if create_error is not None:
                raise create_error
            failpoint.crash("start-task-created")
            c.set_running(pid)
            c.starting = True  # an exit seen before Start returns is handled after it
            try:
                await self.ctrd.task_start(cid)
            except BaseException:
                c.pending_exit = None
                await _quiet(self.ctrd.task_kill(cid, 9, all=True))
                await _quiet(self.ctrd.task_delete(cid))
                raise
            finally:
                c.starting = False
        except PouchError as e:
            self._close_io(c)
            code = 127 if "not found" in e.message or "no such file" in e.message else 126 \
                if "permission denied" in e.message else 128
            msg = runtime_message(e.message)
            c.set_stopped(code, msg)
            self.save(c)
            await _quiet(self.sandbox.after_stop(c))
            if "executable file not found" in e.message or "no such file or directory" in e.message \
                    or "permission denied" in e.message:
                raise InvalidArgument(msg) from None
            e.message = msg
            e.args = (msg,)
            raise
        except BaseException:
            self._close_io(c)
            await _quiet(self.sandbox.after_stop(c))
            raise
        self.save(c)
        self.publish(c, "start")
        if c.pending_exit is not None:
            pid, status = c.pending_exit
            c.pending_exit = None
            await self.handle_exit(cid, pid, status)

    @staticmethod
    def _rootfs_mounts(c: Container):
        """The mounts the create's Prepare returned, once, if the snapshot is still that one."""
        key, mounts = c.prepared_mounts or (None, None)
        c.prepared_mounts = None
        return mounts if key == c.private.snapshot_key else None

    @staticmethod
    def _logger(c: Container):
        cfg = c.host_config["LogConfig"]
        return make_logger(cfg["Type"], cfg["Config"], c.id, c.meta["LogPath"], log_attrs(c.config, cfg["Config"]))

    def _open_io(self, c: Container, logger) -> ProcessIO:
        io = ProcessIO(os.path.join(self.fifo_root, c.id), c.tty, bool(c.config.get("OpenStdin")),
                       logger, c.attached)
        io.open()
        c.io, c.logger = io, logger
        c.started.set()
        return io

    def _close_io(self, c: Container, remove: bool = True) -> None:
        c.started.clear()
        if c.io is not None:
            c.io.close(remove)
            c.io = None
        if c.logger is not None:
            c.logger.close()
            c.logger = None

    # -- exits ----------------------------------------------------------------
    async def run_events(self, queue: asyncio.Queue) -> None:
        while True:
            ev: TaskEvent = await queue.get()
            try:
                if ev.topic == "/tasks/oom":
                    c = self.containers.get(ev.container_id)
                    if c:
                        c.state["OOMKilled"] = True
                        self.publish(c, "oom")
                elif ev.exec_id:
                    await self.execs.handle_exit(ev)
                    if ev.topic == RESYNC and self.on_resync is not None:  # containerd is back
                        asyncio.get_running_loop().create_task(self.on_resync())
                else:
                    await self.handle_exit(ev.container_id, ev.pid, ev.exit_status)
            except Exception:
                log.exception("handling %s for %s", ev.topic, ev.container_id)

    async def handle_exit(self, cid: str, pid: int, status: int | None) -> None:
        c = self.containers.get(cid)
        if c is None or c.status not in ("running", "paused"):
            return
        if pid and c.state.get("Pid") and pid != c.state["Pid"]:
            return
        if c.starting:
            c.pending_exit = (pid, status)
            return
        try:
            resp = await self.ctrd.task_delete(cid)
            status = resp.exit_status if status is None else status
        except NotFound:
            status = 255 if status is None else status
        c.task_deleted = True
        self._close_io(c)
        oom = c.state.get("OOMKilled", False)
        ran = time.time() - parse_rfc3339(c.state.get("StartedAt", ""))
        c.set_stopped(int(status))
        c.state["OOMKilled"] = oom
        await _quiet(self.sandbox.after_stop(c))
        self.save(c, eventually=True)
        self.publish(c, "die", {"exitCode": str(status)})
        for f in c.exit_waiters:
            if not f.done():
                f.set_result(int(status))
        c.exit_waiters.clear()
        if c.host_config.get("AutoRemove"):
            # its own task: the exit may be handled inside a method that holds the lock
            c.remove_task = asyncio.get_running_loop().create_task(
                _quiet(self.remove(cid, force=True, volumes=True)))
            return
        policy = c.host_config.get("RestartPolicy") or {}
        if restart_policy.should_restart(policy, int(status), c.meta.get("RestartCount", 0),
                                         c.private.manual_stop):
            delay = restart_policy.backoff(c.meta.get("RestartCount", 0), ran)
            c.set_restarting()
            self.save(c, eventually=True)
            c.restart_task = asyncio.get_running_loop().create_task(self._restart_later(c, delay))

    async def _restart_later(self, c: Container, delay: float) -> None:
        await asyncio.sleep(delay)
        async with c.lock:
            if c.status != "restarting" or c.private.manual_stop:
                return
            c.meta["RestartCount"] = c.meta.get("RestartCount", 0) + 1
            try:
                await self._start_task(c)
                self.publish(c, "restart")
            except Exception as e:
                log.warning("restart of %s failed: %s", c.id[:12], e)

    # -- stop / kill ---------------------------------------------------------
    def _exit_future(self, c: Container) -> asyncio.Future:
        f = asyncio.get_running_loop().create_future()
        c.exit_waiters.append(f)
        return f

    async def stop(self, ref: str, timeout: int | None = None) -> Container:
        async with self._locked(ref) as c:
            await self._stop_unlocked(c, timeout)
        if c.remove_task is not None:  # --rm: stop returns once the container is gone
            await asyncio.shield(c.remove_task)
        return c

    async def _stop_unlocked(self, c: Container, timeout: int | None = None) -> None:
        self._cancel_restart(c)
        c.private.manual_stop = True
        if c.status == "restarting":
            c.set_stopped(c.state.get("ExitCode", 0))
            self.save(c)
            return
        if not c.running:
            self.save(c)
            raise NotModified("container already stopped")
        if timeout is None:
            timeout = c.config.get("StopTimeout")
            timeout = 10 if timeout is None or int(timeout) < 0 else int(timeout)
        sig = signal_number(c.config.get("StopSignal"))
        fut = self._exit_future(c)
        if c.status == "paused":
            await _quiet(self.ctrd.task_resume(c.id))
        try:
            await self.ctrd.task_kill(c.id, sig)
        except NotFound:
            await self.handle_exit(c.id, 0, None)
        c.stopping = True  # a kill meanwhile need not wait for the lock (see kill)
        try:
            await asyncio.wait_for(asyncio.shield(fut), max(timeout, 0))
        except asyncio.TimeoutError:
            await _quiet(self.ctrd.task_kill(c.id, _signal.SIGKILL, all=True))
            await self._await_exit(c, fut, 30)
        finally:
            c.stopping = False
        self.publish(c, "stop")

    @staticmethod
    def _cancel_restart(c: Container) -> None:
        """A pending restart-policy restart."""
        if c.restart_task and not c.restart_task.done():
            c.restart_task.cancel()

    async def _await_exit(self, c: Container, fut: asyncio.Future, timeout: float) -> None:
        """Wait for a killed task's exit; should its event be lost (the event stream was being
        re-established), find the stopped task by asking containerd."""
        from ..ctrd.pb.api.types.task import task_pb2
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(fut), 1.0)
                return
            except asyncio.TimeoutError:
                pass
            try:
                proc = await self.ctrd.task_get(c.id)
                stopped = proc.status == task_pb2.STOPPED
            except NotFound:
                stopped = True
            if stopped:
                await self.handle_exit(c.id, 0, None)
                return
            if asyncio.get_running_loop().time() > deadline:
                raise SystemError_(f"container {c.id[:12]} did not exit after SIGKILL")

    async def kill(self, ref: str, sig: str | int | None) -> Container:
        """Signal the main process.  While a stop (which holds the lock) waits for the exit, the
        signal goes at once: `kill` hurries a slow `stop` as in Docker."""
        n = signal_number(sig, _signal.SIGKILL)
        c = self.get(ref)
        if c.stopping:
            await self._kill_unlocked(c, n)
            return c
        async with self._locked(ref) as c:
            await self._kill_unlocked(c, n)
        return c

    async def _kill_unlocked(self, c: Container, n: int) -> None:
        if not c.running:
            raise Conflict(f"Cannot kill container: {c.id}: Container {c.id} is not running")
        if n in (_signal.SIGKILL, _signal.SIGTERM, _signal.SIGINT):
            c.private.manual_stop = True
        await self.ctrd.task_kill(c.id, n, all=n == _signal.SIGKILL)
        self.publish(c, "kill", {"signal": str(n)})

    async def restart(self, ref: str, timeout: int | None) -> Container:
        async with self._locked(ref) as c:
            if c.running:
                await self._stop_unlocked(c, timeout)
            c.private.manual_stop = False
            if not c.running:
                self._cancel_restart(c)
                await self._start_task(c)
            self.publish(c, "restart")
        return c

    async def pause(self, ref: str) -> None:
        async with self._locked(ref) as c:
            await self._pause_unlocked(c)

    async def _pause_unlocked(self, c: Container) -> None:
        if c.status != "running":
            raise Conflict(f"Container {c.id} is not running" if c.status != "paused"
                           else f"Container {c.id} is already paused")
        await self.ctrd.task_pause(c.id)
        c.set_paused(True)
        self.save(c)
        self.publish(c, "pause")

    async def unpause(self, ref: str) -> None:
        async with self._locked(ref) as c:
            if c.status != "paused":
                raise Conflict(f"Container {c.id} is not paused")
            await self.ctrd.task_resume(c.id)
            c.set_paused(False)
            self.save(c)
            self.publish(c, "unpause")

    # -- wait ---------------------------------------------------------------
    async def wait(self, ref: str, condition: str = "not-running") -> int:
        c = self.get(ref)
        if condition not in ("not-running", "next-exit", "removed", ""):
            raise InvalidArgument(f"invalid condition: {condition}")
        if condition == "removed":
            f = asyncio.get_running_loop().create_future()
            c.remove_waiters.append(f)
            return await f
        if condition in ("not-running", "") and not c.running and c.status != "restarting":
            return int(c.state.get("ExitCode", 0))
        return await self._exit_future(c)

    # -- remove -----------------------------------------------------------------
    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        async with self._locked(ref) as c:
            await self._remove_unlocked(c, force, volumes)
        # `wait?condition=removed` (run --rm) is answered once the container is gone; the
        # network teardown still finishes before `rm` itself returns (and `network rm` waits
        # for it too)
        await _quiet(self.sandbox.release_network(c))

    async def _remove_unlocked(self, c: Container, force: bool = False, volumes: bool = False) -> None:
        if c.running or c.status == "restarting":
            if not force:
                raise Conflict(f"You cannot remove a running container {c.id}. Stop the container "
                               f"before attempting removal or force remove")
            self._cancel_restart(c)
            c.private.manual_stop = True
            if c.running:
                fut = self._exit_future(c)
                if c.status == "paused":
                    await _quiet(self.ctrd.task_resume(c.id))
                try:
                    await self.ctrd.task_kill(c.id, _signal.SIGKILL, all=True)
                    await self._await_exit(c, fut, 30)
                except NotFound:
                    await self.handle_exit(c.id, 0, None)
        if c.status == "removing" and c.id not in self.containers:
            return
        c.state["Status"] = "removing"
        if not c.task_deleted:  # the exit's handling deleted it already (run --rm)
            await _quiet(self.ctrd.task_delete(c.id))
        self.sandbox.release_storage(c, volumes)  # first: a quota fs may be mounted in the snapshot
        # From here the container is gone for the user: its record, its name, `wait
        # condition=removed` answered (run --rm's exit code) -- and then containerd's container and
        # snapshot and the directories go, before `rm` returns.  A crash in between leaves only
        # what start-up's reconcile removes as orphans; the id stays taken (``cleaning``) until
        # then, and the periodic check leaves it alone.
        self.cleaning.add(c.id)
        try:
            self.store.delete_eventually(self.bucket, c.id)  # a full disk must not leave it "Removing"
            self.execs.forget_container(c.id)
            self.containers.pop(c.id, None)
            self.shim_groups.release(c.id, c.private.shim_group)
            if self.names.get(c.name) == c.id:
                self.names.pop(c.name, None)
            self.publish(c, "destroy")
            code = int(c.state.get("ExitCode", 0))
            for f in c.remove_waiters + c.exit_waiters:
                if not f.done():
                    f.set_result(code)
            await _quiet(self.ctrd.container_delete(c.id))
            await _quiet(self.ctrd.snapshot_remove(c.private.snapshot_key))
            for key in reversed(c.meta.get("UpgradeBackups") or []):  # rolled-back upgrades' old layers
                await _quiet(self.ctrd.snapshot_remove(key))
            await asyncio.to_thread(_rmtrees, os.path.join(self.root, c.id), os.path.join(self.fifo_root, c.id))
            if (c.host_config.get("LogConfig") or {}).get("Config", {}).get("root-dir") and c.meta.get("LogPath"):
                await asyncio.to_thread(shutil.rmtree, os.path.dirname(c.meta["LogPath"]), True)  # <root-dir>/<id>
        finally:
            self.cleaning.discard(c.id)

    # -- rename / update ---------------------------------------------------
    async def rename(self, ref: str, new: str) -> None:
        async with self._locked(ref) as c:
            self._rename_unlocked(c, new)

    def _rename_unlocked(self, c: Container, new: str) -> None:
        if not new or not NAME_RE.match(new):
            raise InvalidArgument(f"Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        new = new.lstrip("/")
        if new == c.name:
            raise InvalidArgument("Renaming a container with the same name as its current name")
        if new in self.names:
            raise Conflict(f'Conflict. The container name "/{new}" is already in use by container '
                           f'"{self.names[new]}". You have to remove (or rename) that container to be '
                           f'able to reuse that name.')
        old = c.name
        self.names.pop(old, None)
        self.names[new] = c.id
        c.meta["Name"] = new
        self.save(c)
        self.publish(c, "rename", {"oldName": "/" + old})

    async def update(self, ref: str, body: dict) -> list[str]:
        async with self._locked(ref) as c:
            return await self._update_unlocked(c, body)

    async def _update_unlocked(self, c: Container, body: dict) -> list[str]:
        from .update import update  # Pouch's UpdateConfig: resources, Env, Label, SpecAnnotation, restart
        return await update(self, c, body)

    # -- restore -----------------------------------------------------------------
    async def restore(self) -> None:
        """Load containers from the meta store and adopt their live tasks."""
        tasks = {t.id: t for t in await self.ctrd.task_list()}
        for cid, meta in self.store.list(self.bucket):
            c = Container.from_record(meta)
            self.containers[cid] = c
            self.names[c.name] = cid
            self.shim_groups.adopt(cid, c.private.shim_group, c.host_config.get("Runtime") or "")
        for c in list(self.containers.values()):
            try:
                await self._restore_one(c, tasks.get(c.id))
            except Exception:
                log.exception("restoring container %s", c.id[:12])

    async def _restore_one(self, c: Container, task) -> None:
        from ..ctrd.pb.api.types.task import task_pb2
        if c.status == "removing":
            await self._remove_unlocked(c, force=True)
            await _quiet(self.sandbox.release_network(c))
            return
        if "Upgrading" in c.meta:
            from .upgrade import recover
            running = task is not None and task.status in (task_pb2.RUNNING, task_pb2.PAUSED)
            if await recover(self, c, running):
                self._after_upgrade_crash.append(c.id)
        if task is not None and task.status == task_pb2.CREATED:
            # a start interrupted between task create and start: the process never ran
            await _quiet(self.ctrd.task_kill(c.id, 9, all=True))
            await _quiet(self.ctrd.task_delete(c.id))
            task = None
        if task is not None and task.status in (task_pb2.RUNNING, task_pb2.PAUSED):
            self._open_io(c, self._logger(c))
            c.state.update(Status="paused" if task.status == task_pb2.PAUSED else "running",
                           Running=True, Paused=task.status == task_pb2.PAUSED, Pid=task.pid)
            await _quiet(self.sandbox.restored(c))
            self.save(c)
            return
        if c.status in ("running", "paused", "restarting"):
            status = None
            if task is not None:
                status = task.exit_status
            c.state["Status"] = "running"
            await self.handle_exit(c.id, 0, status)
            return
        if task is not None:  # a created-but-stopped leftover task
            await _quiet(self.ctrd.task_delete(c.id))

    # -- more operations -------------------------------------------------------------
    async def upgrade(self, ref: str, image: str, cmd: list[str] | None = None,
                      entrypoint: list[str] | None = None) -> None:
        """``pouch upgrade``: the container onto a new image (see mgr/upgrade.py)."""
        from .upgrade import upgrade_unlocked
        if not image:
            raise InvalidArgument("upgrade needs an image")
        c = self.get(ref)
        if c.lock.locked() and c.upgrading:
            raise Conflict(f"container {c.id[:12]} is being upgraded already")
        async with self._locked(ref) as c:
            img = self.images.get(image)
            c.upgrading = True
            try:
                await upgrade_unlocked(self, c, image, img, cmd, entrypoint)
            finally:
                c.upgrading = False

    async def connect(self, ref: str, network: str, aliases: list[str] | None = None, ip: str = "") -> None:
        """``network connect``: a running container onto one more network."""
        async with self._locked(ref) as c:
            if not c.running:
                raise Conflict(f"container {c.id} is not running")
            ns = (c.meta.get("NetworkSettings") or {}).get("SandboxKey")
            if not ns:
                raise Conflict(f"container {c.id} has no network namespace of its own (host or container mode)")
            name, settings = await self.sandbox.connect(c, ns, network, list(aliases or []), ip or "")
            c.meta["NetworkSettings"].setdefault("Networks", {})[name] = settings
            self.save(c)

    async def disconnect(self, ref: str, network: str) -> None:
        async with self._locked(ref) as c:
            name = await self.sandbox.disconnect(c, network)
            (c.meta.get("NetworkSettings") or {}).get("Networks", {}).pop(name, None)
            self.save(c)

    async def resize(self, ref: str, h: int, w: int) -> None:
        c = self.get(ref)
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        await self.ctrd.task_resize(c.id, w, h)

    async def changes(self, ref: str) -> list[dict]:
        """``diff``: [{"Path", "Kind"}] of the container's writable layer (0 changed, 1 added, 2 deleted)."""
        return await container_changes(self.ctrd, self.get(ref).id)

    async def top(self, ref: str, ps_args: str = "") -> dict:
        """``top``: ``ps`` (args ``ps_args``, default -ef) limited to the container's processes."""
        c = self.get(ref)
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        pids = set(await self.ctrd.task_pids(c.id))
        proc = await asyncio.create_subprocess_exec(
            "ps", *(ps_args or "-ef").split(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        if proc.returncode:
            raise InvalidArgument(f"ps: {err.decode().strip()}")
        lines = out.decode().splitlines()
        titles = lines[0].split()
        if "PID" not in titles:
            raise InvalidArgument("Couldn't find PID field in ps output")
        pi = titles.index("PID")
        procs = []
        for line in lines[1:]:
            fields = line.split(None, len(titles) - 1)
            if len(fields) > pi and fields[pi].isdigit() and int(fields[pi]) in pids:
                procs.append(fields)
        return {"Titles": titles, "Processes": procs}

    def logs(self, ref: str, stdout: bool = True, stderr: bool = True, since: int = 0, until: int = 0,
             tail: int = -1, timestamps: bool = False, follow: bool = False, details: bool = False):
        """-> (tty, async iterator of (stream, bytes)): json-file entries between ``since`` and
        ``until`` (ns, 0 = unbounded), the last ``tail`` (-1 = all) read from the end of the
        files, then (``follow``) what the container writes until it stops.  Bad input is
        raised here, before any output."""
        c = self.get(ref)
        if c.host_config["LogConfig"]["Type"] != "json-file":
            raise InvalidArgument("configured logging driver does not support reading")
        want = {s for s, on in (("stdout", stdout), ("stderr", stderr)) if on}
        if not want:
            raise InvalidArgument("Bad parameters: you must choose at least one stream")
        path = c.meta["LogPath"]

        def chunk(e: dict) -> tuple[str, bytes] | None:
            if e.get("stream") not in want:
                return None
            data = e["log"].encode()
            if details and e.get("attrs"):  # as Pouch: the log options' values, sorted k=v,k=v, a space
                data = ",".join(f"{k}={v}" for k, v in sorted(e["attrs"].items())).encode() + b" " + data
            return e["stream"], (e["time"].encode() + b" " + data if timestamps else data)

        async def entries():
            if tail >= 0:
                batches = iter([await asyncio.to_thread(jsonfile.read_tail, path, tail, since, until)])
            else:
                batches = jsonfile.iter_entries(path, since, until)
            while True:
                batch = await asyncio.to_thread(next, batches, None)
                if batch is None:
                    break
                for e in batch:
                    item = chunk(e)
                    if item:
                        yield item
            if follow and not until:
                offset = os.path.getsize(path) if os.path.exists(path) else 0
                async for e in jsonfile.follow(path, c.logger, offset, lambda: c.running):
                    item = chunk(e)
                    if item:
                        yield item
        return c.tty, entries()

    async def attach(self, ref: str, open_stream: OpenStream, stdin: bool = False, stdout: bool = True,
                     stderr: bool = True, logs: bool = False, stream: bool = True,
                     detach_keys: str | None = None) -> str:
        """Join a client to the main process (see mgr/attach.py): -> "ended", "detached" or
        "gone".  ``logs`` sends the json-file backlog first; without ``stream`` only that."""
        c = self.get(ref)
        keys = detach_sequence(detach_keys)
        use_in = stdin and bool(c.config.get("OpenStdin"))
        want = {s for s, on in (("stdout", stdout), ("stderr", stderr)) if on}
        path = c.meta.get("LogPath")
        session = AttachSession(await open_stream(c.tty), c.attached, want, keys,
                                write_stdin=(lambda data: self._write_stdin(c, data)) if use_in else None,
                                close_stdin=(lambda: self._attach_eof(c)) if use_in else None)
        if stream:
            session.subscribe()
        if logs and path and os.path.exists(path):  # the backlog, in bounded batches
            batches = jsonfile.iter_entries(path)
            while (batch := await asyncio.to_thread(next, batches, None)) is not None:
                for e in batch:
                    session.send(e["stream"], e["log"].encode())
                await session.conn.drain()
        return await session.run(stream)

    @staticmethod
    async def _write_stdin(c: Container, data: bytes) -> None:
        await c.started.wait()
        if c.io is not None:
            await c.io.write_stdin(data)

    async def _attach_eof(self, c: Container) -> None:
        """An attached client's stdin EOF.  With StdinOnce both writers of the stdin FIFO must
        go: ours, and the one the shim keeps open until it is told CloseIO."""
        if not c.config.get("StdinOnce"):
            return
        await c.started.wait()
        # CloseIO only reaches a task that exists: a client may send stdin and EOF before the
        # container is started (docker run -i)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not c.running and c.io is not None and loop.time() < deadline:
            await asyncio.sleep(0.01)
        if c.io is not None:
            c.io.close_stdin()
            await _quiet(self.ctrd.task_close_stdin(c.id))  # the task may already be gone

    # -- execs (the ExecManager's, here so that a face needs one manager) ---------------
    def exec_create(self, ref: str, body: dict):
        return self.execs.create(ref, body)

    async def exec_start(self, eid: str, open_stream: OpenStream | None = None) -> str:
        return await self.execs.start(eid, open_stream)

    def exec_inspect(self, eid: str) -> dict:
        return self.execs.inspect(eid)

    async def exec_resize(self, eid: str, h: int, w: int) -> None:
        await self.execs.resize(eid, h, w)

    async def start_restart_policy_containers(self) -> None:
        """After a daemon (or machine) restart, start 'always'/'unless-stopped' containers, and
        those an upgrade stopped before a crash interrupted it."""
        from .upgrade import finish_after_start
        for cid in self._after_upgrade_crash:
            if cid in self.containers:
                await finish_after_start(self, self.containers[cid])
        self._after_upgrade_crash.clear()
        for c in list(self.containers.values()):
            pol = (c.host_config.get("RestartPolicy") or {}).get("Name")
            if c.status == "exited" and not c.private.manual_stop and pol in ("always", "unless-stopped"):
                try:
                    await self.start(c.id)
                except Exception as e:
                    log.warning("could not restart %s: %s", c.id[:12], e)

    async def shutdown(self) -> None:
        """Daemon exit: leave containers running (live restore), close our fds."""
        for c in self.containers.values():
            if c.restart_task:
                c.restart_task.cancel()
            self._close_io(c, remove=False)


def log_attrs(config: dict, opts: dict) -> dict[str, str]:
    """The ``labels``/``env`` log options: the container's labels and env values they name, kept
    with every json-file entry (``logs --details`` shows them)."""
    out: dict[str, str] = {}
    labels = config.get("Labels") or {}
    for k in filter(None, (opts.get("labels") or "").split(",")):
        if k in labels:
            out[k] = labels[k]
    env = dict(e.split("=", 1) for e in config.get("Env") or [] if "=" in e)
    for k in filter(None, (opts.get("env") or "").split(",")):
        if k in env:
            out[k] = env[k]
    return out


def _specific_id(want: str, taken) -> str:
    """A caller's 64-hex container id (Pouch's SpecificID), checked; or a fresh random one."""
    if not want:
        cid = secrets.token_hex(32)
        while cid in taken:
            cid = secrets.token_hex(32)
        return cid
    if not isinstance(want, str) or len(want) != 64:
        raise InvalidArgument("Container id length should be 64")
    if any(ch not in "0123456789abcdef" for ch in want):
        raise InvalidArgument("The characters of container id should be in '0123456789abcdef'")
    if want in taken:
        raise Conflict(f"container id: {want}: already existed")
    return want


def _graph_driver_data(mounts: list[dict]) -> dict:
    """Inspect's GraphDriver.Data: the overlay's directories (or the bind's source)."""
    for m in mounts:
        if m["type"] == "overlay":
            opts = dict(o.split("=", 1) for o in m["options"] if "=" in o)
            return {"LowerDir": opts.get("lowerdir", ""), "UpperDir": opts.get("upperdir", ""),
                    "WorkDir": opts.get("workdir", "")}
        if m["type"] == "bind":
            return {"UpperDir": m["source"]}
    return {}


def _match(c: Container, filters: dict[str, list[str]]) -> bool:
    for key, values in filters.items():
        if not values:
            continue
        if key == "status":
            ok = c.status in values or (c.status == "exited" and "stopped" in values)  # Pouch's name
        elif key == "name":
            ok = any(v.lstrip("/") in c.name for v in values)
        elif key == "id":
            ok = any(c.id.startswith(v) for v in values)
        elif key == "label":
            ok = all(_label_match(c.config.get("Labels") or {}, v) for v in values)
        elif key == "ancestor":
            ok = any(v in (c.config.get("Image"), c.meta.get("Image")) or c.meta.get("Image", "")[7:].startswith(v)
                     for v in values)
        elif key == "exited":
            ok = c.status == "exited" and str(c.state.get("ExitCode")) in values
        elif key == "runtime":
            ok = c.host_config.get("Runtime") in values
        else:
            raise InvalidArgument(f"invalid filter '{key}'")
        if not ok:
            return False
    return True


def _label_match(labels: dict, cond: str) -> bool:
    """``k``, ``k=v``, or Pouch's ``k!=v`` (k set to another value)."""
    if "!=" in cond:
        k, v = cond.split("!=", 1)
        return k in labels and labels[k] != v
    if "=" in cond:
        k, v = cond.split("=", 1)
        return labels.get(k) == v
    return cond in labels


def _rmtrees(*paths: str) -> None:
    for p in paths:
        shutil.rmtree(p, ignore_errors=True)


def _upperdir(mounts) -> str | None:
    for m in mounts:
        for o in m.options:
            if o.startswith("upperdir="):
                return o.split("=", 1)[1]
        if m.type == "bind":
            return m.source
    return None


async def _quiet(aw) -> None:
    try:
        await aw
    except Exception as e:  # cleanup paths: the object may already be gone
        log.debug("ignored during cleanup: %s", e)
