"""Log drivers: where container output is kept (json-file, syslog, none, cri)."""
from __future__ import annotations

import os

from pouch.errtypes import InvalidArgument

DRIVERS = ("json-file", "syslog", "none", "cri")


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
    if driver == "cri":  # kubelet's format; the path comes from the CRI CreateContainer request
        from .crilog import CriLogger
        if not options.get("path", "").startswith("/"):
            raise InvalidArgument("the cri log driver needs an absolute path option")
        return CriLogger(options["path"], create=log_path != os.devnull)  # devnull: create validating
    raise InvalidArgument(f"log driver {driver!r} is not supported ({', '.join(DRIVERS)})")
