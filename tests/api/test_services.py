"""The app's services: writers of one process take turns for SQLite's single write lock."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from mediamill.api.services import Services
from mediamill.catalog import access
from mediamill.catalog.migrate import upgrade
from mediamill.catalog.models import Workspace
from mediamill.catalog.repository import ensure_workspace
from mediamill.settings import get_settings
from tests.services.postgres import PostgresServer


@pytest.mark.usefixtures("home")
def test_a_writer_waits_its_turn_instead_of_timing_out_on_sqlites_lock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # SQLite's own wait for its lock ends after 50 ms here; the first writer holds it 0.5 s.
    monkeypatch.setattr("mediamill.catalog.engine.SQLITE_BUSY_TIMEOUT_MS", 50)
    services = Services.open(get_settings())
    holding = threading.Event()
    errors: list[BaseException] = []

    def first_writer() -> None:
        try:
            with services.writing() as session:
                ensure_workspace(session, "first")
                holding.set()
                threading.Event().wait(0.5)
        except BaseException as error:  # reported below
            errors.append(error)

    try:
        first = threading.Thread(target=first_writer)
        first.start()
        assert holding.wait(timeout=10)
        with services.writing() as session:
            ensure_workspace(session, "second")
        first.join(timeout=10)
        with services.reading() as session:
            slugs = set(session.scalars(select(Workspace.slug)))
    finally:
        services.close()
    assert errors == []
    assert {"first", "second"} <= slugs


@pytest.fixture(params=["sqlite", "postgresql"])
def services(
    request: pytest.FixtureRequest, home: object, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Services]:
    """The app's services on a migrated catalog of each backend."""
    server: PostgresServer | None = None
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres_server")
        url = server.new_database()
        upgrade(url)
        monkeypatch.setenv("MEDIAMILL_DATABASE_URL", url)
    services = Services.open(get_settings())
    yield services
    services.close()
    if server is not None:
        server.drop_database(url)


def test_a_write_of_one_statement_commits_as_it_runs(services: Services) -> None:
    with services.writing() as session:
        workspace_id = ensure_workspace(session, "acme").id
    with services.writing_one_statement() as session:
        claimed = access.claim_delivery(session, workspace_id, "evt_1", "entity.deleted")
        assert claimed is not None
        if services.engine.dialect.name == "postgresql":
            # Its own transaction, committed already: no BEGIN or COMMIT round trip.
            with services.reading() as other:
                assert access.find_delivery(other, workspace_id, "evt_1") is not None
    with services.reading() as session:
        found = access.find_delivery(session, workspace_id, "evt_1")
    assert found is not None
    assert found.id == claimed
