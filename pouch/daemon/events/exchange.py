"""The event exchange: managers publish, ``/events`` subscribers receive.

Events are kept in a bounded ring so a subscriber can replay by
``since``/``until``; filters follow Docker's (type, event/action, container,
image, label).  Publishing never blocks a manager: a slow subscriber whose
queue is full loses events rather than stalling the daemon.
"""
from __future__ import annotations

import asyncio
import collections
import time
from typing import Any


class EventExchange:
    def __init__(self, keep: int = 1024) -> None:
        self._ring: collections.deque[dict] = collections.deque(maxlen=keep)
        self._subs: set[asyncio.Queue] = set()

    def publish(self, typ: str, action: str, actor_id: str, attributes: dict[str, str] | None = None) -> dict:
        now = time.time_ns()
        attrs = dict(attributes or {})
        ev: dict[str, Any] = {
            "Type": typ, "Action": action,
            "Actor": {"ID": actor_id, "Attributes": attrs},
            "scope": "local", "time": now // 1_000_000_000, "timeNano": now,
        }
        if typ == "container":  # legacy fields docker clients still read
            ev.update(status=action, id=actor_id, **({"from": attrs["image"]} if "image" in attrs else {}))
        self._ring.append(ev)
        for q in list(self._subs):
            try:
                q.put_nowait(ev)
            except asyncio.QueueFull:
                pass
        return ev

    def history(self, since_ns: int | None, until_ns: int | None) -> list[dict]:
        return [e for e in self._ring
                if (since_ns is None or e["timeNano"] >= since_ns)
                and (until_ns is None or e["timeNano"] <= until_ns)]

    def subscribe(self) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(maxsize=4096)
        self._subs.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        self._subs.discard(q)


def matches(ev: dict, filters: dict[str, list[str]]) -> bool:
    """Docker's event filters: every given key must match one of its values."""
    attrs = ev["Actor"]["Attributes"]
    for key, values in filters.items():
        if not values:
            continue
        if key == "type":
            ok = ev["Type"] in values
        elif key in ("event", "action"):
            ok = ev["Action"] in values or ev["Action"].split(":")[0] in values
        elif key in ("container", "image", "volume", "network"):
            ok = ev["Type"] == key and (ev["Actor"]["ID"] in values or attrs.get("name") in values
                                        or any(ev["Actor"]["ID"].startswith(v) for v in values)) \
                or (key == "image" and attrs.get("image") in values)
        elif key == "label":
            ok = any((attrs.get(v.split("=", 1)[0]) == v.split("=", 1)[1]) if "=" in v
                     else v in attrs for v in values)
        else:
            ok = True
        if not ok:
            return False
    return True
