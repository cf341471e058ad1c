"""What a container gets, as PouchContainer gives it: cgroup parent `default` and --cgroup-parent
(seen in /sys/fs/cgroup), --privileged with writable /sys and cgroupfs, `exec --privileged`,
`pouch update` (no flags, --env to running and stopped containers, --annotation, --restart,
warnings), and Pouch's create-time validations (through the CLI and the API)."""
from __future__ import annotations

import os
import uuid

import pytest

from tests.daemon.conftest import inspect

pytestmark = pytest.mark.integration

V1 = os.path.isdir("/sys/fs/cgroup/memory")


def _cg_dir(parent: str, cid: str) -> str:
    return os.path.join("/sys/fs/cgroup", "memory" if V1 else "", parent.strip("/"), cid)


def test_cgroup_parent_default_and_per_container(pouchd, box):
    a = box.run_d("busybox", "sleep", "300")
    ia = inspect(pouchd, a)
    assert ia["HostConfig"]["CgroupParent"] == "default"
    assert os.path.isdir(_cg_dir("default", ia["Id"]))
    parent = "ptest-" + uuid.uuid4().hex[:6]
    b = box.run_d("--cgroup-parent", parent, "busybox", "sleep", "300")
    ib = inspect(pouchd, b)
    try:
        assert ib["HostConfig"]["CgroupParent"] == parent
        d = _cg_dir(parent, ib["Id"])
        assert os.path.isdir(d)
        with open(os.path.join(d, "cgroup.procs")) as f:
            assert str(ib["State"]["Pid"]) in f.read().split()
    finally:
        box.cleanup()
        for ctrl in os.listdir("/sys/fs/cgroup") if V1 else [""]:
            p = os.path.join("/sys/fs/cgroup", ctrl, parent)
            if os.path.isdir(p) and not os.path.islink(os.path.join("/sys/fs/cgroup", ctrl)):
                try:
                    os.rmdir(p)
                except OSError:
                    pass


def test_privileged_sys_and_cgroupfs_writable(pouchd):
    script = ("grep -E ' /sys (sysfs|cgroup)|/sys/fs/cgroup/memory ' /proc/mounts | awk '{print $2, $4}'; "
              "mkdir /sys/fs/cgroup/memory/sub && rmdir /sys/fs/cgroup/memory/sub && echo cgroup-writable")
    if not V1:
        script = "grep ' /sys ' /proc/mounts | awk '{print $2, $4}'; mkdir /sys/fs/cgroup/sub && " \
                 "rmdir /sys/fs/cgroup/sub && echo cgroup-writable"
    r = pouchd.cli("run", "--rm", "--privileged", "busybox", "sh", "-c", script)
    assert r.returncode == 0 and "cgroup-writable" in r.stdout, (r.stdout, r.stderr)
    opts = dict(line.split(" ", 1) for line in r.stdout.splitlines() if line.startswith("/sys"))
    assert opts["/sys"].startswith("rw"), opts
    r = pouchd.cli("run", "--rm", "busybox", "sh", "-c", script)
    assert "cgroup-writable" not in r.stdout
    opts = dict(line.split(" ", 1) for line in r.stdout.splitlines() if line.startswith("/sys"))
    assert opts["/sys"].startswith("ro"), opts


def test_exec_privileged_gets_all_capabilities(pouchd, box):
    n = box.run_d("busybox", "sleep", "300")
    r = pouchd.cli("exec", n, "ip", "link", "set", "lo", "mtu", "1400")
    assert r.returncode != 0  # CAP_NET_ADMIN is not a default capability
    r = pouchd.cli("exec", "--privileged", n, "sh", "-c",
                   "ip link set lo mtu 1400 && mknod /tmp/null2 c 1 3 && echo x > /tmp/null2 && echo ok")
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    r = pouchd.cli("exec", "--privileged", n, "grep", "CapEff", "/proc/self/status")
    with open("/proc/self/status") as f:
        mine = int(next(line for line in f if line.startswith("CapEff")).split()[-1], 16)
    assert int(r.stdout.split()[-1], 16) == mine


def test_update_env_annotation_restart_and_no_flags(pouchd, box):
    n = box.run_d("busybox", "sh", "-c", "echo start:$LATE; sleep 300")
    assert pouchd.cli("update", n).returncode == 0  # no flags: accepted, as Pouch
    r = pouchd.cli("update", "-e", "FOO=bar", "--annotation", "team=infra", "--restart", "always", n)
    assert r.returncode == 0, r.stderr
    assert pouchd.cli("exec", n, "sh", "-c", "echo $FOO").stdout.strip() == "bar"
    i = inspect(pouchd, n)
    assert i["Config"]["SpecAnnotation"]["team"] == "infra"
    assert i["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert pouchd.cli("stop", "-t", "1", n).returncode == 0
    assert pouchd.cli("update", "-e", "LATE=yes", "-e", "FOO", n).returncode == 0  # FOO removed
    assert pouchd.cli("start", n).returncode == 0
    env = pouchd.cli("exec", n, "env").stdout.split()
    assert "LATE=yes" in env and not any(e.startswith("FOO=") for e in env)
    assert "start:yes" in pouchd.cli("logs", n).stdout  # the main process got it at start
    # warnings the resource checks give are returned (the CLI prints them), not dropped
    r = pouchd.cli("update", "--oom-kill-disable", n)
    assert r.returncode == 0 and "WARNING" in r.stderr and "OOM" in r.stderr, r.stderr
    # bad input: one line, nothing changed
    for bad in (["-e", "=x"], ["--restart", "sometimes"], ["-m", "1k"]):
        r = pouchd.cli("update", *bad, n)
        assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, (bad, r.stderr)
    i2 = inspect(pouchd, n)
    assert i2["HostConfig"]["RestartPolicy"]["Name"] == "always" and i2["HostConfig"].get("Memory") in (0, None)
    status, _ = pouchd.api("POST", f"/containers/{n}/update", {"Env": ["A=1"], "Label": ["tier=web"]})
    assert status == 200 and inspect(pouchd, n)["Config"]["Labels"]["tier"] == "web"


def test_create_validations_as_pouch(pouchd, box):
    def refused(*args):
        n = box.name()
        r = pouchd.cli("create", "--name", n, *args)
        assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
        assert pouchd.cli("inspect", n).returncode != 0, args
        return r.stderr
    assert "StopTimeout" in refused("--stop-timeout", "-1", "busybox")
    assert "=x" in refused("-e", "=x", "busybox")  # an empty key
    assert "device mode" in refused("--device", "/dev/null:/dev/null:rwx", "busybox")
    status, out = pouchd.api("POST", "/containers/create", {"Image": "busybox", "StopTimeout": -5})
    assert status == 400 and "StopTimeout" in out["message"]
    # -e KEY (no '=') is accepted as Pouch; blanks around -v and -w are trimmed
    n = box.name()
    r = pouchd.cli("run", "--name", n, "-e", "UNSET_IN_CLI_ENV_X", "-v", " /tmp:/hosttmp ", "-w", " /hosttmp ",
                   "busybox", "pwd")
    assert r.returncode == 0 and r.stdout.strip() == "/hosttmp", r.stderr
    # -m alone: MemorySwap is twice Memory (where the kernel accounts swap)
    n = box.name()
    assert pouchd.cli("create", "--name", n, "-m", "64m", "busybox").returncode == 0
    hc = inspect(pouchd, n)["HostConfig"]
    if os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") or not V1:
        assert hc["MemorySwap"] == 2 * 64 * 1024 * 1024


def test_etc_mtab_disable_network_files_and_relative_archive_paths(pouchd, box):
    r = pouchd.cli("run", "--rm", "busybox", "sh", "-c", "readlink /etc/mtab && grep -c ' / ' /etc/mtab")
    assert r.returncode == 0 and r.stdout.split()[0] == "/proc/mounts", (r.stdout, r.stderr)
    r = pouchd.cli("run", "--rm", "--disable-network-files", "busybox", "sh", "-c",
                   "grep -E ' /etc/(hosts|hostname|resolv.conf) ' /proc/mounts | wc -l")
    assert r.returncode == 0 and r.stdout.strip() == "0", r
    r = pouchd.cli("run", "--rm", "busybox", "sh", "-c",
                   "grep -E ' /etc/(hosts|hostname|resolv.conf) ' /proc/mounts | wc -l")
    assert r.stdout.strip() == "3"
    n = box.run_d("busybox", "sleep", "300")
    assert pouchd.cli("diff", n).stdout.strip() == ""  # pouchd's /etc/mtab is no change of the user's
    status, _ = pouchd.api("HEAD", f"/containers/{n}/archive?path=etc/passwd")
    assert status == 200
    r = pouchd.cli("cp", f"{n}:etc/passwd", "-")
    assert r.returncode == 0 and "root" in r.stdout


def test_log_opt_root_dir_and_syslog_rfc5424(pouchd, box, tmp_path):
    import socket
    root = tmp_path / "logs"
    n = box.name()
    r = pouchd.cli("run", "--name", n, "--log-opt", f"root-dir={root}", "busybox", "echo", "in-root-dir")
    assert r.returncode == 0, r.stderr
    cid = inspect(pouchd, n)["Id"]
    assert (root / cid / "json.log").read_text().count("in-root-dir") == 1
    assert inspect(pouchd, n)["LogPath"] == str(root / cid / "json.log")
    assert pouchd.cli("logs", n).stdout.strip() == "in-root-dir"
    assert pouchd.cli("rm", n).returncode == 0 and not (root / cid).exists()
    r = pouchd.cli("create", "--log-opt", "root-dir=relative/x", "busybox")
    assert r.returncode != 0 and "absolute" in r.stderr
    path = str(tmp_path / "syslog.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)
    srv.settimeout(10)
    try:
        got = {}
        for fmt in ("rfc5424", "rfc5424micro"):
            r = pouchd.cli("run", "--rm", "--log-driver", "syslog", "--log-opt", f"syslog-address=unixgram://{path}",
                           "--log-opt", "tag=app5", "--log-opt", f"syslog-format={fmt}", "busybox", "echo", "hello")
            assert r.returncode == 0, r.stderr
            got[fmt] = srv.recv(65536).decode()
    finally:
        srv.close()
    import re
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"
    zone = r"(Z|[+-]\d\d:\d\d)"
    assert re.match(rf"<30>1 {stamp}{zone} \S+ app5 \d+ app5 - hello$", got["rfc5424"]), got
    assert re.match(rf"<30>1 {stamp}\.\d{{6}}{zone} \S+ app5 \d+ app5 - hello$", got["rfc5424micro"]), got
    r = pouchd.cli("create", "--log-driver", "syslog", "--log-opt", "syslog-format=rfc9999", "busybox")
    assert r.returncode != 0 and "syslog-format" in r.stderr


def test_images_tag_rules_and_filters(pouchd):
    r = pouchd.cli("tag", "busybox", "localhost:5000/x/sha256:1.25")
    assert r.returncode != 0 and "digest algorithm as name" in r.stderr
    tag = "ptag" + uuid.uuid4().hex[:6]
    other = None
    try:
        assert pouchd.cli("tag", "busybox", f"{tag}:v1").returncode == 0
        assert pouchd.cli("tag", "busybox", f"{tag}:v1").returncode == 0  # same image: fine
        # an imported image under another name, then tagging over it is refused without force
        imp = pouchd.cli("import", "-", f"{tag}:other", input=_tiny_tar())
        assert imp.returncode == 0, imp.stderr
        r = pouchd.cli("tag", "busybox", f"{tag}:other")
        assert r.returncode != 0 and "has been used" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        status, _ = pouchd.api("POST", f"/images/busybox/tag?repo={tag}&tag=other")
        assert status == 400
        # before/since filters, by creation time
        before = pouchd.cli("images", "-q", "--filter", f"before={tag}:other", "--no-trunc").stdout.split()
        since = pouchd.cli("images", "-q", "--filter", "since=busybox", "--no-trunc").stdout.split()
        bb = inspect(pouchd, "busybox")["Id"]
        other = inspect(pouchd, f"{tag}:other")["Id"]
        assert bb in before and other not in before
        assert other in since and bb not in since
        r = pouchd.cli("images", "--filter", "before=nosuchimage")
        assert r.returncode != 0
        assert pouchd.cli("tag", "--force", "busybox", f"{tag}:other").returncode == 0
        assert inspect(pouchd, f"{tag}:other")["Id"] == bb
    finally:
        pouchd.cli("rmi", f"{tag}:v1")
        pouchd.cli("rmi", f"{tag}:other")  # (busybox's, after the forced tag)
        if other:
            pouchd.cli("rmi", "-f", other)


def _tiny_tar() -> bytes:
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = b"hello\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()
