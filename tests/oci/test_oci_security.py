"""Unit + host tests: capabilities, seccomp profile, masks, sysctls, ulimits, oom-score-adj, devices."""
import json
import resource

import pytest

from pouch.oci import apply_security, caps, seccomp, security
from pouch.oci.errors import InvalidOciConfig, MissingPrivilege

HOST = caps.held_capabilities()
NO_RESOURCE = [c for c in caps.CAPABILITIES if c != "CAP_SYS_RESOURCE"]


def test_default_caps_add_drop_all():
    assert caps.compute(held=caps.CAPABILITIES) == sorted(caps.DEFAULT_CAPABILITIES, key=caps.CAPABILITIES.index)
    got = caps.compute(["net_admin", "CAP_SYS_PTRACE"], ["chown"], held=caps.CAPABILITIES)
    assert "CAP_NET_ADMIN" in got and "CAP_SYS_PTRACE" in got and "CAP_CHOWN" not in got
    assert caps.compute(["NET_RAW"], ["ALL"], held=caps.CAPABILITIES) == ["CAP_NET_RAW"]
    with pytest.raises(InvalidOciConfig, match="unknown capability"):
        caps.compute(["CAP_FLY"])


def test_privileged_gets_what_pouchd_holds_and_add_of_withheld_cap_is_refused():
    assert caps.compute(privileged=True) == HOST
    assert caps.compute(privileged=True, held=NO_RESOURCE) == NO_RESOURCE
    with pytest.raises(MissingPrivilege, match="CAP_SYS_RESOURCE"):
        caps.compute(["SYS_RESOURCE"], held=NO_RESOURCE)


def test_held_capabilities_reads_the_real_process():
    with open("/proc/self/status") as f:
        eff = next(int(l.split()[1], 16) for l in f if l.startswith("CapEff"))
    assert ("CAP_SYS_RESOURCE" in HOST) == bool(eff >> 24 & 1)


def test_default_seccomp_profile_shape():
    p = seccomp.default_profile(caps.DEFAULT_CAPABILITIES, "x86_64")
    assert p["defaultAction"] == "SCMP_ACT_ERRNO" and "SCMP_ARCH_X86_64" in p["architectures"]
    allowed = {n for r in p["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args") for n in r["names"]}
    assert {"read", "write", "execve", "futex", "openat", "chroot"} <= allowed
    for blocked in ("keyctl", "add_key", "request_key", "mount", "reboot", "kexec_load", "unshare", "ptrace"):
        assert blocked not in allowed
    clone = next(r for r in p["syscalls"] if r["names"] == ["clone"])
    assert clone["args"][0]["op"] == "SCMP_CMP_MASKED_EQ" and clone["args"][0]["value"] & 0x10000000  # NEWUSER
    admin = seccomp.default_profile(caps.DEFAULT_CAPABILITIES + ["CAP_SYS_ADMIN"], "x86_64")
    allowed = {n for r in admin["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" for n in r["names"]}
    assert {"mount", "unshare", "setns"} <= allowed and "keyctl" not in allowed
    json.dumps(p)


def test_load_docker_profile(tmp_path):
    prof = {"defaultAction": "SCMP_ACT_ERRNO",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                         {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_PTRACE"]}},
                         {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}}]}
    f = tmp_path / "p.json"
    f.write_text(json.dumps(prof))
    out = seccomp.load_profile(str(f), caps.DEFAULT_CAPABILITIES, "x86_64")
    names = [n for r in out["syscalls"] for n in r["names"]]
    assert out["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert "ptrace" not in names and "arch_prctl" in names and "read" in names
    assert seccomp.load_profile("unconfined", []) is None
    with pytest.raises(InvalidOciConfig):
        seccomp.load_profile(str(tmp_path / "missing.json"), [])


def test_sysctls_only_namespaced():
    assert security.validate_sysctls({"net.ipv4.ip_forward": 1, "kernel.shmmax": "1"}) == \
        {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1"}
    for bad in ("kernel.hostname_x", "vm.swappiness", "kernel.panic"):
        with pytest.raises(InvalidOciConfig):
            security.validate_sysctls({bad: "1"})
    with pytest.raises(InvalidOciConfig, match="host network"):
        security.validate_sysctls({"net.core.somaxconn": "1"}, host_network=True)


def test_ulimits_against_the_real_host_hard_limit():
    assert security.parse_ulimit("nofile=1024:2048") == {"Name": "nofile", "Soft": 1024, "Hard": 2048}
    host_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    ok = security.rlimits([{"Name": "nofile", "Soft": 100, "Hard": 200}])
    assert ok == [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]
    if "CAP_SYS_RESOURCE" in HOST or host_hard == resource.RLIM_INFINITY:
        pytest.skip("this host grants CAP_SYS_RESOURCE or has no NOFILE hard limit")
    with pytest.raises(MissingPrivilege, match="CAP_SYS_RESOURCE") as e:
        security.rlimits([security.parse_ulimit(f"nofile={host_hard + 1}")])
    assert str(host_hard) in str(e.value) and e.value.http_status == 400


def test_oom_score_adj():
    assert security.oom_score_adj(500) == 500
    with pytest.raises(InvalidOciConfig):
        security.oom_score_adj(2000)
    with pytest.raises(MissingPrivilege, match="CAP_SYS_RESOURCE"):
        security.oom_score_adj(-500, held=NO_RESOURCE)


def test_device_parsing_and_real_stat():
    assert security.parse_device("/dev/null") == {"PathOnHost": "/dev/null", "PathInContainer": "/dev/null",
                                                  "CgroupPermissions": "rwm"}
    assert security.parse_device("/dev/null:/dev/mynull:r")["PathInContainer"] == "/dev/mynull"
    assert security.parse_device("/dev/null:rw")["CgroupPermissions"] == "rw"
    spec, rules = security.devices([security.parse_device("/dev/null:/dev/mynull:rw")])
    assert spec[0]["path"] == "/dev/mynull" and (spec[0]["type"], spec[0]["major"], spec[0]["minor"]) == ("c", 1, 3)
    assert rules == [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}]
    with pytest.raises(InvalidOciConfig):
        security.devices([security.parse_device("/etc/passwd")])
    with pytest.raises(InvalidOciConfig):
        security.parse_device("/dev/null:/dev/x:rwz")


def test_apply_security_default_and_privileged():
    spec = {}
    apply_security(spec, {"ReadonlyRootfs": True, "SecurityOpt": ["no-new-privileges"]})
    assert spec["root"]["readonly"] and spec["process"]["noNewPrivileges"]
    assert "/proc/kcore" in spec["linux"]["maskedPaths"] and "/proc/sys" in spec["linux"]["readonlyPaths"]
    assert spec["linux"]["resources"]["devices"][0] == {"allow": False, "type": "a", "access": "rwm"}
    if seccomp.supported():
        assert spec["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    priv = {}
    apply_security(priv, {"Privileged": True})
    assert priv["linux"]["maskedPaths"] == [] and "seccomp" not in priv["linux"]
    assert priv["process"]["capabilities"]["bounding"] == HOST
    assert any(d["path"] == "/dev/null" for d in priv["linux"]["devices"])
    with pytest.raises(InvalidOciConfig):
        apply_security({}, {"SecurityOpt": ["bogus=1"]})
