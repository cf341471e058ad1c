"""Parsing of `--disk-quota` and `--quota-id` values into {container path: bytes} and an id."""
import re

from .errors import InvalidQuotaSpec

QUOTA_ID_MIN = 16777216          # Pouch allocates automatic ids from here up
QUOTA_ID_MAX = 2 ** 32 - 2       # project ids are u32; 2**32-1 is (uint)-1 in the kernel

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4, "p": 1024 ** 5}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'10g', '512m', '1.5G', '4096' -> bytes (binary units, as Pouch and Docker read them)."""
    m = _SIZE_RE.match(str(text))
    if not m:
        raise InvalidQuotaSpec(f"invalid size {text!r}: expected a number with an optional unit k, m, g, t")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if value <= 0:
        raise InvalidQuotaSpec(f"invalid size {text!r}: must be greater than zero")
    return int(value)


def parse_disk_quota(values) -> dict:
    """Repeated `--disk-quota` values -> {path: bytes}; a bare size applies to "/".

    Accepts `10g`, `/data=5g`, and `/data:5g` (Pouch's older form). A path given twice is an error.
    """
    if isinstance(values, str):
        values = [values]
    result = {}
    for raw in values or []:
        raw = raw.strip()
        if not raw:
            continue
        if "=" in raw:
            path, size = raw.rsplit("=", 1)
        elif ":" in raw:
            path, size = raw.rsplit(":", 1)
        else:
            path, size = "/", raw
        path = path.strip() or "/"
        if not path.startswith("/"):
            raise InvalidQuotaSpec(f"invalid disk quota {raw!r}: path {path!r} must be absolute")
        if len(path) > 1:
            path = path.rstrip("/")
        if path in result:
            raise InvalidQuotaSpec(f"invalid disk quota {raw!r}: {path} is given more than once")
        result[path] = parse_size(size)
    return result


def parse_quota_id(value) -> int | None:
    """`--quota-id` -> int or None. '' / 0 / None mean 'allocate one'; -1 is refused."""
    if value in (None, "", 0, "0"):
        return None
    try:
        qid = int(value)
    except (TypeError, ValueError):
        raise InvalidQuotaSpec(f"invalid quota id {value!r}: not an integer") from None
    if qid < 1 or qid > QUOTA_ID_MAX:
        raise InvalidQuotaSpec(f"invalid quota id {qid}: must be between 1 and {QUOTA_ID_MAX}")
    return qid
