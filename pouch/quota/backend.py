"""Which disk-quota backend a daemon uses, chosen once at start-up (`--quota-backend`).

- `prjquota`: project quota (QuotaManager) where the home's filesystem and kernel enforce it;
- `loop`: a sized ext4 image per container / volume on a loop device (LoopQuota), anywhere
  root can attach loop devices;
- `none`: `--disk-quota` and volume sizes are refused.

`auto` (the default) takes prjquota if it works, else loop, else none; the reason for the
choice is kept for `pouch info`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import InvalidQuotaSpec

BACKENDS = ("auto", "prjquota", "loop", "none")


@dataclass
class QuotaBackend:
    name: str            # prjquota | loop | none
    reason: str
    prjquota: object = None   # QuotaManager
    loop: object = None       # LoopQuota

    def info(self) -> dict:
        return {"Backend": self.name, "Detail": self.reason}


def choose(home: str, requested: str = "auto") -> QuotaBackend:
    """The backend for a daemon with home `home`; an explicit request the host cannot honour
    raises InvalidQuotaSpec (the daemon refuses to start rather than silently not enforcing)."""
    from .loopfs import LoopQuota, available
    from .manager import QuotaManager, quota_support
    requested = (requested or "auto").lower()
    if requested not in BACKENDS:
        raise InvalidQuotaSpec(f"invalid --quota-backend {requested!r}: one of {', '.join(BACKENDS)}")
    if requested == "none":
        return QuotaBackend("none", "disabled by --quota-backend=none")
    root = os.path.join(home, "quota")
    if requested in ("auto", "prjquota"):
        ok, why = quota_support(home)
        if ok:
            return QuotaBackend("prjquota", f"project quota on {why}",
                                prjquota=QuotaManager(os.path.join(root, "ids.json")))
        if requested == "prjquota":
            raise InvalidQuotaSpec(f"--quota-backend=prjquota: {why}")
        pq_why = why
    loop_ok, loop_why = available()
    if loop_ok:
        reason = loop_why if requested == "loop" else f"{loop_why} (no project quota: {pq_why})"
        return QuotaBackend("loop", reason, loop=LoopQuota(os.path.join(root, "loop")))
    if requested == "loop":
        raise InvalidQuotaSpec(f"--quota-backend=loop: {loop_why}")
    return QuotaBackend("none", f"no project quota ({pq_why}) and no loop devices ({loop_why})")
