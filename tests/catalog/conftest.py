"""Fixtures of the catalog tests.

Every test that is not about SQLite itself gets its database from `database_factory`,
parametrized by backend: each runs on SQLite and on PostgreSQL, where every database is a
new one on the session's throwaway cluster (`tests.services.postgres`, started on first
use). ``-k sqlite`` or ``-k postgresql`` picks one backend.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from mediamill.catalog.engine import make_engine, make_session_factory
from mediamill.catalog.migrate import upgrade
from mediamill.catalog.models import Workspace
from tests.services.postgres import PostgresServer

BACKENDS = ["sqlite", "postgresql"]

DatabaseFactory = Callable[[], str]


def sqlite_factory(root: Path) -> DatabaseFactory:
    counter = itertools.count()
    # A directory that does not exist yet: make_engine must create it.
    return lambda: f"sqlite:///{root / 'catalog' / f'db{next(counter)}.sqlite'}"


@pytest.fixture(params=BACKENDS)
def database_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatabaseFactory]:
    """Makes URLs of new, empty databases on the backend under test."""
    if request.param == "sqlite":
        yield sqlite_factory(tmp_path)
        return
    assert request.param == "postgresql"
    # Asked for here, not as an argument, so a SQLite-only run never starts a server.
    server: PostgresServer = request.getfixturevalue("postgres_server")
    made: list[str] = []

    def new_database() -> str:
        made.append(server.new_database())
        return made[-1]

    yield new_database
    # After the engine fixtures have disposed their engines: each database holds disk.
    for url in made:
        server.drop_database(url)


@pytest.fixture
def database_url(database_factory: DatabaseFactory) -> str:
    """The URL of an empty database."""
    return database_factory()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on an empty (unmigrated) database."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def migrated_engine(engine: Engine) -> Engine:
    """An engine on a database migrated to head."""
    upgrade(engine)
    return engine


@pytest.fixture
def session(migrated_engine: Engine) -> Iterator[Session]:
    with make_session_factory(migrated_engine)() as session:
        yield session


@pytest.fixture
def workspace(session: Session) -> Workspace:
    workspace = Workspace(slug="acme", name="Acme")
    session.add(workspace)
    session.commit()
    return workspace


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """For tests of SQLite-only behaviour (pragmas, locking), whatever the backends."""
    return sqlite_factory(tmp_path)()
