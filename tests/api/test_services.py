"""The app's services: writers of one process take turns for SQLite's single write lock."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from mediamill.api.services import Services
from mediamill.catalog.models import Workspace
from mediamill.catalog.repository import ensure_workspace
from mediamill.settings import get_settings


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
