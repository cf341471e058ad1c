"""Namespaces and secure defaults through the real pouchd: what a process inside the container
can see and do (seccomp, capabilities, masked /proc, --privileged, no-new-privileges, devices,
read-only rootfs, sysctls, ulimits, oom-score-adj, --pid/--ipc/--uts sharing)."""
from __future__ import annotations

import os
import resource
import subprocess
import tempfile

import pytest

from pouch.oci.caps import held_capabilities
from tests.daemon.conftest import inspect

pytestmark = pytest.mark.integration


def run(d, *args, timeout=60):
    return d.cli("run", "--rm", *args, timeout=timeout)


def ns_of(pid: int | str, kind: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


# -- namespaces ------------------------------------------------------------------
def test_pid_host_sees_host_processes(pouchd):
    r = run(pouchd, "--pid", "host", "busybox", "cat", f"/proc/{os.getpid()}/cmdline")
    assert r.returncode == 0, r.stderr
    assert "pytest" in r.stdout.replace("\0", " ")
    r = run(pouchd, "busybox", "cat", f"/proc/{os.getpid()}/cmdline")
    assert "pytest" not in r.stdout.replace("\0", " ")


def test_pid_container_sees_the_other_containers_processes(pouchd, box):
    x = box.run_d("busybox", "sleep", "600")
    r = run(pouchd, "--pid", f"container:{x}", "busybox", "ps", "-o", "pid,args")
    assert r.returncode == 0, r.stderr
    assert "sleep 600" in r.stdout
    # pid 1 of the shared namespace is x's sleep
    assert r.stdout.splitlines()[1].split()[0] == "1"


def test_pid_container_needs_a_running_container(pouchd, box):
    x = box.name()
    assert pouchd.cli("create", "--name", x, "busybox", "true").returncode == 0
    r = run(pouchd, "--pid", f"container:{x}", "busybox", "true")
    assert r.returncode == 1 and "running" in r.stderr


def test_ipc_host_and_container(pouchd, box):
    r = run(pouchd, "--ipc", "host", "busybox", "readlink", "/proc/self/ns/ipc")
    assert r.stdout.strip() == ns_of("self", "ipc")
    x = box.run_d("busybox", "sleep", "600")
    pid = inspect(pouchd, x)["State"]["Pid"]
    r = run(pouchd, "--ipc", f"container:{x}", "busybox", "readlink", "/proc/self/ns/ipc")
    assert r.stdout.strip() == ns_of(pid, "ipc") != ns_of("self", "ipc")
    r = run(pouchd, "busybox", "readlink", "/proc/self/ns/ipc")
    assert r.stdout.strip() not in (ns_of(pid, "ipc"), ns_of("self", "ipc"))


def test_uts_host_and_container_keep_the_owners_hostname(pouchd, box):
    r = run(pouchd, "--uts", "host", "busybox", "hostname")
    assert r.stdout.strip() == os.uname().nodename
    x = box.run_d("--hostname", "owner-box", "busybox", "sleep", "600")
    r = run(pouchd, "--uts", f"container:{x}", "busybox", "hostname")
    assert r.stdout.strip() == "owner-box"
    # joining must not rename the owner
    assert pouchd.cli("exec", x, "hostname").stdout.strip() == "owner-box"


# -- seccomp ---------------------------------------------------------------------
def test_default_seccomp_blocks_user_namespaces_and_keyctl(pouchd):
    r = run(pouchd, "busybox", "unshare", "-U", "true")
    assert r.returncode != 0 and "Operation not permitted" in r.stderr, r
    r = run(pouchd, "--security-opt", "seccomp=unconfined", "busybox", "unshare", "-U", "true")
    assert r.returncode == 0, r.stderr
    # keyctl/add_key: no busybox applet; the seccomp filter itself is visible in /proc
    r = run(pouchd, "busybox", "grep", "Seccomp:", "/proc/self/status")
    assert r.stdout.split()[-1] == "2"   # SECCOMP_MODE_FILTER
    r = run(pouchd, "--security-opt", "seccomp=unconfined", "busybox", "grep", "Seccomp:", "/proc/self/status")
    assert r.stdout.split()[-1] == "0"


def test_default_seccomp_profile_in_the_bundle_leaves_out_keyctl(pouchd, box):
    """busybox has no keyctl applet: read the profile runc was given for a running container."""
    import glob
    import json
    x = box.run_d("busybox", "sleep", "600")
    cid = inspect(pouchd, x)["Id"]
    paths = glob.glob(os.path.join(pouchd.run_dir, "containerd", "**", cid, "config.json"), recursive=True)
    assert paths, "bundle config.json not found"
    with open(paths[0]) as f:
        sec = json.load(f)["linux"]["seccomp"]
    assert sec["defaultAction"] in ("SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS")
    allowed = {n for rule in sec["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" for n in rule["names"]}
    assert {"keyctl", "add_key", "request_key"}.isdisjoint(allowed)
    assert "read" in allowed and "write" in allowed


def test_seccomp_profile_file(pouchd, tmp_path):
    prof = tmp_path / "deny-mkdir.json"
    prof.write_text('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"],'
                    ' "action": "SCMP_ACT_ERRNO"}]}')
    r = run(pouchd, "--security-opt", f"seccomp={prof}", "busybox", "mkdir", "/tmp/d")
    assert r.returncode != 0 and "not permitted" in r.stderr, r
    assert run(pouchd, "busybox", "mkdir", "/tmp/d").returncode == 0


# -- capabilities ----------------------------------------------------------------
def test_net_admin_only_with_cap_add(pouchd):
    cmd = ["busybox", "ip", "addr", "add", "127.0.0.9/8", "dev", "lo"]
    r = run(pouchd, *cmd)
    assert r.returncode != 0 and "Operation not permitted" in r.stderr, r
    r = run(pouchd, "--cap-add", "NET_ADMIN", *cmd)
    assert r.returncode == 0, r.stderr


def test_chown_by_default_not_with_cap_drop(pouchd):
    cmd = ["busybox", "sh", "-c", "touch /tmp/f && chown 1000:1000 /tmp/f && stat -c %u /tmp/f"]
    r = run(pouchd, *cmd)
    assert r.returncode == 0 and r.stdout.strip() == "1000", r
    r = run(pouchd, "--cap-drop", "CHOWN", *cmd)
    assert r.returncode != 0 and "Operation not permitted" in r.stderr, r


def test_unknown_capability_refused(pouchd):
    r = run(pouchd, "--cap-add", "NOT_A_CAP", "busybox", "true")
    assert r.returncode == 1 and "NOT_A_CAP" in r.stderr


# -- masked / read-only kernel paths ---------------------------------------------
def test_masked_and_readonly_proc(pouchd):
    masked = [p for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug")
              if os.path.exists(p)]
    assert masked, "no maskable /proc file on this host"
    script = "; ".join(f"wc -c < {p}" for p in masked) + "; echo x > /proc/sys/kernel/domainname"
    r = run(pouchd, "busybox", "sh", "-c", script)
    # a masked file is /dev/null: reads give 0 bytes
    assert r.stdout.split() == ["0"] * len(masked), r
    assert "Read-only file system" in r.stderr
    if os.path.exists("/proc/timer_list"):
        with open("/proc/timer_list") as f:
            assert len(f.read()) > 0   # the host's is not empty, so 0 inside means masked
    r = run(pouchd, "busybox", "sh", "-c", "ls /sys/firmware | wc -l")
    assert r.stdout.strip() == "0"


def test_privileged_can_mount_and_sees_host_devices(pouchd):
    dev = sorted(d for d in os.listdir("/dev") if d.startswith("loop") and d[4:].isdigit())
    script = "mkdir /tmp/m && mount -t tmpfs none /tmp/m && echo mounted"
    r = run(pouchd, "busybox", "sh", "-c", script)
    assert "mounted" not in r.stdout and r.returncode != 0
    r = run(pouchd, "--privileged", "busybox", "sh", "-c", script)
    assert r.stdout.strip() == "mounted", r.stderr
    if dev:
        r = run(pouchd, "--privileged", "busybox", "ls", f"/dev/{dev[0]}")
        assert r.returncode == 0, r.stderr
        assert run(pouchd, "busybox", "ls", f"/dev/{dev[0]}").returncode != 0
    # what pouchd itself holds, not a fixed list: CAP_SYS_RESOURCE is absent on this host
    r = run(pouchd, "--privileged", "busybox", "grep", "CapEff", "/proc/self/status")
    eff = int(r.stdout.split()[-1], 16)
    with open("/proc/self/status") as f:
        mine = int(next(l for l in f if l.startswith("CapEff")).split()[-1], 16)
    assert eff == mine


def test_no_new_privileges(pouchd):
    r = run(pouchd, "--security-opt", "no-new-privileges", "busybox", "grep", "NoNewPrivs", "/proc/self/status")
    assert r.stdout.split()[-1] == "1", r
    r = run(pouchd, "busybox", "grep", "NoNewPrivs", "/proc/self/status")
    assert r.stdout.split()[-1] == "0"


@pytest.fixture
def loopdev():
    fd, img = tempfile.mkstemp(prefix="pouch-dev-")
    os.close(fd)
    os.truncate(img, 1024 * 1024)
    r = subprocess.run(["losetup", "--find", "--show", img], capture_output=True, text=True)
    if r.returncode:
        os.unlink(img)
        pytest.skip(f"no free loop device: {r.stderr.strip()}")
    yield r.stdout.strip()
    subprocess.run(["losetup", "-d", r.stdout.strip()], capture_output=True)
    os.unlink(img)


def test_device_visible_and_usable(pouchd, loopdev):
    with open(loopdev, "r+b") as f:
        f.write(b"pouch-device-test")
    r = run(pouchd, "--device", loopdev, "busybox", "head", "-c", "17", loopdev)
    assert r.returncode == 0 and r.stdout == "pouch-device-test", r
    r = run(pouchd, "--device", f"{loopdev}:/dev/xdisk", "busybox", "ls", "-l", "/dev/xdisk")
    assert r.stdout.startswith("b"), r
    assert run(pouchd, "busybox", "ls", loopdev).returncode != 0
    r = run(pouchd, "--device", "/dev/does-not-exist", "busybox", "true")
    assert r.returncode == 1 and "/dev/does-not-exist" in r.stderr


def test_read_only_rootfs_with_tmpfs(pouchd):
    r = run(pouchd, "--read-only", "--tmpfs", "/tmp", "busybox", "sh", "-c",
            "touch /x 2>&1; echo rc=$?; touch /tmp/y && echo tmp-ok")
    assert "Read-only file system" in r.stdout and "rc=1" in r.stdout
    assert "tmp-ok" in r.stdout


def test_sysctl(pouchd):
    r = run(pouchd, "--sysctl", "net.ipv4.ip_forward=1", "busybox", "cat", "/proc/sys/net/ipv4/ip_forward")
    assert r.stdout.strip() == "1", r
    r = run(pouchd, "--sysctl", "kernel.panic=1", "busybox", "true")
    assert r.returncode == 1 and "kernel.panic" in r.stderr


def test_ulimit(pouchd):
    r = run(pouchd, "--ulimit", "nofile=1024:2048", "busybox", "sh", "-c", "ulimit -n; ulimit -Hn")
    assert r.stdout.split() == ["1024", "2048"], r
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if "CAP_SYS_RESOURCE" in held_capabilities() or hard == resource.RLIM_INFINITY:
        pytest.skip("pouchd holds CAP_SYS_RESOURCE: any nofile limit can be granted")
    r = run(pouchd, "--ulimit", f"nofile=1024:{hard * 10}", "busybox", "true")
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "CAP_SYS_RESOURCE" in r.stderr, r.stderr


def test_oom_score_adj(pouchd):
    r = run(pouchd, "--oom-score-adj", "500", "busybox", "cat", "/proc/self/oom_score_adj")
    assert r.stdout.strip() == "500", r
    if "CAP_SYS_RESOURCE" in held_capabilities():
        r = run(pouchd, "--oom-score-adj", "-500", "busybox", "cat", "/proc/self/oom_score_adj")
        assert r.stdout.strip() == "-500"
        return
    r = run(pouchd, "--oom-score-adj", "-500", "busybox", "true")
    assert r.returncode == 1 and "CAP_SYS_RESOURCE" in r.stderr, r.stderr
    r = run(pouchd, "--oom-score-adj", "1001", "busybox", "true")
    assert r.returncode == 1 and "1001" in r.stderr
