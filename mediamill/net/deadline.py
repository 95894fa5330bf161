"""One wall-clock budget shared by every step of a download, so no step can stretch it."""

from __future__ import annotations

import time
from collections.abc import Callable

from mediamill.net.errors import TransientFetchError


class Deadline:
    """Counts down from a fixed budget; each blocking call asks it how long it may wait."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + seconds
        self._seconds = seconds

    def remaining(self) -> float:
        """Seconds left, raising once the budget is spent so a slow peer cannot extend it."""
        left = self._end - self._clock()
        if left <= 0:
            raise TransientFetchError("timeout", f"download exceeded {self._seconds:g} s")
        return left
