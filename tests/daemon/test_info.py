"""`pouch info` features, forced degradation (overlayfs that cannot work, home without project
quota), and the flag / config-file merge of pouchd, all against the real pouchd."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

import pytest

from pouch.oci.cgroups import detect_driver, detect_mode
from pouch.client import APIClient
from tests.conftest import _missing_for_daemon
from tests.daemon.conftest import runtime_state, wait_for
from tests.daemon.test_moby_compat import docker
from tests.fixtures.daemon import POUCHD, PouchDaemon
from tests.fixtures.images import busybox_archive
from tests.fixtures.quota_fs import QuotaFsUnavailable, quota_filesystem

pytestmark = pytest.mark.integration


def test_info_shows_detected_features(pouchd):
    r = pouchd.cli("info")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    mode = detect_mode()
    version = "2" if mode == "v2" else "1"
    assert f"Cgroups: v{version} {mode}, driver {detect_driver()}" in out
    assert "Overlayfs: yes" in out
    assert "Seccomp: yes" in out
    with open("/proc/sys/user/max_user_namespaces") as f:
        assert ("User Namespaces: yes" in out) == (int(f.read()) > 0)
    # this session daemon's home is not on a prjquota filesystem: a "no" with the reason
    line = next(l for l in out.splitlines() if "Project Quota:" in l)
    assert line.split(":", 1)[1].strip().startswith("no (") and pouchd.home in line
    assert "Lxcfs: disabled" in out and "--enable-lxcfs" in out
    runtimes = next(l for l in out.splitlines() if l.strip().startswith("Runtimes:") and l.startswith("  "))
    for rt in ("runc", "crun", "runsc"):
        assert (rt in runtimes.split()) == bool(shutil.which(rt))
    feats = json.loads(pouchd.cli("info", "-f", "{{json .Features}}").stdout)
    assert feats["ProjectQuota"]["Supported"] is False
    assert feats["Lxcfs"]["Enabled"] is False


@pytest.fixture
def overlay_home():
    """A directory on an overlayfs mount: overlay refuses it as an upper layer."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount overlayfs")
    base = tempfile.mkdtemp(prefix="pouch-ovl-home-")
    for d in ("l", "u", "w", "m"):
        os.mkdir(os.path.join(base, d))
    r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        f"lowerdir={base}/l,upperdir={base}/u,workdir={base}/w", f"{base}/m"],
                       capture_output=True, text=True)
    if r.returncode:
        shutil.rmtree(base)
        pytest.skip(f"cannot mount overlayfs: {r.stderr.strip()}")
    yield os.path.join(base, "m")
    subprocess.run(["umount", "-l", f"{base}/m"], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


def test_overlay_that_cannot_work_degrades_to_native_snapshotter(overlay_home):
    """A home where overlayfs cannot keep layers: pouchd says so and uses the native snapshotter;
    containers still run.  Asking for overlayfs explicitly there is a clear start-up error."""
    why = _missing_for_daemon()
    if why:
        pytest.skip(why)
    d = PouchDaemon(base=os.path.join(overlay_home, "pouch"))
    os.makedirs(d.base)
    d.start()
    try:
        from tests.fixtures.images import busybox_archive
        assert d.cli("load", "-i", busybox_archive()).returncode == 0
        info = d.api("GET", "/info")[1]
        assert info["Driver"] == "native"
        assert "overlay" in info["Features"]["Snapshotter"]["Detail"]
        r = d.cli("run", "--rm", "busybox", "sh", "-c", "echo hi > /f; cat /f")
        assert r.returncode == 0 and r.stdout.strip() == "hi", r.stderr
        assert "native snapshotter" in d.log()
    finally:
        d.cleanup()
    run = tempfile.mkdtemp(prefix="pouch-ovl-run-")
    try:
        r = subprocess.run([POUCHD, "--home-dir", os.path.join(overlay_home, "home"), "--exec-root-dir", run,
                            "-l", f"unix://{run}/s.sock", "--config-file", f"{run}/none.json",
                            "--snapshotter", "overlayfs"],
                           capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(run, ignore_errors=True)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("pouchd: overlayfs cannot keep container layers") and "--home-dir" in last, r.stderr
    assert "Traceback" not in r.stderr


def test_quota_backend_auto_falls_back_to_loop_and_none_refuses(pouchd):
    """A home without project quota: `auto` takes the loop backend and says why; with
    `--quota-backend none` a disk quota or volume size is a one-line 400; asking for prjquota
    there is a clear start-up error."""
    feats = json.loads(pouchd.cli("info", "-f", "{{json .Features}}").stdout)
    if feats["DiskQuota"]["Backend"] != "loop":
        pytest.skip(f"no loop backend here: {feats['DiskQuota']['Detail']}")
    assert "no project quota" in feats["DiskQuota"]["Detail"]
    d = PouchDaemon(extra_args=["--quota-backend", "none"])
    d.start()
    try:
        from tests.fixtures.images import busybox_archive
        d.cli("load", "-i", busybox_archive(), check=True)
        r = d.cli("create", "--disk-quota", "10m", "busybox", "true")
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1 and "--quota-backend=none" in lines[0], r.stderr
        r = d.cli("volume", "create", "--name", "sz", "-o", "size=10m")
        assert r.returncode == 1 and "volume size is not available" in r.stderr, r.stderr
        assert d.cli("volume", "ls", "-q").stdout.splitlines()[1:] == []  # the header only
        assert not os.path.exists(os.path.join(d.home, "volumes", "sz"))
    finally:
        d.cleanup()
    run = tempfile.mkdtemp(prefix="pouch-pq-run-")
    try:
        r = subprocess.run([POUCHD, "--home-dir", os.path.join(run, "home"), "--exec-root-dir", run,
                            "-l", f"unix://{run}/s.sock", "--config-file", f"{run}/none.json",
                            "--quota-backend", "prjquota"], capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(run, ignore_errors=True)  # it stops before containerd and networks start
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("pouchd: --quota-backend=prjquota: "), r.stderr


@pytest.mark.parametrize("fstype", ["xfs", "ext4"])
def test_disk_quota_enforced_on_a_prjquota_home(fstype):
    """Needs a kernel that mounts xfs/ext4 with prjquota; skipped with the kernel's reason otherwise."""
    why = _missing_for_daemon()
    if why:
        pytest.skip(why)
    try:
        with quota_filesystem(fstype, size_mb=300) as mnt:
            d = PouchDaemon(base=os.path.join(mnt, "pouch"))
            os.makedirs(d.base)
            d.start()
            try:
                from tests.fixtures.images import busybox_archive
                assert d.cli("load", "-i", busybox_archive()).returncode == 0
                r = d.cli("run", "--rm", "--disk-quota", "10m", "busybox", "sh", "-c",
                          "df -m / | tail -1; dd if=/dev/zero of=/big bs=1M count=20 2>&1; echo rc=$?")
                assert r.returncode == 0, r.stderr
                assert r.stdout.split()[1] == "10"
                assert "No space left" in r.stdout and "rc=1" in r.stdout
            finally:
                d.cleanup()
    except QuotaFsUnavailable as e:
        pytest.skip(str(e))


# -- flag / config file merge --------------------------------------------------------------
def _pouchd(config: dict, *flags: str) -> PouchDaemon:
    why = _missing_for_daemon()
    if why:
        pytest.skip(why)
    d = PouchDaemon(extra_args=list(flags))
    with open(os.path.join(d.base, "config.json"), "w") as f:
        json.dump(config, f)
    return d


def test_config_key_with_a_different_flag_value_fails_start():
    d = _pouchd({"default-runtime": "crun"}, "--default-runtime", "runc")
    try:
        with pytest.raises(RuntimeError) as e:
            d.start(timeout=15)
        msg = str(e.value)
        assert "default-runtime" in msg and "crun" in msg and "runc" in msg
        assert "Traceback" not in msg
    finally:
        d.cleanup()


def test_config_key_with_the_same_flag_value_is_fine():
    d = _pouchd({"default-runtime": "runc", "cgroup-parent": "/pouch"}, "--default-runtime", "runc")
    try:
        d.start()
        info = json.loads(d.cli("info", "-f", "{{json .}}").stdout)
        assert info["DefaultRuntime"] == "runc"
    finally:
        d.cleanup()


def test_config_file_value_is_used_when_no_flag():
    if not shutil.which("crun"):
        pytest.skip("crun is not installed")
    d = _pouchd({"default-runtime": "crun"})
    try:
        d.start()
        assert json.loads(d.cli("info", "-f", "{{json .DefaultRuntime}}").stdout) == "crun"
        # and a container given no --runtime runs under crun (crun's own state knows it)
        d.cli("load", "-i", busybox_archive(), check=True)
        r = d.cli("run", "-d", "busybox", "sleep", "60")
        assert r.returncode == 0, r.stderr
        state = runtime_state("crun", r.stdout.strip())
        assert state is not None and state["status"] == "running", state
        assert runtime_state("runc", r.stdout.strip()) is None
    finally:
        d.cleanup()


def test_unknown_config_key_fails_start():
    d = _pouchd({"no-such-key": 1})
    try:
        with pytest.raises(RuntimeError) as e:
            d.start(timeout=15)
        assert "no-such-key" in str(e.value)
    finally:
        d.cleanup()


def test_system_df_counts_images_containers_and_volumes(pouchd, box):
    vol = box.name()
    assert pouchd.cli("volume", "create", "--name", vol).returncode == 0
    try:
        n = box.run_d("-v", f"{vol}:/data", "busybox", "sh", "-c",
                      "dd if=/dev/urandom of=/data/v bs=1M count=1 2>/dev/null; "
                      "dd if=/dev/urandom of=/rw bs=1M count=2 2>/dev/null; touch /done; sleep 600")
        wait_for(lambda: pouchd.cli("exec", n, "test", "-e", "/done").returncode == 0, what="writes")
        d = APIClient(host=pouchd.host).df()
        ctr = next(c for c in d["Containers"] if c["Names"] == ["/" + n])
        assert 2 << 20 <= ctr["SizeRw"] < 3 << 20
        bb = next(i for i in d["Images"] if "busybox:latest" in i["RepoTags"])
        assert bb["Size"] > 1 << 20 and bb["Containers"] >= 1
        assert ctr["SizeRootFs"] == ctr["SizeRw"] + bb["Size"]
        assert d["LayersSize"] >= bb["Size"]
        v = next(v for v in d["Volumes"] if v["Name"] == vol)
        assert v["UsageData"]["RefCount"] == 1 and v["UsageData"]["Size"] >= 1 << 20
        r = pouchd.cli("system", "df", "-v")
        assert r.returncode == 0 and "Local Volumes" in r.stdout and vol in r.stdout, r.stderr
        assert n in r.stdout
        r = docker(pouchd, "system", "df", "--format", "{{json .}}")
        assert r.returncode == 0, r.stderr
        assert {json.loads(l)["Type"] for l in r.stdout.splitlines()} >= {"Images", "Containers", "Local Volumes"}
    finally:
        box.cleanup()
        pouchd.cli("volume", "rm", vol)
