"""A pouchd with --enable-cri, a local registry holding busybox and the pause image, and a CRI
client on the project's own stubs (pouch.cri.pb)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import _missing_for_daemon
from tests.fixtures.daemon import PouchDaemon
from tests.fixtures.images import busybox_archive, pause_archive
from tests.fixtures.registry import RegistryServer, free_port


def push_archive(archive: str, dest: str, creds: str | None = None) -> None:
    policy = Path(tempfile.mkdtemp()) / "policy.json"
    policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    r = subprocess.run(["skopeo", "--policy", str(policy), "copy", "--quiet", "--dest-tls-verify=false",
                        *(["--dest-creds", creds] if creds else []),
                        f"docker-archive:{archive}", f"docker://{dest}"], capture_output=True, text=True,
                       env=dict(os.environ, HOME=str(policy.parent)), timeout=120)
    shutil.rmtree(policy.parent, ignore_errors=True)
    assert r.returncode == 0, r.stderr


class Cri:
    """CRI client: ``rt`` RuntimeService and ``img`` ImageService stubs on pouchd's CRI socket."""

    def __init__(self, sock: str) -> None:
        import grpc
        from pouch.cri.pb import api_pb2, api_pb2_grpc
        self.pb = api_pb2
        self.channel = grpc.insecure_channel("unix://" + sock)
        self.rt = api_pb2_grpc.RuntimeServiceStub(self.channel)
        self.img = api_pb2_grpc.ImageServiceStub(self.channel)

    def pod_config(self, name: str, uid: str = "", attempt: int = 0, log_dir: str = "", **kw):
        pb = self.pb
        return pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=name, uid=uid or name + "-uid",
                                                                  namespace="default", attempt=attempt),
                                   hostname=name, log_directory=log_dir, labels={"app": name}, **kw)


class CriEnv:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.registry = RegistryServer(base / "registry").start()
        self.reg = self.registry.host
        push_archive(busybox_archive(), f"{self.reg}/busybox:latest")
        push_archive(pause_archive(), f"{self.reg}/pouch-pause:latest")
        self.netd = base / "net.d"
        self.netd.mkdir()
        n = int.from_bytes(os.urandom(2), "big")
        self.bridge = f"pc{n:04x}"
        self.subnet = f"10.{200 + n % 40}.{n // 256 % 256}.0/24"
        (self.netd / "10-test.conflist").write_text(json.dumps({
            "cniVersion": "1.0.0", "name": "crinet", "plugins": [
                {"type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": False,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": self.subnet}]],
                          "dataDir": str(base / "ipam")}},
                {"type": "portmap", "capabilities": {"portMappings": True}}]}))
        self.sock = str(base / "cri.sock")
        self.daemon = PouchDaemon(base=str(base / "d"), extra_args=[
            "--enable-cri", "--listen-cri", "unix://" + self.sock, "--sandbox-image",
            f"{self.reg}/pouch-pause:latest", "--cni-conf-dir", str(self.netd),
            "--insecure-registries", self.reg, "--stream-server-port", str(free_port()),
            "--cri-stats-collect-period", "1"])
        os.makedirs(self.daemon.base, exist_ok=True)
        self.daemon.start()
        self.cri = Cri(self.sock)
        self.busybox = f"{self.reg}/busybox:latest"

    def close(self) -> None:
        try:
            for p in self.cri.rt.ListPodSandbox(self.cri.pb.ListPodSandboxRequest()).items:
                self.cri.rt.StopPodSandbox(self.cri.pb.StopPodSandboxRequest(pod_sandbox_id=p.id))
                self.cri.rt.RemovePodSandbox(self.cri.pb.RemovePodSandboxRequest(pod_sandbox_id=p.id))
        except Exception:
            pass
        self.cri.channel.close()
        self.daemon.cleanup()
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        self.registry.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def cri_env():
    """One CRI-enabled pouchd for every CRI test module (each test removes its own pods)."""
    why = _missing_for_daemon()
    if why:
        pytest.skip(why)
    for tool in ("skopeo", "catatonit", "docker-registry"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/bin/{tool}"):
            pytest.skip(f"{tool} is not installed")
    env = CriEnv(Path(tempfile.mkdtemp(prefix="pouch-cri-")))
    yield env
    env.close()
