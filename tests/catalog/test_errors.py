from __future__ import annotations

import pickle
import socket
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc

from mediamill.catalog.engine import make_engine
from mediamill.catalog.errors import (
    CatalogError,
    CatalogNotMigrated,
    NotFound,
    TransientCatalogError,
    is_transient,
)
from tests.services.postgres import PostgresServer


@pytest.mark.parametrize("error_class", [NotFound, CatalogNotMigrated, TransientCatalogError])
def test_tree(error_class: type[CatalogError]) -> None:
    assert issubclass(error_class, CatalogError)
    assert issubclass(CatalogError, Exception)


@pytest.mark.parametrize(
    "error",
    [
        NotFound("media 42"),
        CatalogNotMigrated(),
        CatalogNotMigrated("custom"),
        TransientCatalogError("locked"),
    ],
)
def test_errors_survive_pickling(error: CatalogError) -> None:
    # Prefect pickles a task's exception to carry it across processes.
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)


def test_not_migrated_says_what_to_run() -> None:
    assert "mediamill db upgrade" in str(CatalogNotMigrated())


def operational(orig: Exception) -> sa_exc.OperationalError:
    return sa_exc.OperationalError("INSERT ...", {}, orig)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (operational(sqlite3.OperationalError("database is locked")), True),
        (operational(sqlite3.OperationalError("database table is locked: media")), True),
        (operational(sqlite3.OperationalError("no such table: media")), False),
        (sa_exc.IntegrityError("INSERT ...", {}, sqlite3.IntegrityError("UNIQUE")), False),
        (sa_exc.TimeoutError("QueuePool limit reached"), True),
        (sa_exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True), True),
        (ValueError("not a database error"), False),
    ],
)
def test_is_transient(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


# -- PostgreSQL: the same question asked of a real server's errors -------------------------


def error_of(engine: Engine, statements: Callable[[sa.Connection], object]) -> BaseException:
    with pytest.raises(sa_exc.DBAPIError) as raised, engine.connect() as connection:
        statements(connection)
    return raised.value


@pytest.fixture
def pg_engine(postgres_server: PostgresServer) -> Iterator[Engine]:
    engine = make_engine(postgres_server.new_database())
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE counters (id int PRIMARY KEY, n int)"))
        connection.execute(sa.text("INSERT INTO counters VALUES (1, 0)"))
    yield engine
    engine.dispose()


def other_url(engine: Engine, **parts: Any) -> str:
    return engine.url.set(**parts).render_as_string(hide_password=False)


def test_postgresql_configuration_errors_are_not_transient(pg_engine: Engine) -> None:
    for url in (
        other_url(pg_engine, database="no_such_database"),
        other_url(pg_engine, username="no_such_role"),
    ):
        engine = make_engine(url)
        try:
            error = error_of(engine, lambda connection: connection.execute(sa.text("SELECT 1")))
        finally:
            engine.dispose()
        assert isinstance(error, sa_exc.OperationalError)
        assert "does not exist" in str(error)
        assert not is_transient(error)


def test_postgresql_refusing_connections_is_transient(pg_engine: Engine) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    engine = make_engine(other_url(pg_engine, port=port))
    try:
        error = error_of(engine, lambda connection: connection.execute(sa.text("SELECT 1")))
    finally:
        engine.dispose()
    assert is_transient(error)


def test_postgresql_lock_and_serialization_conflicts_are_transient(pg_engine: Engine) -> None:
    update = sa.text("UPDATE counters SET n = n + 1 WHERE id = 1")
    with pg_engine.connect() as holder:
        holder.execute(sa.text("SELECT n FROM counters WHERE id = 1 FOR UPDATE"))
        locked = error_of(
            pg_engine,
            lambda c: c.execute(sa.text("SELECT n FROM counters WHERE id = 1 FOR UPDATE NOWAIT")),
        )
        holder.rollback()

    def lost_update(connection: sa.Connection) -> None:
        connection.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        connection.execute(sa.text("SELECT n FROM counters")).all()  # the snapshot starts
        with pg_engine.begin() as other:
            other.execute(update)
        connection.execute(update)

    conflict = error_of(pg_engine, lost_update)

    assert "could not obtain lock" in str(locked)
    assert is_transient(locked)
    assert "could not serialize" in str(conflict)
    assert is_transient(conflict)


def test_postgresql_errors_in_the_sql_are_not_transient(pg_engine: Engine) -> None:
    error = error_of(pg_engine, lambda c: c.execute(sa.text("SELECT * FROM no_such_table")))
    assert not is_transient(error)
