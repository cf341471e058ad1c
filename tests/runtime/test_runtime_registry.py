"""Runtime registry: auto-registered runtimes on PATH, --add-runtime, config map, typed errors."""
import shutil
import stat

import pytest

from pouch.runtime import SHIM, InvalidRuntime, RuntimeNotFound, RuntimeRegistry


def _fake_runtime(tmp_path, name):
    p = tmp_path / name
    p.write_text("#!/bin/sh\nexit 0\n")
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return str(p)


def test_runc_is_default_and_found_runtimes_are_registered():
    if not shutil.which("runc"):
        pytest.skip("runc is not installed")
    reg = RuntimeRegistry()
    rt = reg.get()
    assert rt.name == "runc" and rt.runtime_type == SHIM and rt.options["BinaryName"] == shutil.which("runc")
    for name in ("crun", "runsc"):
        assert (name in reg.names()) == bool(shutil.which(name))


def test_runsc_gets_its_own_options(tmp_path):
    reg = RuntimeRegistry()
    rt = reg.add("runsc", _fake_runtime(tmp_path, "runsc"))
    assert rt.options["Root"] and rt.options["SystemdCgroup"] is False


def test_add_runtime_flag_and_config(tmp_path):
    reg = RuntimeRegistry()
    path = _fake_runtime(tmp_path, "myrt")
    assert reg.add_flag(f"my-rt={path}").options["BinaryName"] == path
    reg.add_config({"other": {"path": path, "runtimeArgs": ["--debug"]}})
    assert reg.get("other").args == ["--debug"] and "my-rt" in reg.names()
    with pytest.raises(InvalidRuntime):
        reg.add_flag("nopath")
    # as Pouch: a runtime installed after pouchd starts is accepted, and refused while missing
    later = reg.add_flag(f"later={tmp_path}/missing")
    with pytest.raises(InvalidRuntime, match="not installed"):
        later.check_installed()
    _fake_runtime(tmp_path, "missing")
    later.check_installed()
    with pytest.raises(InvalidRuntime, match="not an executable"):
        reg.add("bad", f"{tmp_path}/missing-too")
    with pytest.raises(InvalidRuntime):
        reg.add_config({"x": {}})
    with pytest.raises(RuntimeNotFound) as e:
        reg.get("kata")
    assert e.value.http_status == 404 and "my-rt" in str(e.value)
