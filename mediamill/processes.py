"""Facts about other processes of this machine, for the pieces that track them by id."""

from __future__ import annotations

import os


def pid_running(pid: int) -> bool:
    """Whether a process with this id exists (another user's counts: it cannot be signalled)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
