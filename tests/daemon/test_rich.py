"""Rich containers against real images: an init as PID 1 with the command under it (dumb-init),
busybox init booting syslogd and crond from /etc/inittab (sbin-init), Debian's systemd starting
sshd that the host logs into (systemd), the initscript at every start, and bad settings refused."""
from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from tests.daemon.conftest import inspect, status, wait_for
from tests.fixtures.images import busybox_init_archive, debian_systemd_archive

pytestmark = pytest.mark.integration


def ps(pouchd, name: str) -> dict[int, tuple[int, str]]:
    """pid -> (ppid, command) inside the container."""
    r = pouchd.cli("exec", name, "ps", "-o", "pid,ppid,args")
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines()[1:]:
        pid, ppid, args = line.split(None, 2)
        out[int(pid)] = (int(ppid), args)
    return out


@pytest.fixture(scope="module")
def init_image(pouchd):
    assert pouchd.cli("load", "-i", busybox_init_archive()).returncode == 0
    return "pouch-busybox-init:latest"


def test_dumb_init_mode_runs_the_command_under_an_init(pouchd, box):
    n = box.run_d("--rich", "busybox", "sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait")
    procs = wait_for(lambda: (p := ps(pouchd, n)) and any("sleep 600" in a for _, a in p.values()) and p,
                     what="the command under init")
    assert "docker-init" in procs[1][1], procs  # the host's static init (tini), as PID 1
    sh_pid = next(pid for pid, (_, a) in procs.items() if a.startswith("sh -c"))
    assert procs[sh_pid][0] == 1
    env = inspect(pouchd, n)["Config"]
    assert env["Rich"] is True
    r = pouchd.cli("exec", n, "sh", "-c", "echo $rich_mode $rich_mode_launch_manner")
    assert r.stdout.split() == ["true", "dumb-init"]
    t = time.monotonic()
    assert pouchd.cli("stop", n).returncode == 0  # the init forwards SIGTERM: no 10 s timeout
    assert time.monotonic() - t < 5
    assert inspect(pouchd, n)["State"]["ExitCode"] == 0


def test_initscript_runs_before_the_command_at_every_start(pouchd, box, tmp_path):
    n = box.name()
    assert pouchd.cli("create", "--name", n, "--rich", "--initscript", "/init.sh", "busybox",
                      "sh", "-c", "cat /var/init-count; sleep 600").returncode == 0
    script = tmp_path / "init.sh"
    script.write_text("#!/bin/sh\necho run >> /var/init-count\n")
    script.chmod(0o755)
    assert pouchd.cli("cp", str(script), f"{n}:/init.sh").returncode == 0
    assert pouchd.cli("start", n).returncode == 0
    wait_for(lambda: pouchd.cli("logs", n).stdout.count("run") == 1, what="first start's initscript")
    assert pouchd.cli("restart", "-t", "1", n).returncode == 0
    r = pouchd.cli("exec", n, "cat", "/var/init-count")
    assert r.stdout.split() == ["run", "run"]


def test_failing_initscript_stops_the_start(pouchd, box, tmp_path):
    n = box.name()
    assert pouchd.cli("create", "--name", n, "--rich", "--initscript", "/bad.sh", "busybox",
                      "touch", "/command-ran").returncode == 0
    script = tmp_path / "bad.sh"
    script.write_text("#!/bin/sh\nexit 7\n")
    script.chmod(0o755)
    assert pouchd.cli("cp", str(script), f"{n}:/bad.sh").returncode == 0
    pouchd.cli("start", n)
    wait_for(lambda: status(pouchd, n) == "stopped", what="exit")
    assert inspect(pouchd, n)["State"]["ExitCode"] == 7
    assert "initscript /bad.sh failed (7)" in pouchd.cli("logs", n).stderr
    r = pouchd.cli("cp", f"{n}:/command-ran", str(tmp_path / "x"))
    assert r.returncode != 0


def test_sbin_init_mode_boots_the_images_services(pouchd, box, init_image, tmp_path):
    n = box.run_d("--rich", "--rich-mode", "sbin-init", init_image, "sh", "-c", "echo started > /tmp/cmd; sleep 600")
    procs = wait_for(lambda: (p := ps(pouchd, n)) and sum("syslogd" in a or "crond" in a for _, a in p.values()) == 2
                     and any("sleep 600" in a for _, a in p.values()) and p, what="services and command")
    assert procs[1][1].startswith("init"), procs
    assert pouchd.cli("exec", n, "cat", "/run/booted").stdout == "booted\n"  # rcS ran (sysinit)
    # the command is a child of init, and syslogd serves the container's logger
    sleeper = next(pid for pid, (_, a) in procs.items() if "sleep 600" in a)
    assert procs[procs[sleeper][0]][0] == 1 or procs[sleeper][0] == 1
    assert pouchd.cli("exec", n, "logger", "hello-from-rich").returncode == 0
    wait_for(lambda: "hello-from-rich" in pouchd.cli("exec", n, "cat", "/var/log/messages").stdout,
             what="syslogd writing /var/log/messages")
    # respawn: a killed service comes back
    crond = next(pid for pid, (_, a) in procs.items() if "crond" in a)
    pouchd.cli("exec", n, "kill", str(crond))
    wait_for(lambda: any("crond" in a and pid != crond for pid, (_, a) in ps(pouchd, n).items()),
             what="crond respawned by init")
    t = time.monotonic()
    assert pouchd.cli("stop", n).returncode == 0
    assert time.monotonic() - t < 8, "busybox init shuts down on SIGTERM"
    assert pouchd.cli("cp", f"{n}:/var/log/shutdown", str(tmp_path / "sd")).returncode == 0
    assert (tmp_path / "sd").read_text() == "init: shutting down\n"


def test_bad_rich_settings_are_refused(pouchd, box):
    cases = [
        (["--rich-mode", "sbin-init", "busybox", "true"], "must first enable rich mode"),
        (["--rich", "--rich-mode", "upstart", "busybox", "true"], "invalid rich mode"),
        (["--initscript", "/x.sh", "busybox", "true"], "needs rich mode"),
        (["--rich", "--initscript", "x.sh", "busybox", "true"], "absolute path"),
        (["--rich", "--rich-mode", "systemd", "busybox", "true"], "no /lib/systemd/systemd"),
    ]
    before = pouchd.cli("ps", "-aq").stdout
    for args, msg in cases:
        n = box.name()
        r = pouchd.cli("create", "--name", n, *args)
        assert r.returncode != 0 and msg in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
    assert pouchd.cli("ps", "-aq").stdout == before


@pytest.fixture(scope="module")
def systemd_image(pouchd):
    try:
        archive = debian_systemd_archive()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    assert pouchd.cli("load", "-i", archive, timeout=300).returncode == 0
    return "pouch-debian-systemd:latest"


def test_systemd_mode_runs_sshd_the_host_logs_into(pouchd, box, systemd_image, tmp_path):
    if not shutil.which("ssh"):
        pytest.skip("ssh client missing: apt-get install openssh-client")
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    n = box.name()
    assert pouchd.cli("create", "--name", n, "--rich", "--rich-mode", "systemd", systemd_image).returncode == 0
    sshdir = tmp_path / ".ssh"
    sshdir.mkdir(mode=0o700)
    shutil.copy(tmp_path / "id.pub", sshdir / "authorized_keys")
    assert pouchd.cli("cp", "-a", str(sshdir), f"{n}:/root/").returncode == 0
    assert pouchd.cli("start", n).returncode == 0
    info = inspect(pouchd, n)
    assert info["Config"]["StopSignal"] == "SIGRTMIN+3"

    def state():
        r = pouchd.cli("exec", n, "systemctl", "is-system-running")
        return r.stdout.strip() in ("running", "degraded") and r.stdout.strip()
    wait_for(state, timeout=60, interval=0.5, what="systemd boot")
    assert pouchd.cli("exec", n, "ps", "-o", "comm=", "-p", "1").stdout.strip() == "systemd"
    wait_for(lambda: pouchd.cli("exec", n, "systemctl", "is-active", "ssh").stdout.strip() == "active",
             timeout=30, what="sshd active")
    ip = info["NetworkSettings"]["IPAddress"] or next(iter(info["NetworkSettings"]["Networks"].values()))["IPAddress"]
    r = subprocess.run(["ssh", "-i", str(key), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                        "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", f"root@{ip}", "cat /proc/1/comm"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "systemd"
    t = time.monotonic()
    assert pouchd.cli("stop", "-t", "30", n).returncode == 0
    assert time.monotonic() - t < 25, "SIGRTMIN+3 shuts systemd down cleanly, without the SIGKILL timeout"
    assert inspect(pouchd, n)["State"]["ExitCode"] != 137
