"""Named crash points for fault tests: ``POUCH_FAILPOINT=<name>`` in pouchd's environment makes
pouchd SIGKILL itself when it reaches ``crash("<name>")``, so a test can kill it at an exact step
of a multi-step operation (an upgrade between committing the old layer aside and preparing the
new one, say) and check what the next pouchd makes of it.  Unset, a point costs one dict lookup.

Points in use: ``upgrade-before-commit``, ``upgrade-after-commit``, ``upgrade-before-start``,
``start-task-created`` (the task exists, its process has not been started), ``quota-after-mkfs``
(a loop quota's image is made, not yet mounted).
"""
from __future__ import annotations

import os
import signal

_ARMED = os.environ.get("POUCH_FAILPOINT", "")


def crash(name: str) -> None:
    """SIGKILL this process if the environment armed this point (no cleanup, as a real crash)."""
    if _ARMED and _ARMED == name:
        os.kill(os.getpid(), signal.SIGKILL)
