"""Disk quota: project quota on xfs and ext4 for container rootfs upper dirs and volumes.

Public API: QuotaManager (set_quota/get_usage/remove/check), quota_support, parse_disk_quota,
parse_quota_id, parse_size, and the typed errors.
"""
from .errors import InvalidQuotaSpec, QuotaError, QuotaIdInUse, QuotaNotSupported
from .manager import QuotaManager, quota_support
from .spec import QUOTA_ID_MIN, parse_disk_quota, parse_quota_id, parse_size

__all__ = ["QuotaManager", "quota_support", "parse_disk_quota", "parse_quota_id", "parse_size",
           "QUOTA_ID_MIN", "QuotaError", "InvalidQuotaSpec", "QuotaNotSupported", "QuotaIdInUse"]
