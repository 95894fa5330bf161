"""Shared fixtures: an isolated MEDIAMILL_HOME per test, one Prefect server per session,
and a loopback HTTP server with a spy on outgoing connections (URL fetching)."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bench.prefect_server import prefect_server_on
from tests.net.conftest import LoopbackServer, Server

if TYPE_CHECKING:
    from distributed import LocalCluster

    from tests.services.postgres import PostgresServer

pytest_plugins = ["tests.services.postgres", "tests.services.objectstores"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Embedded defaults (SQLite + file store) under a fresh MEDIAMILL_HOME."""
    path = tmp_path / "home"
    monkeypatch.setenv("MEDIAMILL_HOME", str(path))
    for name in list(os.environ):
        if name.startswith("MEDIAMILL_") and name != "MEDIAMILL_HOME":
            monkeypatch.delenv(name)
    return path


@pytest.fixture(scope="session")
def prefect_api(postgres_server: PostgresServer) -> Iterator[str]:
    """A real Prefect server for the session, on PostgreSQL (see bench/prefect_server.py).

    Subprocesses (a CLI, a notebook) reach it through ``PREFECT_API_URL`` in the environment.
    """
    # The server's telemetry cannot reach the internet here; on SQLite its failing
    # retries held the write lock and stalled flow runs for up to a minute.
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    with prefect_server_on(postgres_server.new_database(driver="asyncpg")) as url:
        previous = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = url
        try:
            yield url
        finally:
            if previous is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = previous


# -- a loopback HTTP server, for the URL fetcher and URL ingest ---------------------------


@pytest.fixture
def server() -> Iterator[Server]:
    """A loopback HTTP server for one test."""
    httpd = LoopbackServer()
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield httpd.state
    finally:
        httpd.state.stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every (host, port) a socket of this process connects to (Prefect's own included)."""
    seen: list[tuple[str, int]] = []
    original = socket.socket.connect

    def spy(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple):
            seen.append((str(address[0]), int(address[1])))
        original(self, address)

    monkeypatch.setattr(socket.socket, "connect", spy)
    return seen


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    """A Dask cluster of two single-threaded worker processes; closed whatever the test does."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        yield local


@pytest.fixture
def catalog(home: Path) -> Iterator[Any]:
    """Sessions on the migrated embedded catalog of the test's own MEDIAMILL_HOME, which the
    flows and commands under test write to; migrated first, so a test can watch from the start."""
    from mediamill.catalog import migrate
    from mediamill.catalog.engine import make_engine, make_session_factory
    from mediamill.settings import get_settings

    engine = make_engine(get_settings().resolved_database_url)
    migrate.upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()
