"""ContainerManager's rules against a fake containerd: create/start/exit, restart policies, an exit
seen before Start returns, stop, auto-remove, rm -f racing a start, persistence.  No root needed."""
from __future__ import annotations

import asyncio

import pytest

from pouch.daemon.events.exchange import EventExchange
from pouch.daemon.meta.store import MetaStore
from pouch.daemon.mgr.container import ContainerManager
from pouch.errtypes import Conflict, NotFound, NotModified
from pouch.runtime import RuntimeRegistry

from .fakes import FakeCtrd, FakeImages, FakeSandbox


@pytest.fixture
async def env(tmp_path):
    ctrd = FakeCtrd(str(tmp_path / "ctrd"))
    store = MetaStore(str(tmp_path / "home" / "meta" / "meta.db"))
    events = EventExchange()
    sandbox = FakeSandbox()

    def build():
        return ContainerManager(store, ctrd, FakeImages(), events, str(tmp_path / "home"), str(tmp_path / "run"),
                                RuntimeRegistry(default="runc"), sandbox, "/pouch-unit")
    mgr = build()
    loop_task = asyncio.get_running_loop().create_task(mgr.run_events(ctrd.events))
    ns = type("Env", (), {})()
    ns.ctrd, ns.store, ns.events, ns.sandbox, ns.mgr, ns.build = ctrd, store, events, sandbox, mgr, build
    yield ns
    loop_task.cancel()
    await mgr.shutdown()


async def _settle(cond, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


async def test_create_start_exit_records_the_exit_and_releases_the_task(env):
    c = await env.mgr.create({"Image": "busybox", "Cmd": ["true"]}, "one")
    assert c.status == "created" and env.ctrd.containers.keys() == {c.id} and c.id in env.ctrd.snapshots
    await env.mgr.start("one")
    assert c.status == "running" and c.state["Pid"] == env.ctrd.tasks[c.id].pid
    waiter = asyncio.ensure_future(env.mgr.wait("one"))
    env.ctrd.exit(c.id, 3)
    assert await asyncio.wait_for(waiter, 2) == 3
    assert c.status == "exited" and c.state["ExitCode"] == 3 and c.id not in env.ctrd.tasks
    assert ("after_stop", c.id) in env.sandbox.calls
    rec = env.store.get("containers", c.id)
    assert rec["State"]["Status"] == "exited"  # persisted, private fields flat beside the Moby ones
    assert rec["SnapshotKey"] == c.id and rec["ManualStop"] is False and "Internal" in rec
    assert not {"SnapshotKey", "ManualStop", "Internal"} & set(c.inspect())
    with pytest.raises(NotModified):
        await env.mgr.stop("one")


async def test_an_exit_before_start_returns_is_handled_after_it(env):
    c = await env.mgr.create({"Image": "busybox", "Cmd": ["true"]}, "quick")

    async def exits_at_once(cid):
        env.ctrd.exit(cid, 0)
        await asyncio.sleep(0.05)  # the event is handled while Start has not returned yet

    env.ctrd.on_task_start = exits_at_once
    await env.mgr.start("quick")
    await _settle(lambda: c.status == "exited")
    assert c.pending_exit is None and c.id not in env.ctrd.tasks


async def test_on_failure_restarts_with_a_count_and_stop_ends_it(env):
    c = await env.mgr.create({"Image": "busybox", "Cmd": ["false"],
                              "HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}}},
                             "flaky")
    await env.mgr.start("flaky")
    env.ctrd.exit(c.id, 1)
    await _settle(lambda: c.meta["RestartCount"] == 1 and c.status == "running")
    env.ctrd.exit(c.id, 1)
    await _settle(lambda: c.meta["RestartCount"] == 2 and c.status == "running", 3)
    env.ctrd.exit(c.id, 1)  # retries used up
    await _settle(lambda: c.status == "exited")
    await asyncio.sleep(0.3)
    assert c.status == "exited" and c.meta["RestartCount"] == 2


async def test_stop_is_a_manual_stop_that_always_does_not_undo(env):
    c = await env.mgr.create({"Image": "busybox", "Cmd": ["sleep", "9"],
                              "HostConfig": {"RestartPolicy": {"Name": "always"}}}, "svc")
    await env.mgr.start("svc")
    await env.mgr.stop("svc", 1)
    await asyncio.sleep(0.3)
    assert c.status == "exited" and c.private.manual_stop and c.id not in env.ctrd.tasks
    await env.mgr.start("svc")
    assert c.status == "running" and not c.private.manual_stop


async def test_a_restart_pending_is_cancelled_by_stop(env):
    c = await env.mgr.create({"Image": "busybox", "Cmd": ["false"],
                              "HostConfig": {"RestartPolicy": {"Name": "always"}}}, "loop")
    await env.mgr.start("loop")
    c.meta["RestartCount"] = 6  # the next restart waits 6.4 s
    env.ctrd.exit(c.id, 1)
    await _settle(lambda: c.status == "restarting")
    await env.mgr.stop("loop")
    assert c.status == "exited"
    await asyncio.sleep(0.2)
    assert c.status == "exited" and c.restart_task.done()


async def test_auto_remove_removes_everything_after_the_exit(env):
    c = await env.mgr.create({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"AutoRemove": True}}, "gone")
    await env.mgr.start("gone")
    removed = asyncio.ensure_future(env.mgr.wait("gone", "removed"))
    env.ctrd.exit(c.id, 0)
    assert await asyncio.wait_for(removed, 2) == 0
    assert c.id not in env.mgr.containers and "gone" not in env.mgr.names
    assert not env.ctrd.containers and not env.ctrd.snapshots and not env.ctrd.tasks
    assert env.store.get("containers", c.id) is None


async def test_rm_force_waits_for_a_start_in_flight_and_leaves_nothing(env):
    c = await env.mgr.create({"Image": "busybox", "Cmd": ["sleep", "9"]}, "race")
    env.ctrd.task_create_gate = asyncio.Event()
    start = asyncio.ensure_future(env.mgr.start("race"))
    await _settle(lambda: "task_create" in env.ctrd.calls)
    rm = asyncio.ensure_future(env.mgr.remove("race", force=True))
    await asyncio.sleep(0.05)
    assert not rm.done() and c.id in env.ctrd.snapshots  # the snapshot stays while task_create runs
    env.ctrd.task_create_gate.set()
    await asyncio.wait_for(start, 2)
    await asyncio.wait_for(rm, 2)
    assert not env.ctrd.containers and not env.ctrd.snapshots and not env.ctrd.tasks
    with pytest.raises(NotFound):
        await env.mgr.start(c.id)


async def test_start_queued_behind_rm_gets_not_found(env):
    c = await env.mgr.create({"Image": "busybox", "Cmd": ["sleep", "9"]}, "late")
    async with c.lock:
        rm = asyncio.ensure_future(env.mgr._remove_unlocked(c, force=True))
        start = asyncio.ensure_future(env.mgr.start("late"))
        await rm
    with pytest.raises(NotFound):
        await start
    assert not env.ctrd.tasks


async def test_pause_unpause_and_kill_rules(env):
    c = await env.mgr.create({"Image": "busybox", "Cmd": ["sleep", "9"]}, "pz")
    with pytest.raises(Conflict):
        await env.mgr.pause("pz")
    await env.mgr.start("pz")
    await env.mgr.pause("pz")
    assert c.status == "paused"
    with pytest.raises(Conflict):
        await env.mgr.pause("pz")
    await env.mgr.unpause("pz")
    await env.mgr.kill("pz", "KILL")
    await _settle(lambda: c.status == "exited")
    assert c.state["ExitCode"] == 137


async def test_rename_and_list_filters(env):
    a = await env.mgr.create({"Image": "busybox", "Cmd": ["true"], "Labels": {"k": "v"}}, "aa")
    await env.mgr.create({"Image": "busybox", "Cmd": ["true"]}, "bb")
    await env.mgr.rename("aa", "aa2")
    assert env.mgr.get("aa2") is a and "aa" not in env.mgr.names
    assert [c.name for c in env.mgr.list({"label": ["k=v"]})] == ["aa2"]
    assert env.mgr.list(all=False) == []
    assert len(env.mgr.list(limit=1)) == 1
    with pytest.raises(Conflict):
        await env.mgr.rename("bb", "aa2")


async def test_a_new_manager_restores_records_and_adopts_running_tasks(env):
    run = await env.mgr.create({"Image": "busybox", "Cmd": ["sleep", "9"]}, "keep")
    await env.mgr.start("keep")
    done = await env.mgr.create({"Image": "busybox", "Cmd": ["true"]}, "done")
    await env.mgr.shutdown()
    mgr2 = env.build()
    await mgr2.restore()
    assert mgr2.get("keep").status == "running" and mgr2.get("keep").state["Pid"] == run.state["Pid"]
    assert mgr2.get("done").status == "created" and mgr2.get(done.id[:8]).name == "done"
    env.ctrd.tasks.pop(run.id)  # the task vanished while no pouchd watched: a third start sees it exited
    await mgr2.shutdown()
    mgr3 = env.build()
    await mgr3.restore()
    assert mgr3.get("keep").status == "exited"
    await mgr3.shutdown()


async def test_records_of_an_older_pouchd_load_and_inspect_shows_no_private_field(env):
    cid = "f" * 64
    env.ctrd.containers[cid] = {"image": "busybox", "spec": {}, "snapshot": cid}
    env.ctrd.snapshots[cid] = ""
    old = {  # as pouchd wrote it before the typed views (no Platform, no SnapshotKey; stale exec ids)
        "Id": cid, "Name": "old1", "Created": "2026-11-30T10:00:00.000000000Z", "Image": "sha256:" + "ab" * 32,
        "Path": "sh", "Args": [], "Config": {"Image": "busybox", "Cmd": ["sh"]},
        "HostConfig": {"LogConfig": {"Type": "json-file", "Config": {}}, "NetworkMode": "default",
                       "RestartPolicy": {"Name": "no"}, "Runtime": "runc"},
        "State": {"Status": "exited", "ExitCode": 2, "StartedAt": "2026-11-30T10:00:01.000000000Z",
                  "FinishedAt": "2026-11-30T10:00:02.000000000Z"},
        "RestartCount": 0, "Driver": "overlayfs", "LogPath": "", "ManualStop": True,
        "ExecIDs": ["e" * 64], "UpgradeBackups": [cid + "-upgrade-1"], "Internal": {"NetworkingConfig": {}},
    }
    env.store.put("containers", cid, old)
    mgr = env.build()
    await mgr.restore()
    c = mgr.get("old1")
    assert c.private.manual_stop and c.private.snapshot_key == cid
    view = c.inspect()
    assert view["Name"] == "/old1" and view["State"]["ExitCode"] == 2 and view["State"]["Running"] is False
    assert view["Platform"] == "linux" and view["ExecIDs"] is None and view["Mounts"] == []
    assert not {"SnapshotKey", "ManualStop", "Internal", "UpgradeBackups", "Upgrading"} & set(view)
    await mgr.remove("old1")  # the private fields still drive the removal: backups go too
    assert cid not in env.ctrd.containers and cid not in env.ctrd.snapshots
    await mgr.shutdown()


async def test_exec_records_leave_exec_ids_when_they_end_and_stay_bounded(env):
    from pouch.daemon.ctrd.events import TaskEvent
    from pouch.daemon.mgr.exec import KEEP_FINISHED
    c = await env.mgr.create({"Image": "busybox", "Cmd": ["sleep", "9"]}, "ex")
    await env.mgr.start("ex")
    execs = [env.mgr.exec_create("ex", {"Cmd": ["true"]}) for _ in range(KEEP_FINISHED + 5)]
    assert c.meta["ExecIDs"] == [e.id for e in execs]
    for i, e in enumerate(execs):
        e.running = True
        await env.mgr.execs.handle_exit(TaskEvent("/tasks/exit", c.id, e.id, 0, i % 3))
    assert c.meta["ExecIDs"] is None  # none runs any more
    kept = [e for e in execs if e.id in env.mgr.execs.execs]
    assert kept == execs[-KEEP_FINISHED:]  # the newest finished stay inspectable
    assert env.mgr.exec_inspect(kept[-1].id)["ExitCode"] == (len(execs) - 1) % 3
    with pytest.raises(NotFound):
        env.mgr.exec_inspect(execs[0].id)
    await env.mgr.remove("ex", force=True)
    assert not env.mgr.execs.execs  # all go with the container


async def test_kill_hurries_a_stop_instead_of_waiting_for_its_lock(env):
    c = await env.mgr.create({"Image": "busybox", "Cmd": ["sleep", "9"]}, "slow")
    await env.mgr.start("slow")
    ignore_term = env.ctrd.task_kill

    async def term_ignored(cid, sig, all=False):
        if int(sig) != 15:
            await ignore_term(cid, sig, all)

    env.ctrd.task_kill = term_ignored
    stop = asyncio.ensure_future(env.mgr.stop("slow", 30))
    await _settle(lambda: c.stopping)
    await asyncio.wait_for(env.mgr.kill("slow", "KILL"), 1)
    await asyncio.wait_for(stop, 2)
    assert c.status == "exited" and c.state["ExitCode"] == 137 and not c.stopping
