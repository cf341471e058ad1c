"""kubelet's sequences against pouchd's CRI: pod -> pull -> create/start -> exec -> logs -> stats ->
stop -> remove; two pods over the pod network; bad input; pods surviving a pouchd restart."""
from __future__ import annotations

import os
import time

import grpc
import pytest

pytestmark = pytest.mark.integration


def _run_pod(cri, name, **kw):
    pb = cri.pb
    cfg = cri.pod_config(name, **kw)
    return cri.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg)).pod_sandbox_id, cfg


def _container(cri, pod_id, pod_cfg, name, image, cmd, **kw):
    pb = cri.pb
    cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image=image),
                             command=cmd, labels={"c": name}, annotations={"note": name}, **kw)
    cid = cri.rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=cfg,
                                                           sandbox_config=pod_cfg)).container_id
    return cid


def _exec(cri, cid, cmd, timeout=10):
    return cri.rt.ExecSync(cri.pb.ExecSyncRequest(container_id=cid, cmd=cmd, timeout=timeout))


def _remove_pod(cri, pod_id):
    pb = cri.pb
    cri.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    cri.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))


def test_version_status_and_runtime_config(cri_env):
    cri = cri_env.cri
    pb = cri.pb
    v = cri.rt.Version(pb.VersionRequest())
    assert v.runtime_name == "pouch" and v.runtime_api_version == "v1"
    st = cri.rt.Status(pb.StatusRequest())
    conds = {c.type: c.status for c in st.status.conditions}
    assert conds == {"RuntimeReady": True, "NetworkReady": True}
    assert cri.rt.RuntimeConfig(pb.RuntimeConfigRequest()).linux.cgroup_driver == pb.CGROUPFS


def test_kubelet_pod_lifecycle(cri_env, tmp_path):
    cri = cri_env.cri
    pb = cri.pb
    ref = cri.img.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=cri_env.busybox))).image_ref
    assert ref.startswith("sha256:")
    listed = cri.img.ListImages(pb.ListImagesRequest(filter=pb.ImageFilter(image=pb.ImageSpec(
        image=cri_env.busybox)))).images
    assert [i.id for i in listed] == [ref] and cri_env.busybox in listed[0].repo_tags
    status = cri.img.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=cri_env.busybox), verbose=True))
    assert status.image.id == ref and "imageSpec" in status.info["info"]

    pod_id, pod_cfg = _run_pod(cri, "life", log_dir=str(tmp_path))
    ps = cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id)).status
    assert ps.state == pb.SANDBOX_READY and ps.network.ip.startswith(cri_env.subnet.rsplit(".", 2)[0])
    assert ps.labels["app"] == "life" and ps.metadata.name == "life"

    cid = _container(cri, pod_id, pod_cfg, "main", cri_env.busybox,
                     ["sh", "-c", "echo hello; echo oops >&2; exec sleep 1000"], log_path="main/0.log",
                     envs=[pb.KeyValue(key="GREETING", value="hi there")], working_dir="/tmp")
    st = cri.rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status
    assert st.state == pb.CONTAINER_CREATED and st.labels == {"c": "main"} and st.annotations == {"note": "main"}
    cri.rt.StartContainer(pb.StartContainerRequest(container_id=cid))
    st = cri.rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status
    assert st.state == pb.CONTAINER_RUNNING and st.started_at > 0 and st.image_ref == ref
    assert st.log_path == str(tmp_path / "main/0.log")
    shown = cri_env.daemon.cli("ps", "-a", "-q", "--no-trunc", "--filter", "label=io.kubernetes.cri.type").stdout.split()
    assert sorted(shown) == sorted([cid, pod_id])  # pouch ps shows CRI objects only when asked
    assert cri_env.daemon.cli("ps", "-a", "-q").stdout.split() == []

    r = _exec(cri, cid, ["sh", "-c", "echo $GREETING; pwd; hostname; echo err >&2; exit 3"])
    assert r.stdout.decode().split("\n")[:3] == ["hi there", "/tmp", "life"]
    assert r.stderr == b"err\n" and r.exit_code == 3
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        _exec(cri, cid, ["sleep", "30"], timeout=1)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED and time.monotonic() - t0 < 10

    lines = (tmp_path / "main/0.log").read_text().splitlines()
    assert any(line.endswith(" stdout F hello") for line in lines), lines
    assert any(line.endswith(" stderr F oops") for line in lines), lines
    os.rename(tmp_path / "main/0.log", tmp_path / "main/0.log.1")
    cri.rt.ReopenContainerLog(pb.ReopenContainerLogRequest(container_id=cid))
    assert (tmp_path / "main/0.log").exists()

    stats = cri.rt.ContainerStats(pb.ContainerStatsRequest(container_id=cid)).stats
    assert stats.attributes.id == cid and stats.memory.working_set_bytes.value > 0
    assert stats.cpu.usage_core_nano_seconds.value > 0
    listed = cri.rt.ListContainerStats(pb.ListContainerStatsRequest(
        filter=pb.ContainerStatsFilter(pod_sandbox_id=pod_id))).stats
    assert [s.attributes.id for s in listed] == [cid]
    pstats = cri.rt.PodSandboxStats(pb.PodSandboxStatsRequest(pod_sandbox_id=pod_id)).stats
    assert pstats.linux.memory.working_set_bytes.value > 0 and pstats.linux.network.default_interface.name == "eth0"
    assert [c.attributes.id for c in pstats.linux.containers] == [cid]

    cri.rt.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
        container_id=cid, linux=pb.LinuxContainerResources(memory_limit_in_bytes=64 << 20)))
    r = _exec(cri, cid, ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"])
    assert r.stdout.strip() == str(64 << 20).encode()

    assert [c.id for c in cri.rt.ListContainers(pb.ListContainersRequest(
        filter=pb.ContainerFilter(pod_sandbox_id=pod_id))).containers] == [cid]
    cri.rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=1))
    st = cri.rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status
    assert st.state == pb.CONTAINER_EXITED and st.exit_code in (137, 143) and st.reason == "Error"
    assert st.finished_at >= st.started_at
    cri.rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))
    _remove_pod(cri, pod_id)
    assert not [p for p in cri.rt.ListPodSandbox(pb.ListPodSandboxRequest()).items if p.id == pod_id]
    assert not os.path.exists(os.path.join(cri_env.daemon.run_dir, "netns", pod_id))


def test_two_pods_reach_each_other(cri_env):
    cri = cri_env.cri
    pb = cri.pb
    cri.img.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=cri_env.busybox)))
    a, acfg = _run_pod(cri, "server")
    b, bcfg = _run_pod(cri, "client")
    try:
        srv = _container(cri, a, acfg, "web", cri_env.busybox,
                         ["sh", "-c", "echo pong > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"])
        cli = _container(cri, b, bcfg, "cli", cri_env.busybox, ["sleep", "1000"])
        for c in (srv, cli):
            cri.rt.StartContainer(pb.StartContainerRequest(container_id=c))
        ip = cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=a)).status.network.ip
        for _ in range(50):
            r = _exec(cri, cli, ["wget", "-qO-", f"http://{ip}:8080/index.html"])
            if r.exit_code == 0:
                break
            time.sleep(0.1)
        assert r.stdout == b"pong\n", r.stderr
    finally:
        _remove_pod(cri, a)
        _remove_pod(cri, b)


def test_bad_input_leaves_nothing(cri_env):
    cri = cri_env.cri
    pb = cri.pb
    netns_dir = os.path.join(cri_env.daemon.run_dir, "netns")
    before_ns = sorted(os.listdir(netns_dir)) if os.path.isdir(netns_dir) else []
    before = len(cri.rt.ListPodSandbox(pb.ListPodSandboxRequest()).items)

    def code(fn, req):
        with pytest.raises(grpc.RpcError) as e:
            fn(req)
        assert e.value.details()
        return e.value.code()
    assert code(cri.rt.RunPodSandbox, pb.RunPodSandboxRequest(config=pb.PodSandboxConfig())) \
        == grpc.StatusCode.INVALID_ARGUMENT
    assert code(cri.rt.RunPodSandbox, pb.RunPodSandboxRequest(config=cri.pod_config("bad"),
                                                              runtime_handler="nosuch")) \
        == grpc.StatusCode.INVALID_ARGUMENT
    pod_id, cfg = _run_pod(cri, "dup")
    try:
        assert code(cri.rt.RunPodSandbox, pb.RunPodSandboxRequest(config=cfg)) == grpc.StatusCode.ALREADY_EXISTS
        cri.img.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=cri_env.busybox)))
        bad_mount = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="m"),
                                       image=pb.ImageSpec(image=cri_env.busybox),
                                       mounts=[pb.Mount(container_path="/data", host_path="/nonexistent/x")])
        assert code(cri.rt.CreateContainer, pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=bad_mount,
                                                                      sandbox_config=cfg)) \
            == grpc.StatusCode.INVALID_ARGUMENT
        assert code(cri.rt.CreateContainer, pb.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=pb.ContainerConfig(image=pb.ImageSpec(image=cri_env.busybox)),
            sandbox_config=cfg)) == grpc.StatusCode.INVALID_ARGUMENT
        assert code(cri.rt.CreateContainer, pb.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=pb.ContainerConfig(metadata=pb.ContainerMetadata(name="x"),
                                                             image=pb.ImageSpec(image="nosuch:img")),
            sandbox_config=cfg)) == grpc.StatusCode.NOT_FOUND
        assert not cri.rt.ListContainers(pb.ListContainersRequest(
            filter=pb.ContainerFilter(pod_sandbox_id=pod_id))).containers
    finally:
        _remove_pod(cri, pod_id)
    assert code(cri.rt.ContainerStatus, pb.ContainerStatusRequest(container_id="nosuch")) \
        == grpc.StatusCode.NOT_FOUND
    assert code(cri.rt.StopPodSandbox, pb.StopPodSandboxRequest(pod_sandbox_id="nosuch")) \
        == grpc.StatusCode.NOT_FOUND
    assert len(cri.rt.ListPodSandbox(pb.ListPodSandboxRequest()).items) == before
    assert (sorted(os.listdir(netns_dir)) if os.path.isdir(netns_dir) else []) == before_ns
    r = cri_env.daemon.cli("ps", "-a", "-q")
    assert r.stdout.split() == []  # CRI objects stay out of pouch's own namespace


def test_pods_survive_pouchd_restart(cri_env):
    cri = cri_env.cri
    pb = cri.pb
    cri.img.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=cri_env.busybox)))
    pod_id, cfg = _run_pod(cri, "survivor")
    try:
        cid = _container(cri, pod_id, cfg, "c", cri_env.busybox, ["sleep", "1000"])
        cri.rt.StartContainer(pb.StartContainerRequest(container_id=cid))
        ip = cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id)).status.network.ip
        cri_env.daemon.kill9()
        cri_env.daemon.start()
        ps = cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id)).status
        assert ps.state == pb.SANDBOX_READY and ps.network.ip == ip
        st = cri.rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status
        assert st.state == pb.CONTAINER_RUNNING
        r = _exec(cri, cid, ["ip", "-4", "-o", "addr", "show", "eth0"])
        assert r.exit_code == 0 and ip in r.stdout.decode()
    finally:
        _remove_pod(cri, pod_id)


def test_runtime_handler_crun(cri_env):
    import shutil
    if not shutil.which("crun"):
        pytest.skip("crun is not installed (apt-get install crun)")
    cri = cri_env.cri
    pb = cri.pb
    cri.img.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=cri_env.busybox)))
    cfg = cri.pod_config("crunpod")
    pod = cri.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg, runtime_handler="crun")).pod_sandbox_id
    try:
        assert cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod)).status.runtime_handler == "crun"
        cid = _container(cri, pod, cfg, "c", cri_env.busybox, ["sleep", "1000"])
        cri.rt.StartContainer(pb.StartContainerRequest(container_id=cid))
        info = cri.rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid, verbose=True)).info["info"]
        assert '"runtimeType": "crun"' in info
        assert _exec(cri, cid, ["echo", "ok"]).stdout == b"ok\n"
    finally:
        _remove_pod(cri, pod)
