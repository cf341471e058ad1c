"""Per-blob progress events that the daemon turns into Docker-style JSON progress messages."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable


class State(str, enum.Enum):
    WAITING = "Waiting"
    DOWNLOADING = "Downloading"
    RETRYING = "Retrying"
    VERIFYING = "Verifying Checksum"
    DONE = "Download complete"
    EXISTS = "Already exists"
    MOUNTED = "Mounted from"
    PUSHING = "Pushing"
    PUSHED = "Pushed"


@dataclass(frozen=True)
class Progress:
    """One update: which blob, what is happening, bytes done of total."""

    digest: str
    state: State
    current: int = 0
    total: int = 0

    @property
    def short_id(self) -> str:
        """The 12-hex id Docker prints for a layer."""
        return self.digest.partition(":")[2][:12]


ProgressFn = Callable[[Progress], None]


def noop(_: Progress) -> None:
    return None
