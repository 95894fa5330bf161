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


# PostgreSQL SQLSTATE classes a retry may cure: connection exceptions (08), transaction
# rollbacks such as serialization failures and deadlocks (40), insufficient resources such
# as too many connections (53), operator intervention such as a restarting server or a
# statement timeout (57); and lock_not_available (NOWAIT, lock_timeout).
_POSTGRES_TRANSIENT_CLASSES = ("08", "40", "53", "57")
_POSTGRES_TRANSIENT_STATES = ("55P03",)
# Why a server refuses a connection when the settings are wrong: unknown database or role,
# failed authentication, no pg_hba.conf rule, no CONNECT privilege.
_POSTGRES_CONFIGURATION_MESSAGES = (
    "does not exist",
    "authentication failed",
    "no password supplied",
    "no pg_hba.conf entry",
    "permission denied",
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
    # PostgreSQL: OperationalError also covers what no retry cures (a missing database, a
    # wrong password), so the SQLSTATE decides when there is one.
    state = getattr(error.orig, "sqlstate", None)
    if state is not None:
        return state[:2] in _POSTGRES_TRANSIENT_CLASSES or state in _POSTGRES_TRANSIENT_STATES
    # A connection the server refused carries no SQLSTATE, only its message.
    message = str(error.orig).lower()
    return not any(text in message for text in _POSTGRES_CONFIGURATION_MESSAGES)
