"""Lifecycle commands as a user runs them: real subprocesses on a real catalog and store."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mediamill.catalog import migrate
from mediamill.catalog.engine import make_engine, make_session_factory
from mediamill.settings import get_settings
from tests.cli.conftest import Run
from tests.flows.lifecycle_support import backdate, ingest_catalogue, snapshot

MEDIA_FIELDS = {"id", "workspace", "media_type", "status", "sha256", "variants"}


pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture
def sessions(home: Path) -> Any:
    engine = make_engine(get_settings().resolved_database_url)
    migrate.upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def media(sessions: Any, tmp_path: Path) -> dict[str, str]:
    return {name: str(i) for name, i in ingest_catalogue(tmp_path / "catalogue").items()}


def _gallery(cli: Run, entity: str, workspace: str = "acme") -> list[str]:
    records = json.loads(cli("entity", "media", entity, "-w", workspace, "--json").stdout)
    assert all(record.keys() >= MEDIA_FIELDS for record in records)
    return [record["id"] for record in records]


def test_attach_detach_and_the_entity_gallery(cli: Run, media: dict[str, str]) -> None:
    # Uploads of one backfill land in the gallery in the order their batches registered.
    product, page = _gallery(cli, "product:42"), _gallery(cli, "page:home")
    assert sorted(product) == sorted([media["shoe"], media["bag"]])
    assert sorted(page) == sorted([media["hat"], media["shoe-copy"]])

    attached = cli("attach", media["draft"], "--entity", "product:42", "-w", "acme", "-u", "bob")
    assert "at position 2" in attached.stdout
    cli("attach", media["draft"], "--entity", "page:home")
    again = cli("attach", media["draft"], "--entity", "page:home")
    assert "already attached" in again.stdout

    assert _gallery(cli, "product:42") == [*product, media["draft"]]
    assert _gallery(cli, "page:home") == [*page, media["draft"]]

    cli("detach", media["shoe"], "--entity", "product:42", "-w", "acme")
    assert _gallery(cli, "product:42") == [media["bag"], media["draft"]]
    missing = cli("detach", media["shoe"], "--entity", "product:42", check=1)
    assert "is not attached to product:42" in missing.stderr
    table = cli("entity", "media", "product:42", "-w", "acme").stdout
    assert "bag.jpg" in table
    assert "shoe.jpg" not in table
    assert "TYPE:ID" in cli("attach", media["bag"], "--entity", "Product 1", check=2).stderr


def test_another_workspaces_ids_behave_like_missing_ids(
    cli: Run, sessions: Any, media: dict[str, str]
) -> None:
    cli("media", "delete", media["hat"])
    before = snapshot(sessions)

    for command in (
        ("attach", media["shoe"], "--entity", "product:1", "-w", "other"),
        ("detach", media["bag"], "--entity", "product:42", "-w", "other"),
        ("media", "delete", media["shoe"], "-w", "other"),
        ("media", "restore", media["hat"], "-w", "other"),
        ("attach", str(uuid.uuid4()), "--entity", "product:1"),
    ):
        result = cli(*command, check=1)
        assert "no media" in result.stderr

    assert snapshot(sessions) == before
    assert _gallery(cli, "product:42", workspace="other") == []


def test_delete_restore_and_restore_refused_after_retention(
    cli: Run, sessions: Any, media: dict[str, str]
) -> None:
    gallery = _gallery(cli, "product:42")
    deleted = cli("media", "delete", media["bag"], "-w", "acme", "-u", "ann")
    assert "restorable until" in deleted.stdout
    assert _gallery(cli, "product:42") == [media["shoe"]]
    shown = json.loads(cli("media", "show", media["bag"], "--json").stdout)
    assert shown["status"] == "deleted"

    restored = json.loads(cli("media", "restore", media["bag"], "-u", "ann", "--json").stdout)
    assert restored["status"] == "ready"
    assert _gallery(cli, "product:42") == gallery  # back in its place
    assert "is not deleted" in cli("media", "restore", media["bag"], check=1).stderr

    cli("media", "delete", media["bag"])
    backdate(sessions, uuid.UUID(media["bag"]), deleted_at=timedelta(days=31))
    refused = cli("media", "restore", media["bag"], check=1)

    assert "could be restored for 30 days" in refused.stderr
    assert "MEDIAMILL_RETENTION_DAYS" in refused.stderr
    assert json.loads(cli("media", "show", media["bag"], "--json").stdout)["status"] == "deleted"


def test_entity_delete_and_the_sweeps(cli: Run, sessions: Any, media: dict[str, str]) -> None:
    report = json.loads(
        cli("entity", "delete", "product:42", "-w", "acme", "-u", "shop", "--json").stdout
    )
    assert report["counts"] == {"media.detached": {"done": 2}, "media.deleted": {"done": 2}}
    assert _gallery(cli, "product:42") == []

    two_days = timedelta(days=2)
    backdate(sessions, uuid.UUID(media["draft"]), created_at=two_days, updated_at=two_days)
    before = snapshot(sessions)
    plan = json.loads(cli("sweep", "orphans", "-w", "acme", "--dry-run", "--json").stdout)
    assert plan["dry_run"] is True
    assert plan["counts"] == {"media.deleted": {"planned": 1}}
    assert snapshot(sessions) == before

    for name in ("shoe", "bag"):
        backdate(sessions, uuid.UUID(media[name]), deleted_at=timedelta(days=31))
    table = cli("sweep", "purge", "--dry-run").stdout
    assert "Dry run" in table
    assert "media.purged" in table
    purged = json.loads(cli("sweep", "purge", "--json").stdout)
    assert purged["counts"] == {
        "media.purged": {"done": 2},
        "blob.purged": {"done": 1, "skipped": 1},  # the shoe's blob is also shoe-copy's
    }
    shoe = json.loads(cli("media", "show", media["shoe"], "--json").stdout)
    assert shoe["status"] == "purged"
    assert shoe["sha256"]
    assert shoe["variants"] == []
