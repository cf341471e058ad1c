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
