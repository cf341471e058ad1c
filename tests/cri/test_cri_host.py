"""What a pod shares with its host, through pouchd's CRI: mount propagation both ways, hostPort
mappings, registry credentials per host; and what kubelet watches: container events, and an exec
terminal that has the client's size from its first instruction."""
from __future__ import annotations

import asyncio
import base64
import ctypes
import ipaddress
import os
import queue
import threading
import time
import urllib.request

import grpc
import pytest

from tests.fixtures.images import busybox_archive, pause_archive
from tests.fixtures.registry import RegistryServer, free_port

from .conftest import push_archive

pytestmark = pytest.mark.integration

MS_BIND, MS_REC, MS_SHARED = 4096, 16384, 1 << 20
_libc = ctypes.CDLL(None, use_errno=True)


def _mount(src, dst, flags, fstype=None):
    if _libc.mount(src and src.encode(), dst.encode(), fstype, flags, None) != 0:
        raise OSError(ctypes.get_errno(), f"mount {src} {dst}")


def _umount(path):
    _libc.umount2(path.encode(), 2)  # MNT_DETACH


def _pod(cri, name, **kw):
    pb = cri.pb
    cfg = cri.pod_config(name, **kw)
    return cri.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg)).pod_sandbox_id, cfg


def _start(cri, env, pod, cfg, name, cmd, **kw):
    pb = cri.pb
    cid = cri.rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod, sandbox_config=cfg, config=pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image=env.busybox), command=cmd,
        **kw))).container_id
    cri.rt.StartContainer(pb.StartContainerRequest(container_id=cid))
    return cid


def _remove(cri, pod):
    pb = cri.pb
    cri.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    cri.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod))


@pytest.fixture
def busybox(cri_env):
    cri_env.cri.img.PullImage(cri_env.cri.pb.PullImageRequest(image=cri_env.cri.pb.ImageSpec(image=cri_env.busybox)))


@pytest.fixture
def shared_dir(tmp_path):
    """A host directory that is a shared mount of its own (as kubelet's pods dir is), with a
    directory to mount into it later."""
    src = tmp_path / "mnt"
    (src / "from-host").mkdir(parents=True)
    (tmp_path / "payload").mkdir()
    (tmp_path / "payload" / "flag").write_text("x")
    _mount(str(src), str(src), MS_BIND | MS_REC)
    _mount(None, str(src), MS_SHARED | MS_REC)
    yield src, tmp_path / "payload"
    for p in (src / "from-host", src / "from-container", src):
        _umount(str(p))


@pytest.mark.parametrize("propagation", ["PROPAGATION_PRIVATE", "PROPAGATION_HOST_TO_CONTAINER",
                                         "PROPAGATION_BIDIRECTIONAL"])
def test_mount_propagation(cri_env, busybox, shared_dir, propagation):
    cri = cri_env.cri
    pb = cri.pb
    src, payload = shared_dir
    mode = getattr(pb, propagation)
    pod, cfg = _pod(cri, "prop-" + propagation.split("_")[1].lower())
    try:
        cid = _start(cri, cri_env, pod, cfg, "main", ["sleep", "300"],
                     mounts=[pb.Mount(container_path=str(src), host_path=str(src), propagation=mode)],
                     linux=pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(privileged=True)))
        status = cri.rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status
        assert [m.propagation for m in status.mounts] == [mode]

        _mount(str(payload), str(src / "from-host"), MS_BIND | MS_REC)  # host -> container
        seen = cri.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["ls", f"{src}/from-host"], timeout=10))
        assert seen.exit_code == 0
        assert (seen.stdout.strip() == b"flag") == (mode != pb.PROPAGATION_PRIVATE), seen

        r = cri.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=[  # container -> host
            "sh", "-c", f"mkdir -p {src}/from-container && mount --bind /etc {src}/from-container"], timeout=10))
        assert r.exit_code == 0, r.stderr
        back = os.listdir(src / "from-container")
        assert bool(back) == (mode == pb.PROPAGATION_BIDIRECTIONAL), back
    finally:
        _remove(cri, pod)


def test_propagation_needs_a_shared_host_mount(cri_env, busybox, tmp_path):
    cri = cri_env.cri
    pb = cri.pb
    private = tmp_path / "private"
    private.mkdir()
    _mount(str(private), str(private), MS_BIND | MS_REC)
    _mount(None, str(private), (1 << 18) | MS_REC)  # MS_PRIVATE
    pod, cfg = _pod(cri, "prop-refused")
    try:
        before = {c.id for c in cri.rt.ListContainers(pb.ListContainersRequest()).containers}
        with pytest.raises(grpc.RpcError) as err:
            cri.rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod, sandbox_config=cfg, config=pb.ContainerConfig(
                metadata=pb.ContainerMetadata(name="main"), image=pb.ImageSpec(image=cri_env.busybox),
                mounts=[pb.Mount(container_path="/data", host_path=str(private),
                                 propagation=pb.PROPAGATION_BIDIRECTIONAL)])))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not shared" in err.value.details() and str(private) in err.value.details()
        assert {c.id for c in cri.rt.ListContainers(pb.ListContainersRequest()).containers} == before
    finally:
        _umount(str(private))
        _remove(cri, pod)


def test_container_events(cri_env, busybox):
    """kubelet's evented PLEG: every container change comes with its pod's status and the pod's
    containers' statuses."""
    cri = cri_env.cri
    pb = cri.pb
    stream = cri.rt.GetContainerEvents(pb.GetEventsRequest())
    got: queue.Queue = queue.Queue()

    def read():
        try:
            for ev in stream:
                got.put(ev)
        except grpc.RpcError:
            pass
    threading.Thread(target=read, daemon=True).start()
    pod, cfg = _pod(cri, "events")
    try:
        cid = _start(cri, cri_env, pod, cfg, "main", ["sh", "-c", "sleep 0.2"])
        want = [pb.CONTAINER_CREATED_EVENT, pb.CONTAINER_STARTED_EVENT, pb.CONTAINER_STOPPED_EVENT]
        seen = []
        deadline = time.monotonic() + 30
        while len(seen) < len(want) and time.monotonic() < deadline:
            try:
                ev = got.get(timeout=1)
            except queue.Empty:
                continue
            if ev.container_id == cid:
                seen.append(ev)
        assert [e.container_event_type for e in seen] == want
        for e in seen:
            assert e.pod_sandbox_status.id == pod and e.pod_sandbox_status.metadata.name == "events"
            assert e.created_at > 0
        started = seen[1]
        assert [s.id for s in started.containers_statuses] == [cid]
        stopped = seen[2]
        assert stopped.containers_statuses[0].state == pb.CONTAINER_EXITED
        cri.rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ev = got.get(timeout=30)
            if ev.container_id == cid:
                assert ev.container_event_type == pb.CONTAINER_DELETED_EVENT
                assert ev.pod_sandbox_status.id == pod and not ev.containers_statuses
                break
    finally:
        stream.cancel()
        _remove(cri, pod)


def test_unsupported_rpcs_say_why(cri_env, busybox):
    cri = cri_env.cri
    pb = cri.pb
    with pytest.raises(grpc.RpcError) as err:
        cri.rt.ListMetricDescriptors(pb.ListMetricDescriptorsRequest())
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED and "cadvisor" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        cri.rt.CheckpointContainer(pb.CheckpointContainerRequest(container_id="nosuch"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    pod, cfg = _pod(cri, "checkpoint")
    try:
        cid = _start(cri, cri_env, pod, cfg, "main", ["sleep", "300"])
        with pytest.raises(grpc.RpcError) as err:
            cri.rt.CheckpointContainer(pb.CheckpointContainerRequest(container_id=cid))
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "CRIU" in err.value.details() or "not implemented" in err.value.details()
    finally:
        _remove(cri, pod)


def test_host_port_reaches_the_pod(cri_env, busybox):
    cri = cri_env.cri
    pb = cri.pb
    port = free_port()
    pod, cfg = _pod(cri, "hostport", port_mappings=[pb.PortMapping(protocol=pb.TCP, container_port=8080,
                                                                    host_port=port)])
    try:
        serve = "echo hostport-ok > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"
        _start(cri, cri_env, pod, cfg, "web", ["sh", "-c", serve])
        gateway = str(next(ipaddress.ip_network(cri_env.subnet).hosts()))  # the bridge: a host address
        for host in ("127.0.0.1", gateway):
            body, last = b"", None
            for _ in range(50):
                try:
                    body = urllib.request.urlopen(f"http://{host}:{port}/index.html", timeout=3).read()
                    break
                except OSError as e:
                    last = e
                    time.sleep(0.1)
            assert body == b"hostport-ok\n", (host, last)
    finally:
        _remove(cri, pod)
    with pytest.raises(OSError):  # the mapping goes with the pod
        urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=3)


def test_exec_tty_has_the_clients_size_at_once(cri_env, busybox):
    streaming = pytest.importorskip("pouch.cri.streaming.client")
    cri = cri_env.cri
    pb = cri.pb
    pod, cfg = _pod(cri, "ttysize")
    try:
        cid = _start(cri, cri_env, pod, cfg, "main", ["sleep", "300"])
        for i in range(5):  # the size must be there before the process's first instruction, every time
            url = cri.rt.Exec(pb.ExecRequest(container_id=cid, cmd=["stty", "size"], tty=True, stdout=True)).url
            res = asyncio.run(streaming.spdy_remote_command(url, stdout=True, stderr=False, tty=True,
                                                            resizes=[(100 + i, 40 + i)]))
            assert res.stdout.strip() == f"{40 + i} {100 + i}".encode(), res.stdout
    finally:
        _remove(cri, pod)


def test_pull_auth_goes_to_its_registry_only(cri_env, tmp_path):
    cri = cri_env.cri
    pb = cri.pb
    reg = RegistryServer(tmp_path / "authreg", users={"kube": "s3cret"}).start()
    try:
        push_archive(busybox_archive(), f"{reg.host}/private/busybox:latest", creds="kube:s3cret")
        image = pb.ImageSpec(image=f"{reg.host}/private/busybox:latest")

        def pull(**auth):
            return cri.img.PullImage(pb.PullImageRequest(image=image, auth=pb.AuthConfig(**auth) if auth else None))

        with pytest.raises(grpc.RpcError) as err:
            pull()
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as err:  # credentials for another registry are not sent here
            pull(username="kube", password="s3cret", server_address=cri_env.reg)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert not cri.img.ImageStatus(pb.ImageStatusRequest(image=image)).HasField("image")

        ref = pull(username="kube", password="s3cret", server_address=f"http://{reg.host}/v2/").image_ref
        assert cri.img.ImageStatus(pb.ImageStatusRequest(image=image)).image.id == ref
        cri.img.RemoveImage(pb.RemoveImageRequest(image=image))
        assert pull(auth=base64.b64encode(b"kube:s3cret").decode()).image_ref == ref  # no address: the image's
        with pytest.raises(grpc.RpcError) as err:  # and nothing stays behind for the next pull without auth
            cri.img.RemoveImage(pb.RemoveImageRequest(image=image))
            pull()
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        reg.stop()


def test_pull_again_follows_a_moved_tag(cri_env):
    """A PullImage of a present image answers from what is here only while the registry still
    names the same manifest: a tag pushed anew is fetched."""
    cri = cri_env.cri
    pb = cri.pb
    image = pb.ImageSpec(image=f"{cri_env.reg}/moving:v1")
    push_archive(busybox_archive(), image.image)
    first = cri.img.PullImage(pb.PullImageRequest(image=image)).image_ref
    assert cri.img.PullImage(pb.PullImageRequest(image=image)).image_ref == first
    push_archive(pause_archive(), image.image)
    moved = cri.img.PullImage(pb.PullImageRequest(image=image)).image_ref
    assert moved != first and cri.img.ImageStatus(pb.ImageStatusRequest(image=image)).image.id == moved
    cri.img.RemoveImage(pb.RemoveImageRequest(image=image))
