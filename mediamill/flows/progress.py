"""Progress of a run, for the CLI's bar and the Prefect UI's progress artifact."""

from __future__ import annotations

import threading
from collections.abc import Callable
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact

Listener = Callable[[int, int], None]
ARTIFACT_STEP = 5  # percent between updates of the UI's progress artifact
_listener: Listener | None = None


def set_listener(listener: Listener | None) -> None:
    """Let an in-process caller (the CLI) follow runs: called with (done, total)."""
    global _listener
    _listener = listener


class ProgressTracker:
    """Counts finished assets across the run's task threads."""

    def __init__(self, total: int, key: str) -> None:
        self.total = total
        self.done = 0
        self._lock = threading.Lock()
        self._artifact: UUID | None = None
        self._reported_percent = 0
        if total:
            artifact = create_progress_artifact(0.0, key=key, description="assets finished")
            self._artifact = artifact if isinstance(artifact, UUID) else None

    def advance(self, count: int = 1) -> None:
        with self._lock:
            self.done = min(self.total, self.done + count)
            done = self.done
            percent = 100 * done // self.total if self.total else 100
            # Coarse steps: an API call per asset would cost the server more than it shows.
            step_reached = percent >= self._reported_percent + ARTIFACT_STEP or percent == 100
            report = step_reached and percent > self._reported_percent
            if report:
                self._reported_percent = percent
        if report and self._artifact is not None:
            update_progress_artifact(self._artifact, float(percent))
        if _listener is not None:
            _listener(done, self.total)
