"""SQLite writers that take turns instead of polling for the lock.

SQLite has one writer at a time, and its busy handler makes every other one sleep and try
again, up to 100 ms a try: under a burst of short writes from several processes, a writer
can sleep for hundreds of milliseconds while the lock is free. ``WriterTurns`` queues them
on locks that wake the next waiter as soon as the holder lets go: a thread lock within the
process, then an ``flock`` on a file beside the database, shared with the other processes
that use it (the API's worker processes). Processes that do not take turns (a flow run, the
CLI) still meet the busy handler, as before.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from types import TracebackType

try:
    import fcntl
except ImportError:  # Windows has no fcntl: the thread lock alone then
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import Engine

logger = logging.getLogger(__name__)
# Beside the database, like SQLite's own "-wal" and "-shm" files.
LOCK_FILE_SUFFIX = "-writers"


class WriterTurns:
    """A reentrant lock for a database's writers: this process's threads, then processes.

    ``path`` is the lock file shared between processes; None keeps the turns in-process.
    """

    def __init__(self, path: Path | None) -> None:
        self._threads = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        if path is not None and fcntl is not None:
            try:
                self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as error:
                logger.warning("writers take turns in-process only: %s: %s", path, error)

    @classmethod
    def for_engine(cls, engine: Engine) -> WriterTurns | None:
        """Turns for a SQLite file catalog's writers; None where the database needs none."""
        if engine.dialect.name != "sqlite":
            return None  # PostgreSQL queues its writers itself, row by row
        database = engine.url.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            return cls(None)  # no plain file beside which to keep the lock
        return cls(Path(f"{database}{LOCK_FILE_SUFFIX}"))

    def __enter__(self) -> WriterTurns:
        self._threads.acquire()
        if self._depth == 0 and self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._threads.release()
                raise
        self._depth += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def close(self) -> None:
        """Let go of the lock file (closing it also ends any turn this process held)."""
        with self._threads:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
