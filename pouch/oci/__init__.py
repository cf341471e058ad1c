"""OCI spec helpers: security defaults (caps, seccomp, masks, devices, rlimits) and resources.

The daemon's spec builder makes the base spec and calls apply_security / apply_resources;
update_cgroup / read_cgroup_values serve `pouch update` and tests.
"""
from .apply import apply_resources, apply_security
from .caps import DEFAULT_CAPABILITIES, held_capabilities
from .cgroups import cgroups_path, detect_driver, detect_mode
from .errors import CgroupNotFound, InvalidOciConfig, MissingPrivilege, OciError
from .resources import build as build_resources
from .resources import read_cgroup_values, update_cgroup, update_throttles
from .seccomp import default_profile, load_profile
from .security import parse_device, parse_security_opts, parse_ulimit

__all__ = ["apply_security", "apply_resources", "build_resources", "update_cgroup", "update_throttles", "read_cgroup_values",
           "cgroups_path", "detect_mode", "detect_driver", "DEFAULT_CAPABILITIES", "held_capabilities",
           "default_profile", "load_profile", "parse_device", "parse_security_opts", "parse_ulimit",
           "OciError", "InvalidOciConfig", "MissingPrivilege", "CgroupNotFound"]
