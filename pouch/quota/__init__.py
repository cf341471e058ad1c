"""Disk quota for container writable layers and volumes: project quota on xfs and ext4
(QuotaManager) where the kernel has it, else a sized loop-mounted filesystem per container or
volume (loopfs.LoopQuota); backend.choose picks one per daemon.

Public API: QuotaManager (set_quota/get_usage/remove/check), quota_support, parse_disk_quota,
parse_quota_id, parse_size, and the typed errors; backend.choose / QuotaBackend.
"""
from .errors import InvalidQuotaSpec, QuotaError, QuotaIdInUse, QuotaNotSupported
from .manager import QuotaManager, quota_support
from .spec import QUOTA_ID_MIN, parse_disk_quota, parse_quota_id, parse_size

__all__ = ["QuotaManager", "quota_support", "parse_disk_quota", "parse_quota_id", "parse_size",
           "QUOTA_ID_MIN", "QuotaError", "InvalidQuotaSpec", "QuotaNotSupported", "QuotaIdInUse"]
