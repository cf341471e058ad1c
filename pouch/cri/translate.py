"""CRI configs -> the Moby-shaped create bodies the container manager takes.

A pod's infra container and its app containers are ordinary containers of the
CRI's own container manager (namespace k8s.io): this module only maps fields
(metadata -> names and labels, security context -> HostConfig security fields,
resources, mounts, devices, namespaces).  Validation that needs the manager
(images, other containers) stays there.
"""
from __future__ import annotations

import os

from pouch.errtypes import InvalidArgument

from .pb import api_pb2 as pb

# labels pouch puts on the containers it makes for the CRI
TYPE = "io.kubernetes.cri.type"           # "sandbox" | "container"
SANDBOX_ID = "io.kubernetes.cri.sandbox-id"
ANNOTATION_PREFIX = "io.pouch.cri.annotation/"  # annotations ride as prefixed labels

PROPAGATION = {pb.PROPAGATION_PRIVATE: "rprivate", pb.PROPAGATION_HOST_TO_CONTAINER: "rslave",
               pb.PROPAGATION_BIDIRECTIONAL: "rshared"}


def sandbox_name(md: pb.PodSandboxMetadata) -> str:
    if not md.name or not md.namespace or not md.uid:
        raise InvalidArgument("sandbox config must include metadata with name, namespace and uid")
    return f"k8s_POD_{md.name}_{md.namespace}_{md.uid}_{md.attempt}"


def container_name(md: pb.ContainerMetadata, pod: pb.PodSandboxMetadata) -> str:
    if not md.name:
        raise InvalidArgument("container config must include metadata with a name")
    return f"k8s_{md.name}_{pod.name}_{pod.namespace}_{pod.uid}_{md.attempt}"


def _labels(labels, annotations, kind: str, extra: dict | None = None) -> dict:
    out = {k: v for k, v in labels.items()}
    out.update({ANNOTATION_PREFIX + k: v for k, v in annotations.items()})
    out[TYPE] = kind
    out.update(extra or {})
    return out


def split_labels(labels: dict) -> tuple[dict, dict]:
    """A container's labels -> (the CRI labels, the CRI annotations) as the client gave them."""
    lab, ann = {}, {}
    for k, v in (labels or {}).items():
        if k.startswith(ANNOTATION_PREFIX):
            ann[k[len(ANNOTATION_PREFIX):]] = v
        elif k not in (TYPE, SANDBOX_ID):
            lab[k] = v
    return lab, ann


def _security_opts(seccomp: pb.SecurityProfile | None, seccomp_path: str, apparmor: pb.SecurityProfile | None,
                   apparmor_name: str, no_new_privs: bool, privileged: bool) -> list[str]:
    opts = []
    if seccomp is not None:  # given, even empty: RuntimeDefault is its zero value
        if seccomp.profile_type == pb.SecurityProfile.Unconfined:
            opts.append("seccomp=unconfined")
        elif seccomp.profile_type == pb.SecurityProfile.Localhost:
            opts.append("seccomp=" + _localhost(seccomp.localhost_ref, "seccomp"))
    elif not seccomp_path:
        opts.append("seccomp=unconfined")  # CRI: no profile given means unconfined (kubelet names RuntimeDefault)
    else:
        if seccomp_path == "unconfined":
            opts.append("seccomp=unconfined")
        elif seccomp_path.startswith("localhost/"):
            opts.append("seccomp=" + _localhost(seccomp_path[len("localhost/"):], "seccomp"))
        elif seccomp_path not in ("runtime/default", "docker/default"):
            raise InvalidArgument(f"unsupported seccomp profile {seccomp_path!r}")
    if apparmor is not None and apparmor.ByteSize():
        if apparmor.profile_type == pb.SecurityProfile.Localhost:
            opts.append("apparmor=" + apparmor.localhost_ref)
        elif apparmor.profile_type == pb.SecurityProfile.Unconfined:
            opts.append("apparmor=unconfined")
    elif apparmor_name.startswith("localhost/"):
        opts.append("apparmor=" + apparmor_name[len("localhost/"):])
    if no_new_privs and not privileged:
        opts.append("no-new-privileges")
    return opts


def _localhost(ref: str, what: str) -> str:
    if not ref.startswith("/") or not os.path.isfile(ref):
        raise InvalidArgument(f"{what} profile {ref!r} not found: a Localhost profile is an absolute path "
                              f"to an existing file")
    return ref


def dns_fields(dns: pb.DNSConfig) -> dict:
    return {"Dns": list(dns.servers), "DnsSearch": list(dns.searches), "DnsOptions": list(dns.options)}


def resources(r: pb.LinuxContainerResources) -> dict:
    """CRI resources -> Moby HostConfig resource fields (zero values mean unset)."""
    out = {}
    for moby, val in (("CpuPeriod", r.cpu_period), ("CpuQuota", r.cpu_quota), ("CpuShares", r.cpu_shares),
                      ("Memory", r.memory_limit_in_bytes), ("MemorySwap", r.memory_swap_limit_in_bytes),
                      ("CpusetCpus", r.cpuset_cpus), ("CpusetMems", r.cpuset_mems)):
        if val:
            out[moby] = val
    if r.oom_score_adj:
        out["OomScoreAdj"] = int(r.oom_score_adj)
    return out


def sandbox_body(cfg: pb.PodSandboxConfig, image: str, runtime: str) -> dict:
    """The infra container: holds the pod's network, IPC and UTS namespaces (and PID, when shared)."""
    linux = cfg.linux
    sc = linux.security_context
    ns = sc.namespace_options
    host_net = ns.network == pb.NODE
    host = {
        "NetworkMode": "host" if host_net else "none",
        "IpcMode": "host" if ns.ipc == pb.NODE else "shareable",
        "PidMode": "host" if ns.pid == pb.NODE else "",
        "Runtime": runtime, "CgroupParent": linux.cgroup_parent or "",
        "Sysctls": dict(linux.sysctls), "Privileged": sc.privileged,
        "ReadonlyRootfs": sc.readonly_rootfs,
        "SecurityOpt": _security_opts(sc.seccomp if sc.HasField("seccomp") else None, sc.seccomp_profile_path,
                                      None, "", False, sc.privileged),
        "LogConfig": {"Type": "none"}, "ShmSize": 64 << 20,
        **dns_fields(cfg.dns_config),
    }
    if linux.HasField("resources"):
        host.update({k: v for k, v in resources(linux.resources).items() if k in ("CpuShares",)})
    user = ""
    if sc.HasField("run_as_user"):
        user = str(sc.run_as_user.value)
        if sc.HasField("run_as_group"):
            user += f":{sc.run_as_group.value}"
    if len(cfg.hostname) > 63:
        raise InvalidArgument(f"hostname {cfg.hostname[:20]}...: at most 63 characters")
    return {"Image": image, "Hostname": "" if host_net else cfg.hostname,
            "User": user, "SpecAnnotation": {
                "io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-name": cfg.metadata.name,
                "io.kubernetes.cri.sandbox-namespace": cfg.metadata.namespace,
                "io.kubernetes.cri.sandbox-uid": cfg.metadata.uid},
            "Labels": _labels(cfg.labels, cfg.annotations, "sandbox"), "HostConfig": host}


def container_body(cfg: pb.ContainerConfig, sandbox_id: str, sandbox_cfg: pb.PodSandboxConfig,
                   runtime: str, host_pid: bool, log_dir: str) -> dict:
    """An app container in a pod: joins the infra container's network, IPC and UTS namespaces."""
    lx = cfg.linux
    sc = lx.security_context
    ns = sc.namespace_options
    pod_ns = sandbox_cfg.linux.security_context.namespace_options
    peer = f"container:{sandbox_id}"
    if ns.pid == pb.NODE or host_pid:
        pid_mode = "host"
    elif ns.pid == pb.POD:
        pid_mode = peer
    elif ns.pid == pb.TARGET:
        if not ns.target_id:
            raise InvalidArgument("namespace mode TARGET needs a target_id")
        pid_mode = f"container:{ns.target_id}"
    else:
        pid_mode = ""
    host = {
        "NetworkMode": "host" if pod_ns.network == pb.NODE else peer,
        "IpcMode": "host" if pod_ns.ipc == pb.NODE else peer,
        "UTSMode": "host" if pod_ns.network == pb.NODE else peer, "PidMode": pid_mode,
        "Runtime": runtime, "CgroupParent": sandbox_cfg.linux.cgroup_parent or "",
        "Privileged": sc.privileged, "ReadonlyRootfs": sc.readonly_rootfs,
        "CapAdd": [_cap(c) for c in sc.capabilities.add_capabilities],
        "CapDrop": [_cap(c) for c in sc.capabilities.drop_capabilities],
        "GroupAdd": [str(g) for g in sc.supplemental_groups],
        "SecurityOpt": _security_opts(sc.seccomp if sc.HasField("seccomp") else None, sc.seccomp_profile_path,
                                      sc.apparmor if sc.HasField("apparmor") else None, sc.apparmor_profile,
                                      sc.no_new_privs, sc.privileged),
        "Mounts": [_mount(m) for m in cfg.mounts],
        "Devices": [{"PathOnHost": d.host_path, "PathInContainer": d.container_path,
                     "CgroupPermissions": d.permissions or "rwm"} for d in cfg.devices],
        "LogConfig": {"Type": "cri", "Config": {"path": os.path.join(log_dir, cfg.log_path)}}
        if cfg.log_path and log_dir else {"Type": "none"},
        **resources(lx.resources),
    }
    if not sc.privileged:
        if sc.masked_paths:
            host["MaskedPaths"] = list(sc.masked_paths)
        if sc.readonly_paths:
            host["ReadonlyPaths"] = list(sc.readonly_paths)
    user = sc.run_as_username
    if sc.HasField("run_as_user"):
        user = str(sc.run_as_user.value)
    if sc.HasField("run_as_group"):
        if not user:
            raise InvalidArgument("run_as_group is specified without run_as_user or run_as_username")
        user += f":{sc.run_as_group.value}"
    env = []
    for kv in cfg.envs:
        if not kv.key:
            raise InvalidArgument("an environment variable needs a name")
        env.append(f"{kv.key}={kv.value}")
    body = {
        "Image": cfg.image.image, "Cmd": list(cfg.args) or None,
        "Entrypoint": list(cfg.command) or None, "Env": env, "WorkingDir": cfg.working_dir,
        "Tty": cfg.tty, "OpenStdin": cfg.stdin, "StdinOnce": cfg.stdin_once, "User": user,
        "Labels": _labels(cfg.labels, cfg.annotations, "container", {SANDBOX_ID: sandbox_id}),
        # the runc v2 shim groups containers by this annotation: one shim per pod, as with containerd's CRI
        "SpecAnnotation": {"io.kubernetes.cri.container-type": "container",
                           "io.kubernetes.cri.sandbox-id": sandbox_id,
                           "io.kubernetes.cri.container-name": cfg.metadata.name,
                           "io.kubernetes.cri.image-name": cfg.image.image},
        "HostConfig": host,
    }
    if body["Entrypoint"] is None and body["Cmd"] is not None:
        body.pop("Entrypoint")
    return body


def _cap(name: str) -> str:
    name = name.upper()
    if name == "ALL":
        return name
    return name if name.startswith("CAP_") else "CAP_" + name


def _mount(m: pb.Mount) -> dict:
    if not m.container_path.startswith("/"):
        raise InvalidArgument(f"mount container path must be absolute: {m.container_path!r}")
    if not m.host_path:
        raise InvalidArgument(f"mount {m.container_path}: host path is empty")
    src = m.host_path
    if not os.path.exists(src):
        raise InvalidArgument(f"mount {m.container_path}: host path {src} does not exist")
    src = os.path.realpath(src)
    if m.propagation in (pb.PROPAGATION_BIDIRECTIONAL, pb.PROPAGATION_HOST_TO_CONTAINER):
        _check_peer_group(src, m.propagation == pb.PROPAGATION_BIDIRECTIONAL)
    return {"Type": "bind", "Source": src, "Target": m.container_path,
            "ReadOnly": m.readonly, "BindOptions": {"Propagation": PROPAGATION.get(m.propagation, "rprivate")}}


def _mount_of(path: str, mountinfo: str = "/proc/self/mountinfo") -> tuple[str, set[str]]:
    """The mount point holding ``path`` and its propagation tags ("shared", "master") from mountinfo."""
    best, tags = "/", set()
    with open(mountinfo) as f:
        for line in f:
            fields = line.split()
            point = fields[4].replace("\\040", " ")
            # the longest mount point holding path; later lines are mounted on top of earlier ones
            if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
                optional = fields[6:fields.index("-")]
                best, tags = point, {o.split(":")[0] for o in optional}
    return best, tags


def _check_peer_group(path: str, bidirectional: bool) -> None:
    """A Bidirectional mount needs its host path on a shared mount, HostToContainer on a shared or
    slave one; otherwise nothing would propagate (containerd's CRI refuses the same)."""
    point, tags = _mount_of(path)
    if "shared" in tags or not bidirectional and "master" in tags:
        return
    need = "shared" if bidirectional else "shared or slave"
    raise InvalidArgument(f"mount propagation {'Bidirectional' if bidirectional else 'HostToContainer'}: "
                          f"host path {path} is on mount {point}, which is not {need} "
                          f"(make it shared with: mount --make-rshared {point})")
