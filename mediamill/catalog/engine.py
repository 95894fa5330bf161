"""Engine and session factories for the catalog.

Built at the edges (a CLI command, an API request, a flow's entry) from settings and handed
down; nothing here runs at import time.
"""

from __future__ import annotations

import select
import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from mediamill.catalog.json_codec import decode_json

__all__ = [
    "BEGIN_IMMEDIATE",
    "POSTGRES_SCHEMES",
    "SQLITE_BUSY_TIMEOUT_MS",
    "begin_immediate",
    "make_engine",
    "make_session_factory",
    "normalize_url",
]

# URL schemes of PostgreSQL: SQLAlchemy's own, and the short one platforms hand out.
POSTGRES_SCHEMES = ("postgresql", "postgres")

# How long a SQLite connection waits for another writer's lock before giving up with
# "database is locked". Writes are short; a long wait beats failing a task for contention.
SQLITE_BUSY_TIMEOUT_MS = 30_000
# How often a connection that found the database locked retries switching it to WAL.
WAL_SWITCH_RETRY_SECONDS = 0.01

# Execution option read by the SQLite "begin" hook: which BEGIN to emit.
_SQLITE_BEGIN = "mediamill_sqlite_begin"

# Execution options that open a transaction holding the write lock from its start on
# SQLite (see `begin_immediate`); ignored by other backends.
BEGIN_IMMEDIATE: dict[str, str] = {_SQLITE_BEGIN: "BEGIN IMMEDIATE"}

# A pooled PostgreSQL connection idle for longer than this is pinged before it is handed
# out. Proxies and firewalls can drop a connection silently after minutes of quiet; one
# back in use within seconds is live unless the server said otherwise (see
# `ping_after_idle`), and pinging it would cost every checkout a round trip.
PING_AFTER_IDLE_SECONDS = 5.0
# Where the pool keeps a connection's last check-in (`ConnectionPoolEntry.info`, which the
# pool clears when it replaces the connection).
_CHECKED_IN_AT = "mediamill_checked_in_at"


def normalize_url(url: str | URL) -> URL:
    """Parse a catalog URL, choosing psycopg 3 for a bare ``postgresql://``.

    SQLAlchemy would pick psycopg2 for a bare ``postgresql://``; mediamill supports psycopg
    (3) only, so settings may keep the driver-free URL that other tools understand. The
    ``postgres://`` spelling (Heroku, many PaaS) is read as ``postgresql://``: SQLAlchemy
    no longer knows it, and a platform that sets it leaves no say in the matter.
    """
    parsed = make_url(url)
    backend, _, driver = parsed.drivername.partition("+")
    if backend in POSTGRES_SCHEMES:
        parsed = parsed.set(drivername=f"postgresql+{driver or 'psycopg'}")
    return parsed


def make_engine(url: str | URL, *, echo: bool = False) -> Engine:
    """Create the catalog engine for ``url`` (SQLite file or PostgreSQL)."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _make_sqlite_engine(parsed, echo=echo)
    engine = sa.create_engine(
        parsed,
        echo=echo,
        # Servers, proxies and PgBouncer drop idle connections: a connection idle for a
        # while is checked before use (below), and all are recycled before typical idle
        # timeouts, rather than failing the next statement.
        pool_recycle=1800,
        pool_size=5,
        max_overflow=10,
        pool_timeout=30,
        json_deserializer=decode_json,
    )
    ping_after_idle(engine, PING_AFTER_IDLE_SECONDS)
    return engine


def ping_after_idle(engine: Engine, idle_seconds: float) -> None:
    """Check a pooled connection at checkout without a round trip when it was just in use.

    ``pool_pre_ping`` pings at every checkout: a webhook's acceptance checks out up to four
    times. Here a connection is pinged only if it sat idle for ``idle_seconds`` or the
    server sent it something while idle: a server that ends a backend (a restart, a
    failover, ``pg_terminate_backend``) or a proxy that closes it says so, and that wait in
    the socket costs one poll to see. A failed ping raises DisconnectionError, which makes
    the pool discard the connection and check out another (SQLAlchemy's documented custom
    pessimistic disconnect handling).
    """

    def checked_in(_dbapi: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    def checked_out(dbapi: DBAPIConnection, record: ConnectionPoolEntry, _proxy: Any) -> None:
        last = record.info.pop(_CHECKED_IN_AT, None)
        if last is None:
            return  # connected just now
        quiet = not _server_spoke(dbapi)
        if quiet and time.monotonic() - last < idle_seconds:
            return
        try:
            alive = engine.dialect.do_ping(dbapi)
        except Exception as error:
            raise sa.exc.DisconnectionError(f"pooled connection is gone: {error}") from error
        if not alive:
            raise sa.exc.DisconnectionError("pooled connection is gone")

    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checked_out)


def _server_spoke(dbapi: DBAPIConnection) -> bool:
    """Whether an idle connection's socket has input: a goodbye, a hang-up or an error."""
    try:
        descriptor = dbapi.fileno()
    except Exception:
        return True  # closed on this side: the ping will say so
    poller = select.poll()
    poller.register(descriptor, select.POLLIN)  # hang-ups and errors are always reported
    return bool(poller.poll(0))


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; objects stay readable after commit.

    ``expire_on_commit=False`` because rows are handed from a task to its caller after the
    transaction ends, and with ``lazy="raise"`` relationships a refresh would be an
    unplanned query anyway.
    """
    return sessionmaker(bind=engine, expire_on_commit=False)


def make_read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that only read; on PostgreSQL each statement commits on its own (autocommit).

    A read then costs no BEGIN and ROLLBACK round trips, a third of a small API request's.
    Nothing is lost: at PostgreSQL's READ COMMITTED each statement takes its own snapshot
    anyway. SQLite keeps its default, as its transactions cost no round trip. A session made
    here must never write: on PostgreSQL a flush would commit at once.
    """
    return make_autocommit_session_factory(engine) or make_session_factory(engine)


def make_autocommit_session_factory(engine: Engine) -> sessionmaker[Session] | None:
    """On PostgreSQL, sessions whose every statement is its own transaction; else None.

    For reads, and for a write that is one statement: it then costs one round trip instead
    of three (BEGIN, the statement, COMMIT). Never for several writes that must hold
    together, nor for the ORM's flush, which would commit each row at once.
    """
    if engine.dialect.name != "postgresql":
        return None
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    return sessionmaker(bind=autocommit, expire_on_commit=False)


def begin_immediate(session: Session) -> None:
    """Start ``session``'s transaction as a writer, before it runs any statement.

    On SQLite a transaction that reads and then writes (select the blob, insert it if
    missing) fails at once with "database is locked" when another writer committed in
    between: SQLite cannot wait for the lock without invalidating what was read.
    ``BEGIN IMMEDIATE`` takes the write lock up front, waiting up to the busy timeout, so
    such transactions queue instead of failing. PostgreSQL needs nothing: a no-op there.
    Must be the first use of the session in its transaction (SQLAlchemy warns otherwise).
    """
    session.connection(execution_options=BEGIN_IMMEDIATE)


def _make_sqlite_engine(url: URL, *, echo: bool) -> Engine:
    database = url.database or ""
    # In-memory databases and "file:" URIs (uri=true) have no plain path to prepare.
    if database not in ("", ":memory:") and not database.startswith("file:"):
        # The embedded default lives under MEDIAMILL_HOME, which may not exist yet.
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # For files SQLAlchemy pools connections (QueuePool) and lets them cross threads; the
    # defaults suit a local catalog, so no pool arguments here.
    engine = sa.create_engine(url, echo=echo, json_deserializer=decode_json)
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # Python's sqlite3 opens transactions itself, lazily and only before DML: reads then
    # run outside any transaction, SAVEPOINT breaks and DDL commits implicitly. Turn that
    # off and let SQLAlchemy's "begin" event emit BEGIN (see _on_sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # Wait for a competing writer instead of failing at once.
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        # Readers do not block the writer nor the writer the readers.
        _use_wal(cursor)
        # SQLite ignores foreign keys (and so ON DELETE CASCADE) unless asked, per connection.
        cursor.execute("PRAGMA foreign_keys = ON")
        # With WAL, NORMAL stays consistent after a crash and only risks the last commits
        # on power loss; FULL would fsync on every commit.
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _use_wal(cursor: Any) -> None:
    """Put the database in WAL mode (it stays so), retrying while another connection holds it.

    Switching a new file to WAL needs its exclusive lock. When two commands open a new
    catalog at once, SQLite answers the one that would have to wait "database is locked" at
    once, without its busy handler (waiting could deadlock), so that wait happens here.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
        time.sleep(WAL_SWITCH_RETRY_SECONDS)


def _on_sqlite_begin(connection: sa.Connection) -> None:
    options: dict[str, Any] = dict(connection.get_execution_options())
    if options.get("isolation_level") == "AUTOCOMMIT":
        return
    connection.exec_driver_sql(options.get(_SQLITE_BEGIN, "BEGIN"))
