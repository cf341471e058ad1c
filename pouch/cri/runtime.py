"""The CRI RuntimeService: pods and containers over the CRI's own container manager.

Every pod is an infra container (``--sandbox-image``) whose network namespace
gets the pod network through CNI; app containers join its network, IPC and UTS
namespaces (and PID when the pod shares it).  All of them are containers of a
ContainerManager on containerd namespace ``k8s.io`` with its own meta bucket,
so create/start/stop/remove, exits, logs, restore after a pouchd restart and
cleanup on failure are the managers' own.  The CRI facts kubelet reads back
(its configs, the pod IP) ride in the container's record under ``meta["CRI"]``.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import time

from pouch.errtypes import (AlreadyExists, Conflict, InvalidArgument, NotFound, NotModified, PouchError,
                            Timeout)
from pouch.daemon.mgr.container_model import parse_rfc3339

from . import translate
from .pb import api_pb2 as pb
from .stats import CriStats

log = logging.getLogger(__name__)

RUNTIME_NAME = "pouch"
API_VERSION = "v1"


def _enc(msg) -> str:
    return base64.b64encode(msg.SerializeToString()).decode()


def _dec(cls, text: str):
    m = cls()
    m.ParseFromString(base64.b64decode(text or ""))
    return m


def _ns(stamp: str) -> int:
    return int(parse_rfc3339(stamp) * 1e9) if stamp else 0


def _cri(c) -> dict:
    return c.meta.get("CRI") or {}


def _is(c, kind: str) -> bool:
    return (c.config.get("Labels") or {}).get(translate.TYPE) == kind and "CRI" in c.meta


def _match_labels(selector, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# the container manager's events -> CRI container events
_EVENT_TYPES = {"create": pb.CONTAINER_CREATED_EVENT, "start": pb.CONTAINER_STARTED_EVENT,
                "die": pb.CONTAINER_STOPPED_EVENT, "destroy": pb.CONTAINER_DELETED_EVENT}


class RuntimeService:
    def __init__(self, containers, execs, images, runtimes, hooks, puller, sandbox_image: str,
                 stats_period: int, version: str, stream=None) -> None:
        self.containers = containers      # ContainerManager on namespace k8s.io
        self.execs = execs                # its ExecManager
        self.images = images              # ImageManager on k8s.io
        self.runtimes = runtimes
        self.hooks = hooks                # hooks.PodHooks: attaches pods to the CNI network at start
        self.net = hooks.pod_network      # cni.PodNetwork
        self.puller = puller
        self.sandbox_image = sandbox_image
        self.version = version
        self.stream = stream              # streaming.server.StreamServer, when available
        self.stats = CriStats(containers, containers.ctrd, stats_period)
        self.snapshot_root = ""
        self._pod_locks: dict[str, asyncio.Lock] = {}
        self._configs: dict[str, tuple[str, object]] = {}  # container id -> (encoded, decoded) config

    # -- lookups -----------------------------------------------------------------------------
    def _get(self, ref: str, kind: str, what: str):
        if not ref:
            raise InvalidArgument(f"{what} ID must not be empty")
        try:
            c = self.containers.get(ref)
        except NotFound:
            raise NotFound(f"{what} {ref!r} not found") from None
        except InvalidArgument:
            raise NotFound(f"{what} {ref!r} is ambiguous") from None
        if not _is(c, kind):
            raise NotFound(f"{what} {ref!r} not found")
        return c

    def sandbox(self, ref: str):
        return self._get(ref, "sandbox", "pod sandbox")

    def container(self, ref: str):
        return self._get(ref, "container", "container")

    def _pod_containers(self, sid: str) -> list:
        return [c for c in self.containers.containers.values()
                if _is(c, "container") and _cri(c).get("sandbox") == sid]

    def _config(self, c, cls):
        """The CRI config a container was made with, decoded once (List* answer from this cache)."""
        text = _cri(c)["config"]
        hit = self._configs.get(c.id)
        if hit is None or hit[0] is not text:
            hit = (text, _dec(cls, text))
            self._configs[c.id] = hit
        return hit[1]

    def _lock(self, sid: str) -> asyncio.Lock:
        return self._pod_locks.setdefault(sid, asyncio.Lock())

    # -- runtime -------------------------------------------------------------------------------
    async def Version(self, req, ctx):
        return pb.VersionResponse(version="0.1.0", runtime_name=RUNTIME_NAME, runtime_version=self.version,
                                  runtime_api_version=API_VERSION)

    async def Status(self, req, ctx):
        net_ok = self.net.ready
        conds = [pb.RuntimeCondition(type="RuntimeReady", status=True),
                 pb.RuntimeCondition(type="NetworkReady", status=net_ok,
                                     reason="" if net_ok else "NetworkPluginNotReady",
                                     message="" if net_ok else self.net.error)]
        info = {}
        if req.verbose:
            info["config"] = json.dumps({"sandboxImage": self.sandbox_image, "cniConfDir": self.net.conf_dir,
                                         "runtimes": list(self.runtimes.names())})
        return pb.StatusResponse(status=pb.RuntimeStatus(conditions=conds), info=info)

    async def UpdateRuntimeConfig(self, req, ctx):
        self.net.set_pod_cidr(req.runtime_config.network_config.pod_cidr)
        return pb.UpdateRuntimeConfigResponse()

    async def RuntimeConfig(self, req, ctx):
        return pb.RuntimeConfigResponse(linux=pb.LinuxRuntimeConfiguration(cgroup_driver=pb.CGROUPFS))

    # -- pods ------------------------------------------------------------------------------------
    def _runtime(self, handler: str) -> str:
        name = handler or self.runtimes.default
        if name not in self.runtimes.names():
            raise InvalidArgument(f"unknown runtime handler {handler!r}: this pouchd has "
                                  f"{', '.join(self.runtimes.names())}")
        return name

    async def _ensure_image(self, ref: str):
        try:
            return self.images.get(ref)
        except NotFound:
            await self.puller.pull(ref)
            return self.images.get(ref)

    async def RunPodSandbox(self, req, ctx):
        cfg = req.config
        name = translate.sandbox_name(cfg.metadata)
        if name in self.containers.names:
            raise AlreadyExists(f"pod sandbox {name} already exists ({self.containers.names[name]})")
        runtime = self._runtime(req.runtime_handler)
        await self._ensure_image(self.sandbox_image)
        host_net = cfg.linux.security_context.namespace_options.network == pb.NODE
        body = translate.sandbox_body(cfg, self.sandbox_image, runtime)
        c = await self.containers.create(body, name)
        c.meta["CRI"] = {"config": _enc(cfg), "handler": runtime, "ip": "", "ready": False}
        if not host_net:  # what PodHooks gives CNI when the infra container starts
            c.meta["CRI"]["pod"] = {"name": cfg.metadata.name, "namespace": cfg.metadata.namespace,
                                    "uid": cfg.metadata.uid}
            c.meta["CRI"]["ports"] = [{"hostPort": p.host_port, "containerPort": p.container_port,
                                       "protocol": pb.Protocol.Name(p.protocol).lower(), "hostIP": p.host_ip}
                                      for p in cfg.port_mappings if p.host_port > 0]
        self.containers.save(c)
        try:
            await self.containers.start(c.id)
        except BaseException:
            await _quiet(self.hooks.detach_pod(c))
            await _quiet(self.containers.remove(c.id, force=True))
            raise
        c.meta["CRI"]["ready"] = True
        self.containers.save(c)
        return pb.RunPodSandboxResponse(pod_sandbox_id=c.id)

    async def StopPodSandbox(self, req, ctx):
        c = self.sandbox(req.pod_sandbox_id)
        async with self._lock(c.id):
            for ct in self._pod_containers(c.id):
                if ct.running:
                    await _ignore_stopped(self.containers.stop(ct.id, 0))
            await self._teardown_net(c)
            if c.running:
                await _ignore_stopped(self.containers.stop(c.id, 0))
            c.meta["CRI"]["ready"] = False
            self.containers.save(c)
        return pb.StopPodSandboxResponse()

    async def _teardown_net(self, c) -> None:
        await self.hooks.detach_pod(c)
        self.containers.save(c)

    async def RemovePodSandbox(self, req, ctx):
        try:
            c = self.sandbox(req.pod_sandbox_id)
        except NotFound:
            return pb.RemovePodSandboxResponse()
        async with self._lock(c.id):
            for ct in self._pod_containers(c.id):
                await self.containers.remove(ct.id, force=True)
            await self._teardown_net(c)
            await self.containers.remove(c.id, force=True)
        self._pod_locks.pop(c.id, None)
        for cid in [k for k in self._configs if k not in self.containers.containers]:
            self._configs.pop(cid, None)
        return pb.RemovePodSandboxResponse()

    def _sandbox_state(self, c) -> int:
        return pb.SANDBOX_READY if c.running and _cri(c).get("ready") else pb.SANDBOX_NOTREADY

    def _sandbox_status(self, c) -> pb.PodSandboxStatus:
        cfg = self._config(c, pb.PodSandboxConfig)
        ns = cfg.linux.security_context.namespace_options
        return pb.PodSandboxStatus(
            id=c.id, metadata=cfg.metadata, state=self._sandbox_state(c), created_at=_ns(c.meta["Created"]),
            network=pb.PodSandboxNetworkStatus(ip=_cri(c).get("ip", "") if c.running else ""),
            linux=pb.LinuxPodSandboxStatus(namespaces=pb.Namespace(options=pb.NamespaceOption(
                network=ns.network, pid=ns.pid, ipc=ns.ipc))),
            labels=dict(cfg.labels), annotations=dict(cfg.annotations), runtime_handler=_cri(c).get("handler", ""))

    async def PodSandboxStatus(self, req, ctx):
        c = self.sandbox(req.pod_sandbox_id)
        info = {}
        if req.verbose:
            info["info"] = json.dumps({"pid": c.state.get("Pid", 0), "image": self.sandbox_image,
                                       "runtimeHandler": _cri(c).get("handler", ""),
                                       "netns": _cri(c).get("netns", ""),
                                       "config": json.loads(_msg_json(self._config(c, pb.PodSandboxConfig)))})
        return pb.PodSandboxStatusResponse(status=self._sandbox_status(c), info=info, timestamp=time.time_ns())

    async def ListPodSandbox(self, req, ctx):
        f = req.filter
        out = []
        for c in self.containers.containers.values():
            if not _is(c, "sandbox"):
                continue
            if f.id and not c.id.startswith(f.id):
                continue
            state = self._sandbox_state(c)
            if f.HasField("state") and f.state.state != state:
                continue
            cfg = self._config(c, pb.PodSandboxConfig)
            if f.label_selector and not _match_labels(f.label_selector, cfg.labels):
                continue
            out.append(pb.PodSandbox(id=c.id, metadata=cfg.metadata, state=state, created_at=_ns(c.meta["Created"]),
                                     labels=dict(cfg.labels), annotations=dict(cfg.annotations),
                                     runtime_handler=_cri(c).get("handler", "")))
        return pb.ListPodSandboxResponse(items=out)

    # -- containers --------------------------------------------------------------------------
    async def CreateContainer(self, req, ctx):
        sb = self.sandbox(req.pod_sandbox_id)
        cfg = req.config
        sbcfg = self._config(sb, pb.PodSandboxConfig)
        name = translate.container_name(cfg.metadata, sbcfg.metadata)
        if name in self.containers.names:
            raise AlreadyExists(f"container {name} already exists ({self.containers.names[name]})")
        if not cfg.image.image:
            raise InvalidArgument("container config must name an image")
        try:
            self.images.get(cfg.image.image)
        except NotFound:
            raise NotFound(f"image {cfg.image.image!r} not found: pull it first") from None
        if not sb.running:
            raise Conflict(f"pod sandbox {sb.id} is not running")
        host_pid = sbcfg.linux.security_context.namespace_options.pid == pb.NODE
        body = translate.container_body(cfg, sb.id, sbcfg, _cri(sb).get("handler", ""), host_pid,
                                        sbcfg.log_directory)
        if cfg.linux.security_context.namespace_options.pid == pb.POD or (
                not cfg.linux.security_context.HasField("namespace_options")
                and sbcfg.linux.security_context.namespace_options.pid == pb.POD):
            body["HostConfig"]["PidMode"] = f"container:{sb.id}"
        c = await self.containers.create(body, name)
        c.meta["CRI"] = {"config": _enc(cfg), "sandbox": sb.id,
                         "log_path": os.path.join(sbcfg.log_directory, cfg.log_path) if cfg.log_path else ""}
        self.containers.save(c)
        return pb.CreateContainerResponse(container_id=c.id)

    async def StartContainer(self, req, ctx):
        c = self.container(req.container_id)
        sb = self.sandbox(_cri(c)["sandbox"])
        if not sb.running:
            raise Conflict(f"pod sandbox {sb.id} is not running")
        if c.status == "exited":
            raise Conflict(f"container {c.id} has exited: CRI containers start once")
        try:
            await self.containers.start(c.id)
        except NotModified:
            raise Conflict(f"container {c.id} is already running") from None
        return pb.StartContainerResponse()

    async def StopContainer(self, req, ctx):
        c = self.container(req.container_id)
        if c.running:
            await _ignore_stopped(self.containers.stop(c.id, int(req.timeout)))
        return pb.StopContainerResponse()

    async def RemoveContainer(self, req, ctx):
        try:
            c = self.container(req.container_id)
        except NotFound:
            return pb.RemoveContainerResponse()
        await self.containers.remove(c.id, force=True)
        self._configs.pop(c.id, None)
        return pb.RemoveContainerResponse()

    @staticmethod
    def _state(c) -> int:
        st = c.status
        if st == "created":
            return pb.CONTAINER_CREATED
        if st in ("running", "paused"):
            return pb.CONTAINER_RUNNING
        if st in ("exited", "dead", "restarting"):
            return pb.CONTAINER_EXITED
        return pb.CONTAINER_UNKNOWN

    def _brief(self, c, cfg: pb.ContainerConfig) -> pb.Container:
        return pb.Container(id=c.id, pod_sandbox_id=_cri(c)["sandbox"], metadata=cfg.metadata,
                            image=pb.ImageSpec(image=cfg.image.image), image_ref=c.meta.get("Image", ""),
                            state=self._state(c), created_at=_ns(c.meta["Created"]),
                            labels=dict(cfg.labels), annotations=dict(cfg.annotations))

    async def ListContainers(self, req, ctx):
        f = req.filter
        out = []
        for c in self.containers.containers.values():
            if not _is(c, "container"):
                continue
            if f.id and not c.id.startswith(f.id):
                continue
            if f.pod_sandbox_id and not _cri(c).get("sandbox", "").startswith(f.pod_sandbox_id):
                continue
            if f.HasField("state") and f.state.state != self._state(c):
                continue
            cfg = self._config(c, pb.ContainerConfig)
            if f.label_selector and not _match_labels(f.label_selector, cfg.labels):
                continue
            out.append(self._brief(c, cfg))
        return pb.ListContainersResponse(containers=out)

    def _status(self, c) -> pb.ContainerStatus:
        cfg = self._config(c, pb.ContainerConfig)
        s = c.state
        st = self._state(c)
        reason = message = ""
        if st == pb.CONTAINER_EXITED:
            reason = "OOMKilled" if s.get("OOMKilled") else "Completed" if not s.get("ExitCode") else "Error"
            message = s.get("Error", "")
        started = _ns(s.get("StartedAt", "")) if st != pb.CONTAINER_CREATED else 0
        finished = _ns(s.get("FinishedAt", "")) if st == pb.CONTAINER_EXITED else 0
        return pb.ContainerStatus(
            id=c.id, metadata=cfg.metadata, state=st, created_at=_ns(c.meta["Created"]), started_at=started,
            finished_at=finished, exit_code=int(s.get("ExitCode", 0)) if st == pb.CONTAINER_EXITED else 0,
            image=pb.ImageSpec(image=cfg.image.image), image_ref=c.meta.get("Image", ""), reason=reason,
            message=message, labels=dict(cfg.labels), annotations=dict(cfg.annotations), mounts=list(cfg.mounts),
            log_path=_cri(c).get("log_path", ""), resources=pb.ContainerResources(linux=cfg.linux.resources))

    async def ContainerStatus(self, req, ctx):
        c = self.container(req.container_id)
        info = {}
        if req.verbose:
            info["info"] = json.dumps({"pid": c.state.get("Pid", 0), "sandboxID": _cri(c)["sandbox"],
                                       "runtimeType": c.host_config.get("Runtime", ""),
                                       "config": json.loads(_msg_json(self._config(c, pb.ContainerConfig)))})
        return pb.ContainerStatusResponse(status=self._status(c), info=info)

    async def UpdateContainerResources(self, req, ctx):
        c = self.container(req.container_id)
        changes = translate.resources(req.linux)
        if changes:
            await self.containers.update(c.id, changes)
        cfg = self._config(c, pb.ContainerConfig)
        cfg.linux.resources.MergeFrom(req.linux)
        c.meta["CRI"]["config"] = _enc(cfg)
        self.containers.save(c)
        return pb.UpdateContainerResourcesResponse()

    async def ReopenContainerLog(self, req, ctx):
        c = self.container(req.container_id)
        if not c.running or c.logger is None:
            raise Conflict(f"container {c.id} is not running")
        if hasattr(c.logger, "reopen"):
            c.logger.reopen()
        return pb.ReopenContainerLogResponse()

    # -- exec --------------------------------------------------------------------------------------
    async def ExecSync(self, req, ctx):
        c = self.container(req.container_id)
        if not req.cmd:
            raise InvalidArgument("exec command must not be empty")
        if c.status != "running":
            raise Conflict(f"container {c.id} is not running")
        out, err = bytearray(), bytearray()
        e = self.execs.create(c.id, {"Cmd": list(req.cmd), "AttachStdout": True, "AttachStderr": True})
        q: asyncio.Queue = asyncio.Queue()
        e.attached.add(q)

        async def collect():
            while True:
                item = await q.get()
                if item is None:
                    break
                (out if item[0] == "stdout" else err).extend(item[1])
            await e.done.wait()
        try:
            await self.execs.start(e.id)
        except InvalidArgument as exc:  # no such executable: the shell's answer
            return pb.ExecSyncResponse(stderr=str(exc).encode(), exit_code=e.exit_code or 127)
        try:
            await asyncio.wait_for(collect(), req.timeout if req.timeout > 0 else None)
        except asyncio.TimeoutError:
            await _quiet(self.containers.ctrd.task_kill(c.id, 9, exec_id=e.id))
            raise Timeout(f"timeout {req.timeout}s exceeded running {list(req.cmd)}") from None
        finally:
            self.execs.execs.pop(e.id, None)
        return pb.ExecSyncResponse(stdout=bytes(out), stderr=bytes(err), exit_code=int(e.exit_code or 0))

    def _streaming(self):
        if self.stream is None:
            raise _Unimplemented("the CRI streaming server is not available in this build")
        return self.stream

    async def Exec(self, req, ctx):
        c = self.container(req.container_id)
        if not req.cmd:
            raise InvalidArgument("exec command must not be empty")
        if not (req.stdin or req.stdout or req.stderr):
            raise InvalidArgument("one of stdin, stdout, or stderr must be set")
        if req.tty and req.stderr:
            raise InvalidArgument("tty and stderr cannot both be set")
        if c.status != "running":
            raise Conflict(f"container {c.id} is not running")
        url = self._streaming().get_exec_url(c.id, list(req.cmd), req.tty, req.stdin, req.stdout, req.stderr)
        return pb.ExecResponse(url=url)

    async def Attach(self, req, ctx):
        c = self.container(req.container_id)
        if not (req.stdin or req.stdout or req.stderr):
            raise InvalidArgument("one of stdin, stdout, or stderr must be set")
        if c.status != "running":
            raise Conflict(f"container {c.id} is not running")
        url = self._streaming().get_attach_url(c.id, req.tty, req.stdin, req.stdout, req.stderr)
        return pb.AttachResponse(url=url)

    async def PortForward(self, req, ctx):
        sb = self.sandbox(req.pod_sandbox_id)
        if not sb.running:
            raise Conflict(f"pod sandbox {sb.id} is not running")
        for p in req.port:
            if not 0 < p < 65536:
                raise InvalidArgument(f"invalid port {p}")
        url = self._streaming().get_portforward_url(sb.id, list(req.port))
        return pb.PortForwardResponse(url=url)

    # -- stats -----------------------------------------------------------------------------------
    def _attributes(self, c) -> pb.ContainerAttributes:
        cfg = self._config(c, pb.ContainerConfig)
        return pb.ContainerAttributes(id=c.id, metadata=cfg.metadata, labels=dict(cfg.labels),
                                      annotations=dict(cfg.annotations))

    async def _container_stats(self, c) -> pb.ContainerStats:
        return await self.stats.container(c, self._attributes(c), self.snapshot_root)

    async def ContainerStats(self, req, ctx):
        c = self.container(req.container_id)
        return pb.ContainerStatsResponse(stats=await self._container_stats(c))

    async def ListContainerStats(self, req, ctx):
        f = req.filter
        out = []
        for c in list(self.containers.containers.values()):
            if not _is(c, "container") or not c.running:
                continue
            if f.id and not c.id.startswith(f.id):
                continue
            if f.pod_sandbox_id and not _cri(c).get("sandbox", "").startswith(f.pod_sandbox_id):
                continue
            cfg = self._config(c, pb.ContainerConfig)
            if f.label_selector and not _match_labels(f.label_selector, cfg.labels):
                continue
            out.append(await self._container_stats(c))
        return pb.ListContainerStatsResponse(stats=out)

    async def _pod_stats(self, sb) -> pb.PodSandboxStats:
        cfg = self._config(sb, pb.PodSandboxConfig)
        attrs = pb.PodSandboxAttributes(id=sb.id, metadata=cfg.metadata, labels=dict(cfg.labels),
                                        annotations=dict(cfg.annotations))
        linux = pb.LinuxPodSandboxStats()
        members = [c for c in self._pod_containers(sb.id) if c.running]
        cpu_total = mem_ws = mem_usage = 0
        now = time.time_ns()
        for c in [sb] + members:
            if not c.running:
                continue
            cpu, mem = await self.stats.cgroup(c)
            cpu_total += cpu.usage_core_nano_seconds.value
            mem_ws += mem.working_set_bytes.value
            mem_usage += mem.usage_bytes.value
        for c in members:
            linux.containers.append(await self._container_stats(c))
        linux.cpu.CopyFrom(pb.CpuUsage(timestamp=now, usage_core_nano_seconds=pb.UInt64Value(value=cpu_total)))
        linux.memory.CopyFrom(pb.MemoryUsage(timestamp=now, working_set_bytes=pb.UInt64Value(value=mem_ws),
                                             usage_bytes=pb.UInt64Value(value=mem_usage)))
        if sb.running and sb.state.get("Pid"):
            linux.network.CopyFrom(self.stats.network(sb.state["Pid"]))
        count = 0
        for c in [sb] + members:
            count += len(await _pids(self.containers.ctrd, c.id)) if c.running else 0
        linux.process.CopyFrom(pb.ProcessUsage(timestamp=now, process_count=pb.UInt64Value(value=count)))
        return pb.PodSandboxStats(attributes=attrs, linux=linux)

    async def PodSandboxStats(self, req, ctx):
        sb = self.sandbox(req.pod_sandbox_id)
        return pb.PodSandboxStatsResponse(stats=await self._pod_stats(sb))

    async def ListPodSandboxStats(self, req, ctx):
        f = req.filter
        out = []
        for c in list(self.containers.containers.values()):
            if not _is(c, "sandbox") or not c.running:
                continue
            if f.id and not c.id.startswith(f.id):
                continue
            cfg = self._config(c, pb.PodSandboxConfig)
            if f.label_selector and not _match_labels(f.label_selector, cfg.labels):
                continue
            out.append(await self._pod_stats(c))
        return pb.ListPodSandboxStatsResponse(stats=out)

    # -- events ----------------------------------------------------------------------------------
    def _event(self, ev: dict) -> pb.ContainerEventResponse | None:
        """A container event of the exchange -> the CRI event kubelet's evented PLEG reads (the
        pod's sandbox status and its containers' statuses as they are now), or None when not ours."""
        kind = _EVENT_TYPES.get(ev["Action"]) if ev["Type"] == "container" else None
        attrs = ev["Actor"]["Attributes"]
        pod_kind = attrs.get(translate.TYPE)
        if kind is None or pod_kind not in ("sandbox", "container"):
            return None
        cid = ev["Actor"]["ID"]
        if cid not in self.containers.containers and kind != pb.CONTAINER_DELETED_EVENT:
            return None  # the HTTP face's container, or gone already
        sid = cid if pod_kind == "sandbox" else attrs.get(translate.SANDBOX_ID, "")
        out = pb.ContainerEventResponse(container_id=cid, container_event_type=kind, created_at=ev["timeNano"])
        sb = self.containers.containers.get(sid)
        if sb is not None and _is(sb, "sandbox"):
            out.pod_sandbox_status.CopyFrom(self._sandbox_status(sb))
            out.containers_statuses.extend(self._status(ct) for ct in self._pod_containers(sid))
        return out

    async def GetContainerEvents(self, req, ctx):
        """Container created/started/stopped/deleted events, for pods' app and infra containers,
        until the client goes away."""
        exchange = self.containers.events
        q = exchange.subscribe()
        try:
            while True:
                ev = await q.get()
                out = self._event(ev)
                if out is not None:
                    await ctx.write(out)
        finally:
            exchange.unsubscribe(q)

    async def CheckpointContainer(self, req, ctx):
        from pouch.daemon.mgr.checkpoint import require_criu
        self.container(req.container_id)
        await require_criu()  # 501 with `criu check`'s report where CRIU cannot work (this kernel's vdso)
        raise _Unimplemented("CheckpointContainer is not implemented by pouchd's CRI (pouch checkpoint create "
                             "serves the HTTP face)")

    async def ListMetricDescriptors(self, req, ctx):
        raise _Unimplemented("ListMetricDescriptors is not implemented by pouchd's CRI (nor by containerd 1.6): "
                             "kubelet's cadvisor stats provider serves these metrics")

    async def ListPodSandboxMetrics(self, req, ctx):
        raise _Unimplemented("ListPodSandboxMetrics is not implemented by pouchd's CRI (nor by containerd 1.6): "
                             "kubelet's cadvisor stats provider serves these metrics")

    # -- restore ---------------------------------------------------------------------------------
    def live_ids(self) -> list[str]:
        return [c.id for c in self.containers.list() if c.running]


class _Unimplemented(PouchError):
    http_status = 501


async def _pids(ctrd, cid: str) -> list[int]:
    try:
        return await ctrd.task_pids(cid)
    except Exception:
        return []


def _msg_json(msg) -> str:
    from google.protobuf import json_format
    return json_format.MessageToJson(msg)


async def _ignore_stopped(aw) -> None:
    try:
        await aw
    except NotModified:
        pass


async def _quiet(aw) -> None:
    try:
        await aw
    except Exception as e:
        log.debug("ignored during cleanup: %s", e)
