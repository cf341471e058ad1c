"""Log drivers: where container output is kept (json-file, syslog, none)."""
from __future__ import annotations

from pouch.errtypes import InvalidArgument

DRIVERS = ("json-file", "syslog", "none")


def make_logger(driver: str, options: dict[str, str], container_id: str, log_path: str,
                attrs: dict[str, str] | None = None):
    """The logger a container's output goes to (None for the `none` driver).  Raises
    InvalidArgument for an unknown driver or option, so create can validate with it."""
    if driver == "json-file":
        from .jsonfile import JsonFileLogger
        return JsonFileLogger(log_path, options, attrs)
    if driver == "syslog":
        from .syslog import SyslogLogger
        return SyslogLogger(container_id, options)
    if driver == "none":
        return None
    raise InvalidArgument(f"log driver {driver!r} is not supported ({', '.join(DRIVERS)})")
