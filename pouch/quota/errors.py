"""Typed errors of the disk-quota subsystem; `http_status` tells the API layer the code to answer."""


class QuotaError(Exception):
    """Base of every quota error (500: the host refused an operation it claimed to support)."""
    http_status = 500


class InvalidQuotaSpec(QuotaError):
    """400: a `--disk-quota` / `--quota-id` value could not be parsed or is out of range."""
    http_status = 400


class QuotaNotSupported(QuotaError):
    """400: the directory's filesystem cannot enforce project quota (wrong fs, option, or kernel)."""
    http_status = 400


class QuotaIdInUse(QuotaError):
    """409: an explicit `--quota-id` is already held by another owner."""
    http_status = 409
