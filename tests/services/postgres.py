"""PostgreSQL for the tests: one throwaway cluster per session, a fresh database per use.

``postgres_server`` starts a cluster (`bench.postgres.throwaway_cluster`: Debian's
``initdb``/``pg_ctl``, loopback only, durability off) the first time a test asks for it
and deletes it when the session ends. Databases are cheap, clusters are not: every test
takes its own empty database with ``new_database()`` instead of sharing one.

``new_database()`` returns the SQLAlchemy URL of a new, empty database, spelled for
psycopg 3 (``postgresql+psycopg://postgres@127.0.0.1:PORT/NAME``); ``driver=None`` spells
it without a driver (``postgresql://...``, what ``MEDIAMILL_DATABASE_URL`` and other tools
accept) and ``driver="asyncpg"`` for an asyncio server such as Prefect's. `plain_url`
respells a URL already made. The superuser is trusted on the loopback: no password. ::

    def test_catalog_on_postgresql(postgres_server: PostgresServer) -> None:
        engine = make_engine(postgres_server.new_database())
        try:
            upgrade(engine)
        finally:
            engine.dispose()  # always: the whole session shares max_connections

    def test_cli_on_postgresql(postgres_server: PostgresServer, cli: Run) -> None:
        url = postgres_server.new_database(driver=None)  # "postgresql://postgres@..."
        cli("db", "upgrade", env={"MEDIAMILL_DATABASE_URL": url})

    # A Prefect server on PostgreSQL:
    #   PREFECT_API_DATABASE_CONNECTION_URL=postgres_server.new_database(driver="asyncpg")

``url(name, driver=...)`` spells the URL of a database by name, ``host`` and ``port`` are
the server's (``cluster`` has the rest, e.g. its log file for a failing start-up), and
``drop_database(url)`` removes a database and ends its connections, for fixtures that make
many; the rest go with the cluster. A machine without PostgreSQL fails the tests that
ask for it, saying that ``make test`` installs it; nothing is skipped.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from bench.postgres import Cluster, PostgresUnavailableError, throwaway_cluster

__all__ = ["PostgresServer", "plain_url", "postgres_server"]

# A session creates hundreds of engines; each keeps up to its pool size of connections
# until disposed, and a Prefect server adds its own pool. The default 100 runs out.
MAX_CONNECTIONS = 300


def plain_url(url: str) -> str:
    """``url`` without its driver: ``postgresql+psycopg://...`` -> ``postgresql://...``."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class PostgresServer:
    """The session's running cluster, and fresh databases on it."""

    cluster: Cluster
    _counter: Iterator[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def host(self) -> str:
        return self.cluster.host

    @property
    def port(self) -> int:
        return self.cluster.port

    def new_database(self, *, driver: str | None = "psycopg") -> str:
        """Create an empty database with a name of its own and return its URL."""
        with self._lock:
            name = f"test_{next(self._counter)}"
        self._admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name, driver=driver)

    def drop_database(self, url: str) -> None:
        """Drop the database ``url`` names, ending any connection still open to it."""
        name = make_url(url).database
        assert name, f"no database in {url!r}"
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def url(self, database: str, *, driver: str | None = "psycopg") -> str:
        """The URL of ``database`` on this server, with ``driver`` (None: no driver)."""
        scheme = "postgresql" if driver is None else f"postgresql+{driver}"
        return f"{scheme}://{self.cluster.user}@{self.host}:{self.port}/{database}"

    def _admin(self, statement: sql.Composed) -> None:
        # CREATE and DROP DATABASE cannot run in a transaction: autocommit, on the
        # maintenance database that is never handed out.
        conninfo = f"host={self.host} port={self.port} user={self.cluster.user} dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as connection:
            connection.execute(statement)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster for the whole session (see the module docstring)."""
    with contextlib.ExitStack() as stack:
        try:
            cluster = stack.enter_context(
                throwaway_cluster(settings={"max_connections": str(MAX_CONNECTIONS)})
            )
        except PostgresUnavailableError as error:
            pytest.fail(
                f"PostgreSQL is needed by these tests and could not start: {error}\n"
                "`make test` installs it (make system-packages: the Debian package `postgresql`)",
                pytrace=False,
            )
        yield PostgresServer(cluster)
