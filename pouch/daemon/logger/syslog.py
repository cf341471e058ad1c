"""The syslog log driver: each line a container prints goes to a syslog server (RFC 3164 lines,
or RFC 5424 with ``syslog-format``).

Options (Docker's names): ``syslog-address`` (``unix://`` or ``unixgram://`` path, ``udp://`` or
``tcp://`` host:port; default ``unixgram:///dev/log``), ``syslog-facility`` (default ``daemon``),
``tag`` (default the container's short id), ``syslog-format`` (rfc3164, rfc5424, rfc5424micro).  stdout lines are sent at severity info, stderr at
err.  Written by hand rather than with logging.handlers.SysLogHandler, which would need a
LogRecord per line and cannot send the tag and timestamp fields Docker's driver sends.
"""
from __future__ import annotations

import os
import socket
import time

from pouch.errtypes import InvalidArgument

FACILITIES = {name: code for code, name in enumerate(
    ["kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
     "ftp", "ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3",
     "local4", "local5", "local6", "local7"])}
SEVERITY = {"stdout": 6, "stderr": 3}  # info, err
OPTIONS = {"syslog-address", "syslog-facility", "syslog-format", "tag", "labels", "env"}
FORMATS = ("rfc3164", "rfc5424", "rfc5424micro")


def parse_address(addr: str) -> tuple[int, int, object]:
    """-> (family, socket type, address) for a syslog-address option."""
    if not addr:
        return socket.AF_UNIX, socket.SOCK_DGRAM, "/dev/log"
    scheme, sep, rest = addr.partition("://")
    if not sep or not rest:
        raise InvalidArgument(f"invalid syslog-address {addr!r}: want unix:///path, unixgram:///path, "
                              f"udp://host:port or tcp://host:port")
    if scheme in ("unix", "unixgram"):
        return socket.AF_UNIX, socket.SOCK_DGRAM if scheme == "unixgram" else socket.SOCK_STREAM, rest
    if scheme in ("udp", "tcp"):
        host, _, port = rest.rpartition(":")
        if not host or not port.isdigit():
            raise InvalidArgument(f"invalid syslog-address {addr!r}: want {scheme}://host:port")
        return socket.AF_INET, socket.SOCK_DGRAM if scheme == "udp" else socket.SOCK_STREAM, (host, int(port))
    raise InvalidArgument(f"unsupported syslog-address scheme {scheme!r}")


class SyslogLogger:
    def __init__(self, container_id: str, opts: dict[str, str] | None = None) -> None:
        opts = opts or {}
        unknown = set(opts) - OPTIONS
        if unknown:
            raise InvalidArgument(f"unknown log opt '{sorted(unknown)[0]}' for syslog log driver")
        facility = opts.get("syslog-facility", "daemon")
        if facility not in FACILITIES:
            raise InvalidArgument(f"invalid syslog-facility {facility!r}")
        self.facility = FACILITIES[facility]
        self.format = opts.get("syslog-format") or "rfc3164"
        if self.format not in FORMATS:
            raise InvalidArgument(f"invalid syslog-format {self.format!r}: want {', '.join(FORMATS)}")
        self.family, self.type, self.address = parse_address(opts.get("syslog-address", ""))
        self.tag = opts.get("tag") or container_id[:12]
        self.hostname = os.uname().nodename
        self._sock: socket.socket | None = None
        self._partial: dict[str, bytes] = {}

    def _send(self, stream: str, line: bytes) -> None:
        pri = self.facility * 8 + SEVERITY[stream]
        msg = self.header(pri, time.time()).encode() + line
        if self.type == socket.SOCK_STREAM:
            msg += b"\n"
        for attempt in (1, 2):
            try:
                if self._sock is None:
                    self._sock = socket.socket(self.family, self.type)
                    self._sock.connect(self.address)
                self._sock.send(msg) if self.type == socket.SOCK_DGRAM else self._sock.sendall(msg)
                return
            except OSError:
                self._close_socket()
                if attempt == 2:
                    return  # the syslog server is away: the line is dropped, as Docker's driver does

    def header(self, pri: int, now: float) -> str:
        """RFC 3164 (BSD) or RFC 5424 header, as Docker's syslog-format makes them (5424: the tag is
        APP-NAME and MSGID, no structured data; rfc5424micro: microsecond timestamps)."""
        if self.format == "rfc3164":
            return f"<{pri}>{time.strftime('%b %d %H:%M:%S', time.localtime(now))} {self.hostname} " \
                   f"{self.tag}[{os.getpid()}]: "
        lt = time.localtime(now)
        off = time.strftime("%z", lt)
        off = "Z" if off in ("+0000", "-0000") else f"{off[:3]}:{off[3:]}"
        frac = f".{int(now % 1 * 1_000_000):06d}" if self.format == "rfc5424micro" else ""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", lt) + frac + off
        return f"<{pri}>1 {stamp} {self.hostname} {self.tag} {os.getpid()} {self.tag} - "

    def write(self, stream: str, data: bytes) -> None:
        buf = self._partial.get(stream, b"") + data
        *lines, rest = buf.split(b"\n")
        self._partial[stream] = rest
        for line in lines:
            self._send(stream, line)

    def flush(self) -> None:
        for stream, rest in list(self._partial.items()):
            if rest:
                self._partial[stream] = b""
                self._send(stream, rest)

    def _close_socket(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        self.flush()
        self._close_socket()
