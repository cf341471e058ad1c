"""Typed errors of the disk-quota subsystem (on pouch.errtypes: the API maps them by class)."""
from __future__ import annotations

from pouch.errtypes import Conflict, InvalidArgument, SystemError_


class QuotaError(SystemError_):
    """Base of every quota error (500: the host refused an operation it claimed to support)."""


class InvalidQuotaSpec(InvalidArgument, QuotaError):
    """400: a `--disk-quota` / `--quota-id` value could not be parsed or is out of range."""


class QuotaNotSupported(InvalidArgument, QuotaError):
    """400: the directory's filesystem cannot enforce project quota (wrong fs, option, or kernel)."""


class QuotaIdInUse(Conflict, QuotaError):
    """409: an explicit `--quota-id` is already held by another owner."""
