"""Reconciliation: the one owner of the invariants between pouchd's meta store and the world.

The world is containerd (containers, tasks and their states, snapshots, shims) of one
namespace, the network (netns, veths, IPAM, iptables: ``NetworkManager.leftovers``) and the
cgroup directories under ``--cgroup-parent``.  The invariants:

- a container shown running or paused has a task in that state (its pid), and when it has a
  bridge network, its IP; a container shown anything else has no task;
- every task, containerd container, container snapshot, shim and cgroup directory belongs to a
  container of the meta store (with a task, for shims and cgroups); a shim shared by a group of
  containers (mgr/shimgroup.py) is named after the member that started it and outlives that
  member's task: it is an orphan only when no task's process is its child either;
- the network holds nothing for containers that do not run.

``check()`` lists the violations (tests and ``GET /system/consistency`` call it); ``repair()``
brings the two sides together and logs each fix: an interrupted start (task CREATED, or a
task of a container not shown running) is rolled back, a container shown running whose task
is gone gets its exit (so restart policies apply), a running one that lost its network is
attached again (else stopped), orphans are removed.  pouchd runs ``repair`` at start-up
(``startup=True``, before any create can be in flight) and after every containerd reconnect
(then an orphan containerd container or snapshot is removed only when no create of that id is
in flight, i.e. its directory is gone), and every 10 s for what two checks in a row found.  Containers with an operation in flight
(their lock held) are left alone.  One ``Reconciler`` serves one containerd namespace.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import time
from dataclasses import asdict, dataclass

from pouch.errtypes import NotFound

log = logging.getLogger(__name__)

CGROUP_ROOT = "/sys/fs/cgroup"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Violation:
    kind: str      # state | no-ip | orphan-task | orphan-container | orphan-snapshot | orphan-shim | cgroup | network
    subject: str   # a container id (or what the network check names)
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


def _task_states():
    from ..ctrd.pb.api.types.task import task_pb2
    return {task_pb2.CREATED: "created", task_pb2.RUNNING: "running", task_pb2.STOPPED: "stopped",
            task_pb2.PAUSED: "paused", task_pb2.PAUSING: "pausing", task_pb2.UNKNOWN: "unknown"}


class Reconciler:
    def __init__(self, containers, network, ctrd, cgroup_parent: str = "/pouch",
                 cgroup_root: str = CGROUP_ROOT, other_live=None) -> None:
        self.containers = containers  # ContainerManager
        self.network = network        # NetworkManager
        self.ctrd = ctrd
        self.cgroup_parent = "/" + cgroup_parent.strip("/")
        self.cgroup_root = cgroup_root
        # the network is shared with other namespaces' managers (the CRI's k8s.io): their running
        # containers' ids, which the network check must not count as leftovers
        self.other_live = other_live or (lambda: [])
        self._lock = asyncio.Lock()
        self._periodic: asyncio.Task | None = None

    # -- what is -----------------------------------------------------------------------------
    def _busy(self, c) -> bool:
        return c.lock.locked() or getattr(c, "starting", False)

    def _busy_id(self, cid: str) -> bool:
        """An operation is in flight on ``cid``: its lock is held, or it was removed and its
        containerd objects are still being deleted (``ContainerManager.cleaning``)."""
        if cid in self.containers.cleaning:
            return True
        c = self.containers.containers.get(cid)
        return c is not None and self._busy(c)

    async def _world(self) -> dict:
        # the /proc and cgroup walks see every process and container of the host (other daemons'
        # too): off the event loop, so a check never stalls the requests in flight.  They come
        # first and the task list last: what is judged right after (``_live``: running with a
        # task) must not miss a start that finished while the walks ran, or its network would
        # be released as a leftover
        shims, cgroups = await asyncio.to_thread(lambda: (self._shims(), self._cgroup_dirs()))
        ctrs = {c.id for c in await self.ctrd.container_list()}
        snaps = [s for s in await self.ctrd.snapshot_list()]
        tasks = {t.id: t for t in await self.ctrd.task_list()}
        return {"tasks": tasks, "ctrs": ctrs, "snaps": snaps, "shims": shims, "cgroups": cgroups,
                "serving": _parents(t.pid for t in tasks.values())}

    def _shims(self) -> dict[str, list[int]]:
        """container id -> pids of shims serving this containerd and namespace."""
        out: dict[str, list[int]] = {}
        address = getattr(self.ctrd, "address", "")
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    args = f.read().decode(errors="replace").split("\0")
            except OSError:
                continue
            if not args or "containerd-shim" not in os.path.basename(args[0]):
                continue
            opts = dict(zip(args[1::1], args[2::1]))
            if opts.get("-namespace") != self.ctrd.namespace or (address and opts.get("-address") != address):
                continue
            if opts.get("-id"):
                out.setdefault(opts["-id"], []).append(int(pid))
        return out

    def _cgroup_dirs(self) -> dict[str, list[str]]:
        """container id -> its cgroup directories (one per v1 controller, or the v2 one)."""
        out: dict[str, list[str]] = {}
        roots = [os.path.join(self.cgroup_root, self.cgroup_parent.lstrip("/"))]
        try:
            roots += [os.path.join(self.cgroup_root, ctl, self.cgroup_parent.lstrip("/"))
                      for ctl in os.listdir(self.cgroup_root)]
        except OSError:
            return out
        for root in roots:
            try:
                with os.scandir(root) as it:  # d_type from the listing: no stat per entry
                    for e in it:
                        if len(e.name) == 64 and _HEX64.match(e.name) and e.is_dir(follow_symlinks=False):
                            out.setdefault(e.name, []).append(e.path)
            except OSError:
                continue
        return out

    # -- check ---------------------------------------------------------------------------------
    async def check(self, known_ids: set[str] | frozenset = frozenset()) -> list[Violation]:
        """Every invariant that does not hold now.  ``known_ids``: ids of containers removed
        meanwhile that are this daemon's too (their cgroups, shims and network are checked)."""
        world = await self._world()
        return self._violations(world, set(known_ids)) + await self._network_violations(world)

    def _violations(self, world: dict, known_ids: set[str]) -> list[Violation]:
        states = _task_states()
        tasks, out = world["tasks"], []
        metas = dict(self.containers.containers)
        for cid, c in metas.items():
            if self._busy(c):
                continue
            t = tasks.get(cid)
            tstate = states.get(t.status, "?") if t is not None else "none"
            if c.status in ("running", "paused"):
                if t is None or tstate not in ("running", "paused"):
                    out.append(Violation("state", cid, f"shown {c.status}, task {tstate}"))
                elif c.state.get("Pid") and t.pid and c.state["Pid"] != t.pid:
                    out.append(Violation("state", cid, f"shown pid {c.state['Pid']}, task pid {t.pid}"))
                elif _wants_ip(c) and not (c.meta.get("NetworkSettings") or {}).get("IPAddress"):
                    out.append(Violation("no-ip", cid, f"shown {c.status} without its IP address"))
                elif _wants_ip(c) and not self.network.endpoints(cid=cid):
                    out.append(Violation("no-ip", cid, f"shown {c.status} with no network endpoint"))
            elif t is not None:
                out.append(Violation("state", cid, f"shown {c.status}, task {tstate}"))
        for cid, t in tasks.items():
            if cid not in metas and not self._busy_id(cid):
                out.append(Violation("orphan-task", cid, f"task {states.get(t.status, '?')} pid {t.pid} "
                                     f"of no container"))
        for cid in world["ctrs"] - set(metas) - self.containers.cleaning:
            out.append(Violation("orphan-container", cid, "containerd container of no pouch container"))
        keys = set()
        for c in metas.values():
            keys.add(c.private.snapshot_key)
            keys.update(c.meta.get("UpgradeBackups") or [])
            keys.add(c.id)
        for s in world["snaps"]:
            if _HEX64.match(s.name) and s.name not in keys and s.kind == 2 \
                    and s.name not in self.containers.cleaning:  # KIND_ACTIVE
                out.append(Violation("orphan-snapshot", s.name, "writable snapshot of no container"))
        ours = set(metas) | set(tasks) | world["ctrs"] | known_ids
        for cid, pids in world["shims"].items():
            if cid not in tasks and not self._busy_id(cid) and not world["serving"] & set(pids):
                out.append(Violation("orphan-shim", cid, f"shim pid {','.join(map(str, pids))} with no task"))
        for cid, dirs in world["cgroups"].items():
            if cid in ours and cid not in tasks and not self._busy_id(cid):
                out.append(Violation("cgroup", cid, f"{len(dirs)} cgroup dir(s) of a container without task"))
        return out

    def _live(self, world: dict) -> set[str]:
        """Containers the network may hold something for: running ones, those with an operation in
        flight, and created/stopped ones whose record holds only their /etc files (no endpoint, netns)."""
        states = _task_states()
        live = set(self.other_live())
        for cid, c in self.containers.containers.items():
            t = world["tasks"].get(cid)
            sb = self.network.sandboxes.get(cid) if self.network is not None else None
            files_only = sb is not None and not sb.endpoints and not sb.netns
            if self._busy(c) or files_only or (
                    c.running and t is not None and states.get(t.status) in ("running", "paused")):
                live.add(cid)
        return live

    async def _network_violations(self, world: dict) -> list[Violation]:
        if self.network is None:
            return []
        ours = [x for n in self.network.networks.values() for x in (n.bridge, n.name) if x]
        out = []
        for what in await self.network.leftovers(self._live(world)):
            # iptables is the host's: rules of bridges other daemons made (and lost) are not ours
            if what.startswith("iptables:") and not any(x in what for x in ours):
                continue
            out.append(Violation("network", "-", what))
        return out

    # -- repair --------------------------------------------------------------------------------
    def start_periodic(self, interval: float = 10.0) -> None:
        """Repair, every ``interval`` s, what two checks in a row found (a shim killed under a
        running container, a cgroup a dead shim left): what is only in flight is left alone."""
        async def loop():
            seen: set[Violation] = set()
            while True:
                await asyncio.sleep(interval)
                try:
                    now = set(await self.check())
                    if now & seen:
                        await self.repair(only=now & seen)
                    seen = now
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # containerd away: the reconnect's repair covers it
                    log.debug("reconcile: periodic check: %s", e)
        self._periodic = asyncio.get_running_loop().create_task(loop())

    def stop(self) -> None:
        if self._periodic is not None:
            self._periodic.cancel()

    async def repair(self, startup: bool = False, only: set[Violation] | None = None) -> list[Violation]:
        """Fix what ``check`` finds (of ``only``, when given); returns (and logs) what was found."""
        async with self._lock:
            world = await self._world()
            found = self._violations(world, set()) + await self._network_violations(world)
            if only is not None:
                found = [v for v in found if v in only]
            for v in found:
                log.warning("reconcile: %s %s: %s", v.kind, v.subject[:12], v.detail)
            for v in found:
                try:
                    await self._fix(v, world, startup)
                except Exception as e:  # one failure does not stop the others
                    log.warning("reconcile: could not fix %s %s: %s", v.kind, v.subject[:12], e)
            if any(v.kind in ("network", "state", "no-ip") for v in found) and self.network is not None:
                world = await self._world()
                await self.network.restore(self._live(world))
            if any(v.kind in ("orphan-shim", "cgroup", "orphan-task") for v in found):
                world = await self._world()
                flagged = {v.subject for v in found if v.kind in ("orphan-shim", "cgroup", "orphan-task")}
                for cid, pids in world["shims"].items():
                    if cid in flagged and cid not in world["tasks"] and not self._busy_id(cid) \
                            and not world["serving"] & set(pids):
                        _kill(pids)
                for cid, dirs in world["cgroups"].items():
                    if cid in flagged and cid not in world["tasks"] and not self._busy_id(cid):
                        await _remove_cgroup(dirs)
            return found

    async def _fix(self, v: Violation, world: dict, startup: bool) -> None:
        mgr, cid = self.containers, v.subject
        c = mgr.containers.get(cid)
        if v.kind == "state" and c is not None:
            t = world["tasks"].get(cid)
            if c.status in ("running", "paused"):
                if t is not None and _task_states().get(t.status) == "created":
                    # a start interrupted between task create and start: roll it back
                    await _quiet(mgr.ctrd.task_kill(cid, signal.SIGKILL, all=True))
                    await _quiet(mgr.ctrd.task_delete(cid))
                    await mgr.handle_exit(cid, 0, 128)
                else:
                    await mgr.handle_exit(cid, 0, t.exit_status if t is not None else None)
            elif t is not None:
                # a task of a container not shown running (an interrupted start, a lost stop): end it
                await _quiet(mgr.ctrd.task_kill(cid, signal.SIGKILL, all=True))
                await _wait_stopped(mgr.ctrd, cid)
                await _quiet(mgr.ctrd.task_delete(cid))
                await _quiet(mgr.sandbox.after_stop(c))
        elif v.kind == "no-ip" and c is not None:
            await self._reattach(c)
        elif v.kind == "orphan-task":
            await _quiet(self.ctrd.task_kill(cid, signal.SIGKILL, all=True))
            await _wait_stopped(self.ctrd, cid)
            await _quiet(self.ctrd.task_delete(cid))
            if startup or not self._creating(cid):
                await _quiet(self.ctrd.container_delete(cid))
                await _quiet(self.ctrd.snapshot_remove(cid))
        elif v.kind == "orphan-container" and (startup or not self._creating(cid)):
            await _quiet(self.ctrd.container_delete(cid))
        elif v.kind == "orphan-snapshot" and (startup or not self._creating(cid)):
            await _quiet(self.ctrd.snapshot_remove(cid))

    def _creating(self, cid: str) -> bool:
        """A create in flight has its directory before it takes a snapshot (and loses it on undo)."""
        return os.path.isdir(os.path.join(self.containers.root, cid))

    async def _reattach(self, c) -> None:
        """A running container whose network is gone: attach it again, else stop it (its restart
        policy then starts it properly)."""
        mgr = self.containers
        try:
            await self.network.release(c.id)
            await mgr.sandbox.reattach(c)
            mgr.save(c)
            log.info("reconcile: %s attached to its network again", c.id[:12])
        except Exception as e:
            log.warning("reconcile: %s cannot get its network back (%s); stopping it", c.id[:12], e)
            await _quiet(mgr.ctrd.task_kill(c.id, signal.SIGKILL, all=True))


def _wants_ip(c) -> bool:
    mode = (c.host_config.get("NetworkMode") or "default")
    return not (mode in ("host", "none") or mode.startswith("container:"))


def _parents(pids) -> set[int]:
    """The parent pids of the live ones of ``pids`` (a task's shim is its init process's parent)."""
    out = set()
    for pid in pids:
        if not pid:
            continue
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        out.add(int(stat[stat.rindex(b")") + 2:].split()[1]))
    return out


def _kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


async def _remove_cgroup(dirs: list[str]) -> None:
    """Kill what still runs in the directories (a stuck ``runc init``), then remove them."""
    for _ in range(50):
        pids = []
        for d in dirs:
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    pids += [int(x) for x in f.read().split()]
            except OSError:
                pass
        if not pids:
            break
        for d in dirs:  # a frozen cgroup (paused) must thaw for SIGKILL to land
            for name in ("freezer.state", "cgroup.freeze"):
                try:
                    with open(os.path.join(d, name), "w") as f:
                        f.write("THAWED" if name == "freezer.state" else "0")
                except OSError:
                    pass
        _kill(pids)
        await asyncio.sleep(0.05)
    for d in dirs:
        try:
            os.rmdir(d)
        except OSError as e:
            log.debug("reconcile: rmdir %s: %s", d, e)


async def _wait_stopped(ctrd, cid: str, timeout: float = 5.0) -> None:
    from ..ctrd.pb.api.types.task import task_pb2
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if (await ctrd.task_get(cid)).status == task_pb2.STOPPED:
                return
        except NotFound:
            return
        except Exception:
            return
        await asyncio.sleep(0.05)


async def _quiet(aw) -> None:
    try:
        await aw
    except Exception as e:
        log.debug("reconcile: ignored: %s", e)
