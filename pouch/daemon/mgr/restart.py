"""Restart policies: no, always, on-failure[:N], unless-stopped (Docker's rules)."""
from __future__ import annotations

from pouch.errtypes import InvalidArgument

POLICIES = ("", "no", "always", "on-failure", "unless-stopped")
MAX_DELAY = 60.0


def validate(policy: dict | None, auto_remove: bool) -> dict:
    policy = dict(policy or {})
    name = policy.get("Name") or ""
    if name not in POLICIES:
        raise InvalidArgument(f"invalid restart policy '{name}'")
    count = int(policy.get("MaximumRetryCount") or 0)
    if count < 0:
        raise InvalidArgument("maximum retry count cannot be negative")
    if count and name != "on-failure":
        raise InvalidArgument(f"maximum retry count cannot be used with restart policy '{name}'")
    if auto_remove and name not in ("", "no"):
        raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
    return {"Name": name, "MaximumRetryCount": count}


def should_restart(policy: dict, exit_code: int, restart_count: int, manual_stop: bool) -> bool:
    name = policy.get("Name") or "no"
    if manual_stop or name == "no":
        return False
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        limit = int(policy.get("MaximumRetryCount") or 0)
        return exit_code != 0 and (limit == 0 or restart_count < limit)
    return False


def backoff(restart_count: int, ran_seconds: float) -> float:
    """100 ms doubling per consecutive quick failure, capped at a minute."""
    if ran_seconds >= 10:
        return 0.1
    return min(0.1 * (2 ** restart_count), MAX_DELAY)
