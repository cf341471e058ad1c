"""Fill a base OCI spec (from the daemon's builder) with security and resource settings from a HostConfig."""
from . import caps as capmod
from . import resources, seccomp, security


def apply_security(spec: dict, hc: dict, host_network: bool = False, held=None) -> list:
    """Set process caps/rlimits/noNewPrivileges/oomScoreAdj, root.readonly, linux masks/sysctl/devices/seccomp.

    Returns warnings. Raises InvalidOciConfig / MissingPrivilege (400) on bad input.
    """
    held = capmod.held_capabilities() if held is None else held
    privileged = bool(hc.get("Privileged"))
    proc, linux = spec.setdefault("process", {}), spec.setdefault("linux", {})
    opts = security.parse_security_opts(hc.get("SecurityOpt"))
    caps = capmod.compute(hc.get("CapAdd"), hc.get("CapDrop"), privileged, held)
    proc["capabilities"] = capmod.oci_capabilities(caps)
    rl = security.rlimits(hc.get("Ulimits"), held)
    if rl:
        proc["rlimits"] = rl
    if opts["no_new_privileges"]:
        proc["noNewPrivileges"] = True
    adj = security.oom_score_adj(hc.get("OomScoreAdj") or None, held)
    if adj is not None:
        proc["oomScoreAdj"] = adj
    if hc.get("ReadonlyRootfs"):
        spec.setdefault("root", {})["readonly"] = True
    # Moby's HostConfig.MaskedPaths / ReadonlyPaths (as a CRI client gives them) replace the defaults
    masked, ro_paths = hc.get("MaskedPaths"), hc.get("ReadonlyPaths")
    linux["maskedPaths"] = list(masked) if masked is not None else security.masked_paths(privileged)
    linux["readonlyPaths"] = list(ro_paths) if ro_paths is not None else security.readonly_paths(privileged)
    if hc.get("GroupAdd"):
        user = proc.setdefault("user", {})
        extra = [int(g) for g in hc["GroupAdd"] if str(g).isdigit()]
        user["additionalGids"] = sorted(set(user.get("additionalGids") or []) | set(extra))
    sysctls = security.validate_sysctls(hc.get("Sysctls"), host_network)
    if sysctls:
        linux["sysctl"] = sysctls
    res = linux.setdefault("resources", {})
    if privileged:
        devs, rules = security.privileged_devices()
    else:
        devs, rules = security.devices(hc.get("Devices"))
        rules = security.default_device_rules() + rules
    linux["devices"] = linux.get("devices", []) + devs
    res["devices"] = rules
    if privileged or opts["seccomp"] == "unconfined" or not seccomp.supported():
        linux.pop("seccomp", None)
    elif opts["seccomp"]:
        linux["seccomp"] = seccomp.load_profile(opts["seccomp"], caps)
    else:
        linux["seccomp"] = seccomp.default_profile(caps)
    return []


def apply_resources(spec: dict, hc: dict) -> list:
    """Merge validated HostConfig resources into spec.linux.resources; returns warnings."""
    built, warnings = resources.build(hc)
    spec.setdefault("linux", {}).setdefault("resources", {}).update(built)
    return warnings
