"""Quota id allocation: ids from 16777216 up, persisted in a JSON file, never handing out a live id."""
import json
import os
import threading

from .errors import InvalidQuotaSpec, QuotaIdInUse
from .spec import QUOTA_ID_MAX, QUOTA_ID_MIN


class QuotaIdAllocator:
    """Maps quota id -> owner (a container id, a volume name) in `state_file`.

    `allocate(owner)` returns the lowest free id >= QUOTA_ID_MIN; `allocate(owner, qid)` honours
    an explicit `--quota-id` (the same owner may ask again; another owner gets QuotaIdInUse).
    """

    def __init__(self, state_file: str):
        self.state_file = state_file
        self._lock = threading.Lock()
        self._ids = self._load()

    def _load(self) -> dict:
        try:
            with open(self.state_file) as f:
                return {int(k): v for k, v in json.load(f).items()}
        except FileNotFoundError:
            return {}

    def _save(self) -> None:
        os.makedirs(os.path.dirname(self.state_file) or ".", exist_ok=True)
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({str(k): v for k, v in sorted(self._ids.items())}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_file)

    def allocate(self, owner: str, qid: int | None = None) -> int:
        with self._lock:
            if qid is not None:
                if not 1 <= qid <= QUOTA_ID_MAX:
                    raise InvalidQuotaSpec(f"invalid quota id {qid}")
                holder = self._ids.get(qid)
                if holder is not None and holder != owner:
                    raise QuotaIdInUse(f"quota id {qid} is in use by {holder}")
            else:
                qid = QUOTA_ID_MIN
                while qid in self._ids:
                    qid += 1
                if qid > QUOTA_ID_MAX:
                    raise QuotaIdInUse("no free quota id left")
            self._ids[qid] = owner
            self._save()
            return qid

    def release(self, qid: int) -> None:
        with self._lock:
            if self._ids.pop(qid, None) is not None:
                self._save()

    def owner(self, qid: int) -> str | None:
        return self._ids.get(qid)

    def ids_of(self, owner: str) -> list:
        return sorted(k for k, v in self._ids.items() if v == owner)
