"""Exec, attach and port forward through the URLs pouchd's CRI returns (the streaming server's
SPDY side, with its Python client), on real pods."""
from __future__ import annotations

import asyncio
import time

import pytest

pytestmark = pytest.mark.integration

streaming = pytest.importorskip("pouch.cri.streaming.client",
                                reason="the CRI streaming server (pouch.cri.streaming) is not in this tree")


def _pod_with(cri, env, name, cmd, **kw):
    pb = cri.pb
    cri.img.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=env.busybox)))
    cfg = cri.pod_config(name)
    pod = cri.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg)).pod_sandbox_id
    cid = cri.rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod, sandbox_config=cfg, config=pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name="main"), image=pb.ImageSpec(image=env.busybox), command=cmd, **kw))).container_id
    cri.rt.StartContainer(pb.StartContainerRequest(container_id=cid))
    return pod, cid


def _remove(cri, pod):
    pb = cri.pb
    cri.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    cri.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod))


def test_exec_attach_and_port_forward(cri_env):
    cri = cri_env.cri
    pb = cri.pb
    pod, cid = _pod_with(cri, cri_env, "stream",
                         ["sh", "-c", "echo pong > /tmp/index.html; httpd -p 8080 -h /tmp; "
                                      "while read l; do echo got $l; done"], stdin=True)
    try:
        url = cri.rt.Exec(pb.ExecRequest(container_id=cid, cmd=["sh", "-c", "cat; echo err >&2; exit 4"],
                                         stdin=True, stdout=True, stderr=True)).url
        res = asyncio.run(streaming.spdy_remote_command(url, stdin=b"hello\n", stdout=True, stderr=True))
        assert res.stdout == b"hello\n" and res.stderr == b"err\n" and res.exit_code == 4

        url = cri.rt.Attach(pb.AttachRequest(container_id=cid, stdin=True, stdout=True)).url

        async def attach():
            async def feed():
                yield b"line1\n"
                await asyncio.sleep(0.5)
                cri.rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=0))
            return await streaming.spdy_remote_command(url, stdin=feed(), stdout=True, stderr=False)
        # port forward first: the attach test stops the container
        url_pf = cri.rt.PortForward(pb.PortForwardRequest(pod_sandbox_id=pod, port=[8080])).url
        for _ in range(50):
            back, err = asyncio.run(streaming.spdy_port_forward(
                url_pf, 8080, b"GET /index.html HTTP/1.0\r\n\r\n"))
            if back:
                break
            time.sleep(0.1)
            url_pf = cri.rt.PortForward(pb.PortForwardRequest(pod_sandbox_id=pod, port=[8080])).url
        assert back.startswith(b"HTTP/1.") and back.endswith(b"pong\n"), (back, err)
        res = asyncio.run(attach())
        assert b"got line1" in res.stdout
    finally:
        _remove(cri, pod)
