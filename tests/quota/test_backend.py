"""The quota backend choice (`pouchd --quota-backend`) and the loop-device safety rule."""
import os

import pytest

from pouch.quota import InvalidQuotaSpec
from pouch.quota import loopdev
from pouch.quota.backend import choose
from pouch.quota.loopfs import available


def test_choice_and_refusals(tmp_path):
    with pytest.raises(InvalidQuotaSpec, match="invalid --quota-backend"):
        choose(str(tmp_path), "zfs")
    none = choose(str(tmp_path), "none")
    assert none.name == "none" and none.info() == {"Backend": "none", "Detail": "disabled by --quota-backend=none"}
    # tmp_path is not on a prjquota filesystem: an explicit prjquota says why, auto falls back
    with pytest.raises(InvalidQuotaSpec, match="--quota-backend=prjquota: .*prjquota|project quota"):
        choose(str(tmp_path), "prjquota")
    auto = choose(str(tmp_path), "auto")
    if available()[0]:
        assert auto.name == "loop" and "no project quota" in auto.reason and auto.loop is not None
    else:
        assert auto.name == "none" and "no loop devices" in auto.reason


def test_detach_only_devices_backed_under_the_given_root(tmp_path):
    ok, why = available()
    if not ok:
        pytest.skip(why)
    ours, theirs = tmp_path / "home", tmp_path / "elsewhere"
    ours.mkdir()
    theirs.mkdir()
    image = theirs / "disk.img"
    with open(image, "wb") as f:
        f.truncate(1024 * 1024)
    dev, fd = loopdev.attach(str(image))
    try:
        assert loopdev.devices_backed_under(str(ours)) == {}
        assert dev in loopdev.devices_backed_under(str(theirs))
        assert loopdev.detach_if_ours(dev, str(ours)) is False        # not under our root: left alone
        assert loopdev.backing_file(dev) == str(image)
        assert loopdev.detach_if_ours(dev, str(theirs)) is True
    finally:
        os.close(fd)                                                  # autoclear: gone with the fd
    assert loopdev.backing_file(dev) != str(image)  # (another process may reuse the number)


def test_project_quota_targets_follow_mounts():
    from pouch.daemon.mgr.diskquota import quota_targets
    mounts = [{"Type": "volume", "Destination": "/data", "Source": "/vols/d/_data", "RW": True},
              {"Type": "bind", "Destination": "/logs", "Source": "/host/logs", "RW": True},
              {"Type": "bind", "Destination": "/ro", "Source": "/host/ro", "RW": False},
              {"Type": "tmpfs", "Destination": "/t", "Source": "", "RW": True}]
    up = "/snap/fs"
    assert quota_targets({"/": 10}, up, mounts) == [(up, 10)]
    assert quota_targets({"/data": 5, "/logs": 6, "/etc": 7}, up, mounts) == \
        [("/vols/d/_data", 5), ("/host/logs", 6), ("/snap/fs/etc", 7)]
    assert quota_targets({".*": 9}, up, mounts) == [(up, 9), ("/vols/d/_data", 9), ("/host/logs", 9)]
    assert quota_targets({"/": 1, ".*": 2}, up, mounts)[0] == (up, 1)          # no directory twice
