"""Pending streaming requests behind single-use tokens that expire (kubelet's request cache).

GetExec/GetAttach/GetPortForward store their request here and hand out a URL with the token;
the first HTTP request presenting the token takes the request out; an unknown, used or expired
token finds nothing. The cache holds at most ``max_in_flight`` requests.
"""
from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from typing import Callable

from pouch.errtypes import Unavailable

DEFAULT_TTL = 60.0
DEFAULT_MAX_IN_FLIGHT = 1000


class RequestCache:
    def __init__(self, ttl: float = DEFAULT_TTL, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_in_flight = max_in_flight
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, object]] = OrderedDict()

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    def _expire(self) -> None:
        now = self._clock()
        while self._entries:
            token, (deadline, _) = next(iter(self._entries.items()))
            if deadline > now:
                break
            del self._entries[token]

    def insert(self, request: object) -> str:
        self._expire()
        if len(self._entries) >= self.max_in_flight:
            raise Unavailable("maximum number of in-flight streaming requests exceeded")
        token = secrets.token_urlsafe(8)
        while token in self._entries:
            token = secrets.token_urlsafe(8)
        self._entries[token] = (self._clock() + self.ttl, request)
        return token

    def consume(self, token: str) -> object | None:
        """The request behind ``token`` (removing it), or None if unknown, used or expired."""
        entry = self._entries.pop(token, None)
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]
