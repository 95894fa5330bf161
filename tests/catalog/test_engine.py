from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from mediamill.catalog.engine import (
    SQLITE_BUSY_TIMEOUT_MS,
    begin_immediate,
    make_engine,
    make_session_factory,
    normalize_url,
)
from mediamill.catalog.migrate import upgrade
from mediamill.catalog.models import Workspace


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
        ("sqlite:///catalog.db", "sqlite:///catalog.db"),
    ],
)
def test_normalize_url(given: str, expected: str) -> None:
    assert normalize_url(given).render_as_string(hide_password=False) == expected


def test_objects_stay_readable_after_commit(sqlite_engine: Engine) -> None:
    with make_session_factory(sqlite_engine)() as session:
        workspace = Workspace(slug="acme", name="Acme")
        session.add(workspace)
        session.commit()
    # Detached, yet no refresh is needed: expire_on_commit=False.
    assert workspace.slug == "acme"


def test_savepoints_work_on_sqlite(sqlite_engine: Engine) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINT; the engine replaces it.
    with make_session_factory(sqlite_engine)() as session:
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


def test_session_factory_binds_the_engine(sqlite_engine: Engine) -> None:
    with make_session_factory(sqlite_engine)() as session:
        assert isinstance(session, Session)
        assert session.get_bind() is sqlite_engine
