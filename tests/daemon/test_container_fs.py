"""A container's filesystem from outside: `pouch cp` and the archive API (both directions, running and stopped
containers, Docker's naming rules, owners, symlinks that must not lead to the host's files, errors,
and the docker CLI's `docker cp`), and `pouch diff`."""
from __future__ import annotations

import os

import pytest

from tests.daemon.conftest import status, wait_for
from tests.daemon.test_moby_compat import docker

pytestmark = pytest.mark.integration


def sh(pouchd, name: str, script: str) -> str:
    r = pouchd.cli("exec", name, "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_cp_both_ways_with_docker_naming_rules(pouchd, box, tmp_path):
    n = box.run_d("busybox", "sleep", "600")
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "sub" / "b.txt").write_text("beta\n")
    os.chown(src / "a.txt", 1234, 1234)

    # a directory into an existing directory keeps its name; files are the container root's
    assert pouchd.cli("cp", str(src), f"{n}:/tmp").returncode == 0
    assert sh(pouchd, n, "cat /tmp/tree/a.txt /tmp/tree/sub/b.txt; stat -c %u /tmp/tree/a.txt").split() == \
        ["alpha", "beta", "0"]
    # to a path that does not exist: the directory takes that name; -a keeps owners
    assert pouchd.cli("cp", "-a", str(src), f"{n}:/tmp/renamed").returncode == 0
    assert sh(pouchd, n, "cat /tmp/renamed/sub/b.txt; stat -c %u /tmp/renamed/a.txt").split() == ["beta", "1234"]
    # DIR/. copies the contents; a file onto an existing file replaces it
    assert pouchd.cli("cp", f"{src}/.", f"{n}:/etc").returncode == 0
    assert sh(pouchd, n, "cat /etc/a.txt") == "alpha\n"
    (tmp_path / "hosts").write_text("127.0.0.1 copied\n")
    assert pouchd.cli("cp", str(tmp_path / "hosts"), f"{n}:/etc/motd").returncode == 0
    assert sh(pouchd, n, "cat /etc/motd") == "127.0.0.1 copied\n"

    # container -> host
    sh(pouchd, n, "mkdir -p /data/x && echo made-inside > /data/x/f && echo top > /data/top")
    out = tmp_path / "out"
    out.mkdir()
    assert pouchd.cli("cp", f"{n}:/data", str(out)).returncode == 0
    assert (out / "data/x/f").read_text() == "made-inside\n"
    assert pouchd.cli("cp", f"{n}:/data/top", str(out / "newname")).returncode == 0
    assert (out / "newname").read_text() == "top\n"
    assert pouchd.cli("cp", f"{n}:/data/.", str(out / "contents")).returncode == 0
    assert sorted(os.listdir(out / "contents")) == ["top", "x"]
    # tar on stdout
    r = pouchd.cli("cp", f"{n}:/data/top", "-", input=b"")  # bytes in: bytes out
    assert r.returncode == 0 and b"top\n" in r.stdout and r.stdout[257:262] == b"ustar"


def test_cp_never_follows_container_symlinks_to_host_files(pouchd, box, tmp_path):
    n = box.run_d("busybox", "sleep", "600")
    sh(pouchd, n, "echo container-secret > /etc/secret; ln -s /etc/secret /abs; "
                  "ln -s ../../../../../../etc/secret /rel; ln -s /etc /etclink")
    host_marker = "/etc/pouch-cp-test-must-not-exist"
    assert not os.path.exists(host_marker)
    for link in ("/abs", "/rel"):
        r = pouchd.cli("cp", "-L", f"{n}:{link}", str(tmp_path / link.strip("/")))
        assert r.returncode == 0, r.stderr
        assert (tmp_path / link.strip("/")).read_text() == "container-secret\n"
    # without -L the link itself is copied
    assert pouchd.cli("cp", f"{n}:/abs", str(tmp_path / "asis")).returncode == 0
    assert os.readlink(tmp_path / "asis") == "/etc/secret"
    # writing through a directory symlink lands in the container's /etc, not the host's
    (tmp_path / "pouch-cp-test-must-not-exist").write_text("x\n")
    assert pouchd.cli("cp", str(tmp_path / "pouch-cp-test-must-not-exist"), f"{n}:/etclink/").returncode == 0
    assert not os.path.exists(host_marker)
    assert sh(pouchd, n, "cat /etc/pouch-cp-test-must-not-exist") == "x\n"


def test_cp_with_a_stopped_container(pouchd, box, tmp_path):
    n = box.name()
    assert pouchd.cli("create", "--name", n, "busybox", "cat", "/greeting").returncode == 0
    (tmp_path / "greeting").write_text("hello from the host\n")
    r = pouchd.cli("cp", str(tmp_path / "greeting"), f"{n}:/")
    assert r.returncode == 0, r.stderr
    assert pouchd.cli("start", "-a", n).stdout == "hello from the host\n"
    assert status(pouchd, n) == "stopped"
    assert pouchd.cli("cp", f"{n}:/greeting", str(tmp_path / "back")).returncode == 0
    assert (tmp_path / "back").read_text() == "hello from the host\n"
    # the client may finish reading the tar just before pouchd unmounts the snapshot
    wait_for(lambda: not [m for m in open("/proc/mounts").read().splitlines() if "pouch-cp-" in m],
             timeout=5, what="the stopped container's snapshot unmounted")


def test_cp_errors_are_one_line_and_change_nothing(pouchd, box, tmp_path):
    n = box.run_d("busybox", "sleep", "600")
    r = pouchd.cli("cp", f"{n}:/no/such/file", str(tmp_path))
    assert r.returncode != 0 and "Could not find the file /no/such/file" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = pouchd.cli("cp", str(tmp_path), "no-such-container:/tmp")
    assert r.returncode != 0 and "no-such-container" in r.stderr
    r = pouchd.cli("cp", "/etc/hostname", f"{n}:/no/such/dir/")
    assert r.returncode != 0 and "does not exist" in r.stderr
    r = pouchd.cli("cp", str(tmp_path), str(tmp_path / "x"))
    assert r.returncode != 0 and "container" in r.stderr


def test_docker_cli_cp(pouchd, box, tmp_path):
    n = box.run_d("busybox", "sleep", "600")
    (tmp_path / "in.txt").write_text("via docker\n")
    r = docker(pouchd, "cp", str(tmp_path / "in.txt"), f"{n}:/tmp/in.txt")
    assert r.returncode == 0, r.stderr
    assert sh(pouchd, n, "cat /tmp/in.txt") == "via docker\n"
    r = docker(pouchd, "cp", f"{n}:/tmp/in.txt", str(tmp_path / "out.txt"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.txt").read_text() == "via docker\n"


def test_diff_lists_added_changed_and_deleted_paths(pouchd, box):
    n = box.run_d("busybox", "sh", "-c", "echo new > /added; echo x >> /etc/passwd; rm /etc/group; "
                                          "mkdir -p /srv/a/b; sleep 600")
    wait_for(lambda: "A /srv/a/b" in pouchd.cli("diff", n).stdout, what="the command's changes")
    lines = pouchd.cli("diff", n).stdout.splitlines()
    for want in ("A /added", "C /etc", "C /etc/passwd", "D /etc/group", "A /srv", "A /srv/a", "A /srv/a/b"):
        assert want in lines, lines
    assert not [l for l in lines if l.endswith(("/etc/hosts", "/etc/resolv.conf", "/etc/hostname"))], lines
    r = docker(pouchd, "diff", n)
    assert r.returncode == 0 and "D /etc/group" in r.stdout.splitlines(), r.stderr
