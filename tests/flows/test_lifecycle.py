"""The entity-deleted flow end to end: real ingest, real catalog and store, a Prefect server."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mediamill.catalog import lifecycle as life
from mediamill.catalog.models import AuditEvent, Media
from mediamill.flows.lifecycle import entity_cleanup
from tests.flows.lifecycle_support import (
    artifact_keys,
    audit_trail,
    events_for,
    ingest_catalogue,
    snapshot,
)

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture
def media(catalog: Any, tmp_path: Path) -> dict[str, uuid.UUID]:
    """The catalogue, with the bag also shown on the home page."""
    ids = ingest_catalogue(tmp_path / "catalogue")
    with catalog.begin() as session:
        bag = life.lock_media(session, ids["bag"])
        life.attach(session, bag, life.Entity("page", "home"), "ann")
    return ids


def _statuses(sessions: Any, ids: dict[str, uuid.UUID]) -> dict[str, str]:
    with sessions() as session:
        return {
            name: session.get(Media, media_id).status.value  # type: ignore[union-attr]
            for name, media_id in ids.items()
        }


def _gallery(sessions: Any, entity: str, workspace: str = "acme") -> list[uuid.UUID]:
    kind, _, key = entity.partition(":")
    with sessions() as session:
        from mediamill.catalog import repository as repo

        found = repo.find_workspace(session, workspace)
        assert found is not None
        return [m.id for m in life.entity_media(session, found.id, life.Entity(kind, key))]


def test_deleting_an_entity_deletes_only_what_was_uploaded_for_it_alone(
    catalog: Any, media: dict[str, uuid.UUID]
) -> None:
    state = entity_cleanup("acme", "product:42", actor="shop", return_state=True)
    report = state.result()

    assert _statuses(catalog, media) == {
        "shoe": "deleted",  # uploaded for the product, attached nowhere else
        "bag": "ready",  # also on the home page
        "hat": "ready",
        "shoe-copy": "ready",  # same bytes (same blob), another upload, another entity
        "draft": "ready",
    }
    assert report["counts"] == {
        "media.detached": {"done": 2},
        "media.deleted": {"done": 1, "skipped": 1},
    }
    (kept,) = [a for a in report["actions"] if a["status"] == "skipped"]
    assert (kept["media_id"], kept["reason"]) == (
        str(media["bag"]),
        "still attached to 1 other entity",
    )
    assert _gallery(catalog, "product:42") == []
    home = _gallery(catalog, "page:home")
    assert sorted(home[:2]) == sorted([media["hat"], media["shoe-copy"]])
    assert home[2] == media["bag"]  # attached after the backfill: last
    assert audit_trail(catalog, media["shoe"])[-2:] == [
        ("media.detached", "shop"),
        ("media.deleted", "shop"),
    ]
    with catalog() as session:
        entity_audit = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "entity.deleted")
        ).one()
    assert (entity_audit.subject, entity_audit.actor) == ("product:42", "shop")
    run_id = str(state.state_details.flow_run_id)
    assert {"entity-cleanup-summary", "entity-cleanup-steps"} <= artifact_keys(run_id)
    (event,) = events_for(f"mediamill.media.{media['shoe']}", "mediamill.media.deleted")
    assert event.resource["mediamill.workspace"] == "acme"


def test_a_dry_run_reports_the_plan_and_changes_nothing(
    catalog: Any, media: dict[str, uuid.UUID]
) -> None:
    before = snapshot(catalog)

    report = entity_cleanup("acme", "product:42", dry_run=True)

    assert snapshot(catalog) == before
    assert report["dry_run"] is True
    assert report["counts"] == {
        "media.detached": {"planned": 2},
        "media.deleted": {"planned": 1, "skipped": 1},
    }
    deleted = [a["media_id"] for a in report["actions"] if a["status"] == "planned"]
    assert str(media["shoe"]) in deleted


def test_another_workspace_with_the_same_entity_is_left_alone(
    catalog: Any, media: dict[str, uuid.UUID]
) -> None:
    before = snapshot(catalog)

    report = entity_cleanup("other", "product:42", actor="mallory")
    unknown = entity_cleanup("acme", "product:999", actor="shop")

    assert report["actions"] == []
    assert unknown["actions"] == []
    after = snapshot(catalog)
    assert after["audits"] == before["audits"] + 1  # only acme's "entity.deleted" for 999
    assert {k: v for k, v in after.items() if k != "audits"} == {
        k: v for k, v in before.items() if k != "audits"
    }
