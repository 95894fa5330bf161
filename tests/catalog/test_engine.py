from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from mediamill.catalog import engine as engine_module
from mediamill.catalog.engine import (
    SQLITE_BUSY_TIMEOUT_MS,
    begin_immediate,
    make_engine,
    make_read_session_factory,
    make_session_factory,
    normalize_url,
)
from mediamill.catalog.migrate import is_current, upgrade
from mediamill.catalog.models import Workspace
from mediamill.settings import get_settings
from tests.services.postgres import PostgresServer


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def pragma(engine: Engine, name: str) -> object:
    with engine.connect() as connection:
        return connection.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_sqlite_pragmas(sqlite_engine: Engine) -> None:
    assert pragma(sqlite_engine, "journal_mode") == "wal"
    assert pragma(sqlite_engine, "busy_timeout") == SQLITE_BUSY_TIMEOUT_MS == 30_000
    assert pragma(sqlite_engine, "foreign_keys") == 1
    assert pragma(sqlite_engine, "synchronous") == 1  # NORMAL


def test_pragmas_hold_on_every_pooled_connection(sqlite_engine: Engine) -> None:
    # Migrations turn foreign keys off around their transaction; they must come back.
    upgrade(sqlite_engine)
    with sqlite_engine.connect() as first, sqlite_engine.connect() as second:
        for connection in (first, second):
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_a_new_file_locked_by_another_connection_still_switches_to_wal(tmp_path: Path) -> None:
    # Two commands opening a new catalog at once: the other one holds the write lock of a
    # file not yet in WAL mode, and SQLite answers "locked" at once instead of waiting.
    path = tmp_path / "catalog.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE t (x)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (1)")
    committer = threading.Timer(0.3, other.execute, args=("COMMIT",))
    committer.start()
    engine = make_engine(f"sqlite:///{path}")
    try:
        assert pragma(engine, "journal_mode") == "wal"
    finally:
        committer.join()
        engine.dispose()
        other.close()


def test_a_file_that_is_not_a_database_fails_at_once(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    path.write_bytes(b"not a database, " * 64)
    engine = make_engine(f"sqlite:///{path}")
    try:
        with pytest.raises(sa.exc.DatabaseError, match="not a database"):
            pragma(engine, "journal_mode")
    finally:
        engine.dispose()


def test_parent_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "home" / "nested" / "catalog.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    finally:
        engine.dispose()
    assert path.exists()


def test_in_memory_sqlite_needs_no_directory() -> None:
    engine = make_engine("sqlite://")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db:5432/mm", "postgresql+psycopg://u:p@db:5432/mm"),
        ("postgresql+psycopg://u:p@db/mm", "postgresql+psycopg://u:p@db/mm"),
        ("postgres://u:p@db:5432/mm", "postgresql+psycopg://u:p@db:5432/mm"),
        ("postgres+psycopg://u:p@db/mm", "postgresql+psycopg://u:p@db/mm"),
        # An explicit driver is respected (asyncpg is what Prefect's server uses).
        ("postgresql+asyncpg://u@db/mm", "postgresql+asyncpg://u@db/mm"),
        (
            "postgresql://u:p%40ss@db/mm?sslmode=require",
            "postgresql+psycopg://u:p%40ss@db/mm?sslmode=require",
        ),
        ("sqlite:///catalog.db", "sqlite:///catalog.db"),
    ],
)
def test_normalize_url(given: str, expected: str) -> None:
    assert normalize_url(given).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_every_postgresql_spelling_connects_with_psycopg_3(
    postgres_server: PostgresServer, scheme: str
) -> None:
    database = make_url(postgres_server.new_database()).database
    url = f"{scheme}://postgres@{postgres_server.host}:{postgres_server.port}/{database}"
    engine = make_engine(url)
    try:
        assert engine.dialect.name == "postgresql"
        assert engine.dialect.driver == "psycopg"
        with engine.connect() as connection:
            found = connection.execute(sa.text("SELECT current_database()")).scalar_one()
        assert found == database
    finally:
        engine.dispose()


@pytest.mark.usefixtures("home")
@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_a_plain_url_in_the_environment_reaches_a_migrated_catalog(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    # What production sets: MEDIAMILL_DATABASE_URL without a driver, read through settings.
    url = postgres_server.new_database(driver=None)
    assert url.startswith("postgresql://")
    monkeypatch.setenv("MEDIAMILL_DATABASE_URL", url.replace("postgresql", scheme, 1))
    settings = get_settings()
    assert settings.resolved_database_url.startswith(f"{scheme}://")
    engine = make_engine(settings.resolved_database_url)
    try:
        upgrade(engine)
        assert is_current(engine)
        with make_session_factory(engine)() as session:
            session.add(Workspace(slug="acme", name="Acme"))
            session.commit()
        # The same database seen through the psycopg spelling of the URL.
        assert is_current(postgres_server.url(make_url(url).database or "", driver="psycopg"))
    finally:
        engine.dispose()


def test_a_connection_the_server_dropped_is_replaced_before_use(
    postgres_server: PostgresServer,
) -> None:
    # Servers, proxies and failovers end idle connections; the pool must not hand one out.
    url = postgres_server.new_database()
    engine, killer = make_engine(url), make_engine(url)
    try:
        with engine.connect() as connection:
            first = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        # The connection is back in the pool, idle, when the server ends it; the timeout
        # makes the call wait until the backend is gone (false if it outlives 30 s).
        with killer.connect() as connection:
            killed = connection.execute(
                sa.text("SELECT pg_terminate_backend(:pid, 30000)"), {"pid": first}
            ).scalar_one()
        assert killed
        with engine.connect() as connection:
            second = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        assert second != first
    finally:
        engine.dispose()
        killer.dispose()


def _count_pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the engine's pings (a list, so the caller sees it grow)."""
    pings: list[int] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        pings.append(1)
        return ping(dbapi_connection)  # type: ignore[arg-type]

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pings


def test_a_connection_back_in_use_within_seconds_is_not_pinged(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pool_pre_ping's round trip at every checkout was 11% of an API process's samples.
    engine = make_engine(postgres_server.new_database())
    pings = _count_pings(engine, monkeypatch)
    try:
        pids = set()
        for _ in range(5):
            with engine.connect() as connection:
                pids.add(connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
        assert len(pids) == 1  # the same pooled connection every time
        assert pings == []
    finally:
        engine.dispose()


def test_a_connection_idle_past_the_limit_is_pinged_and_a_dead_one_replaced(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A connection dropped without a word (a firewall, a proxy's idle timeout) looks quiet
    # from here: only the ping of a connection idle past the limit finds it.
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    engine = make_engine(postgres_server.new_database())
    pings = _count_pings(engine, monkeypatch)
    try:
        with engine.connect() as connection:
            first = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        with engine.connect() as connection:
            again = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        assert (again, len(pings)) == (first, 1)  # idle past 0 s: pinged, and alive

        def gone(dbapi_connection: object) -> bool:
            pings.append(1)
            raise engine.dialect.loaded_dbapi.OperationalError("server closed the connection")

        monkeypatch.setattr(engine.dialect, "do_ping", gone)
        with engine.connect() as connection:
            replaced = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        assert replaced != first  # the pool discarded it and connected anew
        assert len(pings) == 2
    finally:
        engine.dispose()


def test_objects_stay_readable_after_commit(migrated_engine: Engine) -> None:
    with make_session_factory(migrated_engine)() as session:
        workspace = Workspace(slug="acme", name="Acme")
        session.add(workspace)
        session.commit()
    # Detached, yet no refresh is needed: expire_on_commit=False.
    assert workspace.slug == "acme"


def test_savepoints_work(migrated_engine: Engine) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINT (the engine replaces it); on
    # PostgreSQL a failed statement aborts the transaction unless a savepoint contains it.
    with make_session_factory(migrated_engine)() as session:
        session.add(Workspace(slug="kept", name="Kept"))
        session.flush()
        with pytest.raises(sa.exc.IntegrityError), session.begin_nested():
            session.add(Workspace(slug="kept", name="Duplicate"))
        session.add(Workspace(slug="also-kept", name="Also kept"))
        session.commit()
        slugs = set(session.scalars(sa.select(Workspace.slug)))
    assert slugs == {"kept", "also-kept"}


def test_reads_are_inside_the_transaction(sqlite_engine: Engine) -> None:
    # With pysqlite's default, a SELECT runs outside any transaction; ours begins one.
    with sqlite_engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
        assert connection.connection.driver_connection.in_transaction  # type: ignore[union-attr]


def other_writer_is_locked_out(path: str) -> bool:
    outsider = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        outsider.execute("BEGIN IMMEDIATE")
        outsider.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as error:
        if "locked" not in str(error):
            raise
        return True
    finally:
        outsider.close()


def test_begin_immediate_takes_the_write_lock_up_front(sqlite_engine: Engine) -> None:
    path = sqlite_engine.url.database
    assert path is not None
    with make_session_factory(sqlite_engine)() as session:
        session.scalars(sa.select(Workspace)).all()
        assert not other_writer_is_locked_out(path)  # a plain BEGIN only reads
        session.rollback()

        begin_immediate(session)
        assert other_writer_is_locked_out(path)
        session.commit()
    assert not other_writer_is_locked_out(path)


def test_read_then_write_transactions_queue_with_begin_immediate(sqlite_engine: Engine) -> None:
    # Each worker reads, pauses, then writes what it read: without BEGIN IMMEDIATE the
    # second one fails with "database is locked" instead of waiting its turn.
    factory = make_session_factory(sqlite_engine)
    first_has_lock = threading.Event()
    errors: list[BaseException] = []

    def worker(slug: str, signal: threading.Event | None) -> None:
        try:
            with factory() as session:
                begin_immediate(session)
                count = len(session.scalars(sa.select(Workspace)).all())
                if signal is not None:
                    signal.set()
                    time.sleep(0.3)
                session.add(Workspace(slug=slug, name=f"seen {count}"))
                session.commit()
        except BaseException as error:
            errors.append(error)

    first = threading.Thread(target=worker, args=("first", first_has_lock))
    first.start()
    assert first_has_lock.wait(5)
    second = threading.Thread(target=worker, args=("second", None))
    second.start()
    first.join(10)
    second.join(10)

    assert errors == []
    with factory() as session:
        names = dict(session.execute(sa.select(Workspace.slug, Workspace.name)).tuples().all())
    # The second saw the first's row: it waited for the commit instead of reading stale.
    assert names == {"first": "seen 0", "second": "seen 1"}


def test_session_factory_binds_the_engine(migrated_engine: Engine) -> None:
    with make_session_factory(migrated_engine)() as session:
        assert isinstance(session, Session)
        assert session.get_bind() is migrated_engine


def test_read_sessions_see_committed_rows_and_on_postgresql_send_no_begin(
    migrated_engine: Engine,
) -> None:
    with make_session_factory(migrated_engine).begin() as session:
        session.add(Workspace(slug="acme", name="Acme"))
    with make_read_session_factory(migrated_engine)() as session:
        assert session.scalars(select(Workspace.slug)).all() == ["acme"]
        # On PostgreSQL the driver sends no BEGIN (and so no ROLLBACK) around the reads.
        connection = session.connection()
        if migrated_engine.dialect.name == "postgresql":
            assert connection.connection.dbapi_connection.autocommit is True  # type: ignore[union-attr]
        else:
            assert connection.get_execution_options().get("isolation_level") is None
