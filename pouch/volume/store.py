"""Volume metadata on disk: one JSON file per volume in <root>/_meta/ (atomic rename writes).

Volume names start with an alphanumeric character, so `_meta` can never be a volume's dir.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from pouch.network import atomic


@dataclass
class Volume:
    name: str
    driver: str = "local"
    mountpoint: str = ""
    created: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    size: int = 0                    # bytes; 0 = no limit (from -o size=)
    anonymous: bool = False
    refs: list[str] = field(default_factory=list)   # container ids using it

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Volume":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class VolumeStore:
    def __init__(self, root: str) -> None:
        self.dir = os.path.join(root, "_meta")
        os.makedirs(self.dir, exist_ok=True)

    def _path(self, name: str) -> str:
        return os.path.join(self.dir, name + ".json")

    def all(self) -> list[Volume]:
        out = []
        for fn in sorted(os.listdir(self.dir)):
            if fn.endswith(".json") and not fn.startswith("."):
                d = atomic.read_json(os.path.join(self.dir, fn))
                if d:
                    out.append(Volume.from_dict(d))
        return out

    def put(self, v: Volume) -> None:
        atomic.write_json(self._path(v.name), v.to_dict())

    def delete(self, name: str) -> None:
        atomic.remove(self._path(name))
