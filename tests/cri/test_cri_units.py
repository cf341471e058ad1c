"""Units of the CRI face that need no daemon: the CRI log format, the pod network's default
configuration, config translation and the gRPC status mapping."""
from __future__ import annotations

import json
import re

import grpc
import pytest

from pouch.cri import translate
from pouch.cri.cni import DEFAULT_FILE, PodNetwork
from pouch.cri.pb import api_pb2 as pb
from pouch.cri.server import status_of
from pouch.daemon.logger import make_logger
from pouch.errtypes import AlreadyExists, Conflict, InvalidArgument, NotFound


def test_cri_log_format_full_partial_and_reopen(tmp_path):
    path = tmp_path / "c" / "0.log"
    lg = make_logger("cri", {"path": str(path)}, "x", "")
    lg.write("stdout", b"one\ntw")
    lg.write("stdout", b"o\n")
    lg.write("stderr", b"tail without newline")
    lg.flush()
    lines = path.read_text().splitlines()
    assert [re.sub(r"^\S+ ", "", line) for line in lines] == [
        "stdout F one", "stdout F two", "stderr P tail without newline"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ", lines[0])
    path.rename(tmp_path / "c" / "0.log.1")
    lg.reopen()
    lg.write("stdout", b"after\n")
    lg.close()
    assert path.read_text().endswith(" stdout F after\n")
    with pytest.raises(InvalidArgument):
        make_logger("cri", {"path": "relative"}, "x", "")


def test_pod_network_default_conf_and_pod_cidr(tmp_path):
    net = PodNetwork(str(tmp_path / "net.d"), "/usr/lib/cni", str(tmp_path / "cache"))
    net.load()
    conf = json.loads((tmp_path / "net.d" / DEFAULT_FILE).read_text())
    assert net.ready and [p["type"] for p in conf["plugins"]] == ["bridge", "portmap"]
    net.set_pod_cidr("10.244.3.0/24")
    assert net.conflist["plugins"][0]["ipam"]["ranges"] == [[{"subnet": "10.244.3.0/24"}]]
    with pytest.raises(InvalidArgument):
        net.set_pod_cidr("not-a-cidr")


def test_existing_conf_is_used_as_given(tmp_path):
    (tmp_path / "05-mine.conf").write_text(json.dumps({"cniVersion": "0.4.0", "name": "mine", "type": "bridge"}))
    net = PodNetwork(str(tmp_path), "/usr/lib/cni", str(tmp_path / "cache"))
    net.load()
    assert net.conflist["name"] == "mine" and net.conflist["plugins"][0]["type"] == "bridge"
    assert not (tmp_path / DEFAULT_FILE).exists()


def test_translation_of_names_labels_and_security():
    md = pb.PodSandboxMetadata(name="web", namespace="ns", uid="u1", attempt=2)
    assert translate.sandbox_name(md) == "k8s_POD_web_ns_u1_2"
    with pytest.raises(InvalidArgument):
        translate.sandbox_name(pb.PodSandboxMetadata(name="web"))
    sb_cfg = pb.PodSandboxConfig(metadata=md, log_directory="/var/log/pods/x")
    cfg = pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name="app"), image=pb.ImageSpec(image="busybox"), log_path="app/0.log",
        labels={"a": "1"}, annotations={"b": "2"},
        linux=pb.LinuxContainerConfig(
            resources=pb.LinuxContainerResources(memory_limit_in_bytes=1 << 26, cpu_shares=512),
            security_context=pb.LinuxContainerSecurityContext(
                seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.Unconfined), no_new_privs=True)))
    body = translate.container_body(cfg, "sbid", sb_cfg, "runc", False, sb_cfg.log_directory)
    host = body["HostConfig"]
    assert host["NetworkMode"] == host["IpcMode"] == host["UTSMode"] == "container:sbid"
    assert host["Memory"] == 1 << 26 and host["CpuShares"] == 512
    assert host["SecurityOpt"] == ["seccomp=unconfined", "no-new-privileges"]
    assert host["LogConfig"] == {"Type": "cri", "Config": {"path": "/var/log/pods/x/app/0.log"}}
    assert body["SpecAnnotation"]["io.kubernetes.cri.sandbox-id"] == "sbid"
    assert translate.split_labels(body["Labels"]) == ({"a": "1"}, {"b": "2"})
    def seccomp_opts(**sc):
        c = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="x"), linux=pb.LinuxContainerConfig(
            security_context=pb.LinuxContainerSecurityContext(**sc)))
        return [o for o in translate.container_body(c, "sbid", sb_cfg, "runc", False, "")["HostConfig"]["SecurityOpt"]
                if o.startswith("seccomp")]
    assert seccomp_opts() == ["seccomp=unconfined"]  # no profile given: unconfined (the CRI's meaning)
    assert seccomp_opts(seccomp=pb.SecurityProfile()) == []  # RuntimeDefault, even as an empty message
    with pytest.raises(InvalidArgument):
        translate.container_body(pb.ContainerConfig(metadata=pb.ContainerMetadata(name="x"), mounts=[
            pb.Mount(container_path="rel", host_path="/tmp")]), "sbid", sb_cfg, "runc", False, "")


def test_grpc_status_mapping():
    assert status_of(InvalidArgument("bad"))[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert status_of(NotFound("x")) == (grpc.StatusCode.NOT_FOUND, "x")
    assert status_of(AlreadyExists("dup"))[0] == grpc.StatusCode.ALREADY_EXISTS
    assert status_of(Conflict("busy"))[0] == grpc.StatusCode.FAILED_PRECONDITION
    assert status_of(RuntimeError("boom"))[0] == grpc.StatusCode.INTERNAL


def test_mount_propagation_helpers(tmp_path):
    from pouch.daemon.mgr.spec import rootfs_propagation
    def bind(*opts):
        return {"type": "bind", "options": ["rbind", "rw", *opts]}
    assert rootfs_propagation([bind("rprivate")]) == ""
    assert rootfs_propagation([bind("rprivate"), bind("rslave")]) == "rslave"
    assert rootfs_propagation([bind("rslave"), bind("rshared")]) == "rshared"
    info = tmp_path / "mountinfo"
    info.write_text("21 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
                    "40 21 8:1 /x /data rw shared:7 - ext4 /dev/sda1 rw\n"
                    "41 40 8:1 /y /data/in\\040it rw master:7 - ext4 /dev/sda1 rw\n"
                    "42 21 8:1 /z /datab rw - ext4 /dev/sda1 rw\n")
    assert translate._mount_of("/data/a/b", str(info)) == ("/data", {"shared"})
    assert translate._mount_of("/data/in it/c", str(info)) == ("/data/in it", {"master"})
    assert translate._mount_of("/datab", str(info)) == ("/datab", set())
    assert translate._mount_of("/etc", str(info)) == ("/", set())
