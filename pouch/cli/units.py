"""Parse and print sizes and durations the way the docker/pouch CLIs do.

`re` is imported inside the parsers only: `ps`/`images` need just the printers, and
importing `re` costs ~3 ms of their start-up.
"""
import time

from pouch.api.humanize import human_duration  # noqa: F401  (shared with the daemon)

_MULT = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(text):
    """'200m' -> 209715200 (binary units, like docker's RAMInBytes). Raises ValueError."""
    import re
    m = re.match(r"^(\d+(?:\.\d+)?)\s*([kmgtpb]?)(i?b?)$", str(text).strip(), re.I)
    if not m:
        raise ValueError("invalid size: %r" % text)
    return int(float(m.group(1)) * _MULT[m.group(2).lower()])


def parse_duration(text):
    """Go duration ('10s', '1m30s', '500ms', '2h') -> seconds (float). A bare number is seconds."""
    import re
    text = str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    total, pos = 0.0, 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError("invalid duration: %r" % text)
    return total


def parse_timestamp(text, now=None):
    """--since/--until value -> unix seconds string: accepts unix time, RFC3339 or a duration ago."""
    import re
    text = str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return text
    try:
        ago = parse_duration(text)
        return "%d" % int((now or time.time()) - ago)
    except ValueError:
        pass
    from datetime import datetime
    # keep the fraction (up to nanoseconds) exactly: datetime stops at microseconds
    m = re.fullmatch(r"([^.]+?)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?", text)
    try:
        if not m:
            raise ValueError(text)
        stamp = datetime.fromisoformat(m.group(1) + (m.group(3) or "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("invalid time %r: use a unix timestamp, RFC3339 or a duration like 10m" % text)
    frac = (m.group(2) or "")[:9].ljust(9, "0")
    return "%d.%s" % (int(stamp.timestamp()), frac)




def human_size(size):
    """Bytes -> '1.15 MB' (decimal units as in `pouch images`)."""
    size = float(size or 0)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return ("%.0f %s" if unit == "B" else "%.2f %s") % (size, unit)
        size /= 1000.0


def human_bytes_binary(size):
    """Bytes -> '1.5MiB' (binary units, for stats)."""
    size = float(size or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return "%.4g%s" % (size, unit)
        size /= 1024.0
