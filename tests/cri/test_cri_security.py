"""Pod and container options kubelet passes: DNS, sysctls, PID sharing, host network, the security
context (user, groups, capabilities, read-only rootfs, no-new-privs, masked paths), env and mounts."""
from __future__ import annotations

import os
import socket

import pytest

pytestmark = pytest.mark.integration


def _exec(cri, cid, cmd):
    r = cri.rt.ExecSync(cri.pb.ExecSyncRequest(container_id=cid, cmd=cmd, timeout=10))
    return r.exit_code, r.stdout.decode(), r.stderr.decode()


def _start(cri, pod, cfg, image, cmd, **kw):
    pb = cri.pb
    cid = cri.rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod, sandbox_config=cfg, config=pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=kw.pop("name", "c")), image=pb.ImageSpec(image=image), command=cmd,
        **kw))).container_id
    cri.rt.StartContainer(pb.StartContainerRequest(container_id=cid))
    return cid


def _remove(cri, pod):
    cri.rt.StopPodSandbox(cri.pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    cri.rt.RemovePodSandbox(cri.pb.RemovePodSandboxRequest(pod_sandbox_id=pod))


def test_pod_options_and_security_context(cri_env, tmp_path):
    cri = cri_env.cri
    pb = cri.pb
    cri.img.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=cri_env.busybox)))
    cfg = cri.pod_config("secure", dns_config=pb.DNSConfig(servers=["10.96.0.10"], searches=["svc.cluster.local"],
                                                            options=["ndots:5"]),
                         linux=pb.LinuxPodSandboxConfig(
                             sysctls={"net.ipv4.ip_unprivileged_port_start": "1000"},
                             security_context=pb.LinuxSandboxSecurityContext(
                                 namespace_options=pb.NamespaceOption(pid=pb.POD))))
    pod = cri.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg)).pod_sandbox_id
    try:
        shared = tmp_path / "shared"
        shared.mkdir()
        (shared / "f").write_text("from host")
        sc = pb.LinuxContainerSecurityContext(
            run_as_user=pb.Int64Value(value=1000), run_as_group=pb.Int64Value(value=1000),
            supplemental_groups=[4321], readonly_rootfs=True, no_new_privs=True,
            capabilities=pb.Capability(drop_capabilities=["ALL"], add_capabilities=["NET_RAW"]),
            masked_paths=["/proc/kcore", "/etc/hostname"], readonly_paths=["/proc/sys"])
        cid = _start(cri, pod, cfg, cri_env.busybox, ["sleep", "1000"],
                     linux=pb.LinuxContainerConfig(security_context=sc),
                     mounts=[pb.Mount(container_path="/data", host_path=str(shared), readonly=True)])
        code, out, _ = _exec(cri, cid, ["cat", "/etc/resolv.conf"])
        assert "nameserver 10.96.0.10" in out and "svc.cluster.local" in out and "ndots:5" in out
        assert _exec(cri, cid, ["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"])[1].strip() == "1000"
        code, out, _ = _exec(cri, cid, ["id"])
        assert "uid=1000" in out and "gid=1000" in out and "4321" in out, out
        status = _exec(cri, cid, ["cat", "/proc/self/status"])[1]
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        assert fields["NoNewPrivs"].strip() == "1"
        assert int(fields["CapBnd"], 16) == 1 << 13  # CAP_NET_RAW only
        assert _exec(cri, cid, ["touch", "/x"])[0] != 0  # read-only rootfs
        assert _exec(cri, cid, ["cat", "/data/f"])[1] == "from host"
        assert _exec(cri, cid, ["touch", "/data/g"])[0] != 0
        assert _exec(cri, cid, ["cat", "/etc/hostname"])[1] == ""  # masked as asked
        # the pod shares one PID namespace: the infra container's pause is visible
        assert "/pause" in _exec(cri, cid, ["ps", "-o", "args"])[1]
    finally:
        _remove(cri, pod)


def test_host_network_pod(cri_env):
    cri = cri_env.cri
    pb = cri.pb
    cri.img.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=cri_env.busybox)))
    cfg = cri.pod_config("hostnet", linux=pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(
        namespace_options=pb.NamespaceOption(network=pb.NODE))))
    pod = cri.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg)).pod_sandbox_id
    try:
        st = cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod)).status
        assert st.state == pb.SANDBOX_READY and st.network.ip == ""
        assert st.linux.namespaces.options.network == pb.NODE
        cid = _start(cri, pod, cfg, cri_env.busybox, ["sleep", "1000"])
        assert _exec(cri, cid, ["hostname"])[1].strip() == socket.gethostname()
        links = _exec(cri, cid, ["ls", "/sys/class/net"])[1].split()
        assert sorted(links) == sorted(os.listdir("/sys/class/net"))
    finally:
        _remove(cri, pod)
