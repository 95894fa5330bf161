"""Errors raised by the catalog.

Callers catch these, never SQLAlchemy's or a driver's: database errors are mapped at the
catalog boundary with ``raise ... from e`` so the original stays on ``__cause__``.

::

    CatalogError                  anything the catalog raises on purpose
    ├── NotFound                  the row asked for does not exist (or is not visible)
    ├── CatalogNotMigrated        the database schema is behind the code: run `mediamill db upgrade`
    └── TransientCatalogError     connection dropped, database locked, serialization failure:
                                  the same call may succeed if retried with backoff

Every class keeps the plain ``Exception(message)`` constructor, so instances survive the
pickling Prefect does when a task fails in another process.
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

__all__ = [
    "CatalogError",
    "CatalogNotMigrated",
    "NotFound",
    "TransientCatalogError",
    "is_transient",
]


class CatalogError(Exception):
    """Base class of every error the catalog raises on purpose."""


class NotFound(CatalogError):  # noqa: N818  (reads better at the raise site than NotFoundError)
    """The requested row does not exist."""


class CatalogNotMigrated(CatalogError):  # noqa: N818
    """The database schema is behind the code; ``mediamill db upgrade`` brings it to head."""

    def __init__(
        self, message: str = "the catalog schema is not up to date; run `mediamill db upgrade`"
    ) -> None:
        super().__init__(message)


class TransientCatalogError(CatalogError):
    """A failure that retrying the same call may cure: callers retry with backoff."""


# SQLite reports contention as OperationalError with one of these messages. The other
# OperationalErrors it raises ("no such table", "disk I/O error", ...) will not go away on
# retry, so SQLite is matched by message rather than by class.
_SQLITE_TRANSIENT_MESSAGES = (
    "database is locked",
    "database table is locked",
    "database schema is locked",
    "database is busy",
)


def is_transient(error: BaseException) -> bool:
    """Whether a SQLAlchemy error is worth retrying (maps to `TransientCatalogError`)."""
    if isinstance(error, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        # Pool checkout timed out, or the pool noticed a dead connection.
        return True
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    if not isinstance(error, sa_exc.OperationalError):
        return False
    if type(error.orig).__module__.startswith("sqlite3"):
        message = str(error.orig).lower()
        return any(text in message for text in _SQLITE_TRANSIENT_MESSAGES)
    # PostgreSQL drivers raise OperationalError for lost connections, serialization
    # failures, deadlocks and lock timeouts: all cured by running the transaction again.
    return True
