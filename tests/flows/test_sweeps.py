"""The orphan sweep and purge flows end to end, time moved by backdating rows and objects."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mediamill.catalog import lifecycle as life
from mediamill.catalog.models import Blob, BlobStatus, Media, MediaStatus
from mediamill.catalog.repository import utcnow
from mediamill.flows.ingest import ingest_bytes
from mediamill.flows.sweeps import orphan_sweep, purge
from mediamill.media import samples
from mediamill.storage.headers import IMMUTABLE
from mediamill.storage.keys import workspace_prefix
from mediamill.tasks.cleanup import ORPHAN_SWEEP_ACTOR, PURGE_ACTOR
from tests.flows.lifecycle_support import (
    age_object,
    artifact_keys,
    audit_trail,
    backdate,
    blob_keys,
    events_for,
    ingest_catalogue,
    listing,
    snapshot,
    store,
)

pytestmark = pytest.mark.usefixtures("prefect_api")

DAY = timedelta(days=1)


@pytest.fixture
def media(catalog: Any, tmp_path: Path) -> dict[str, uuid.UUID]:
    return ingest_catalogue(tmp_path / "catalogue")


def _media(sessions: Any, media_id: uuid.UUID) -> Media:
    with sessions() as session:
        found = session.get(Media, media_id)
        assert found is not None
        return found


def _soft_delete(sessions: Any, media_id: uuid.UUID, ago: timedelta) -> None:
    with sessions.begin() as session:
        media = life.lock_media(session, media_id)
        life.soft_delete(session, media, actor="ann", now=utcnow() - ago, reason="test")


def _workspace_id(sessions: Any, media_id: uuid.UUID) -> int:
    return _media(sessions, media_id).workspace_id


def test_orphan_sweep_dry_run_then_run(catalog: Any, media: dict[str, uuid.UUID]) -> None:
    # Never attached, untouched for longer than the upload TTL.
    backdate(catalog, media["draft"], created_at=2 * DAY, updated_at=2 * DAY)
    prefix = workspace_prefix(_workspace_id(catalog, media["draft"]))
    old_stray, young_stray = f"{prefix}crash/left-over.bin", f"{prefix}crash/just-written.bin"
    for key in (old_stray, young_stray):
        store().put(key, b"partial", content_type="image/jpeg", cache_control=IMMUTABLE)
    age_object(old_stray, timedelta(hours=2))
    damaged = blob_keys(catalog, media["hat"])[-1]
    store().delete_many([damaged])
    before = snapshot(catalog)

    plan = orphan_sweep("acme", dry_run=True)

    assert snapshot(catalog) == before
    assert plan["counts"] == {
        "media.deleted": {"planned": 1},
        "object.deleted": {"planned": 1, "skipped": 1},
        "blob.missing_objects": {"planned": 1},
    }

    state = orphan_sweep("acme", return_state=True)
    report = state.result()

    assert report["counts"] == {
        "media.deleted": {"done": 1},
        "object.deleted": {"done": 1, "skipped": 1},
        "blob.missing_objects": {"done": 1},
    }
    assert _media(catalog, media["draft"]).status == MediaStatus.deleted
    assert audit_trail(catalog, media["draft"])[-1] == ("media.deleted", ORPHAN_SWEEP_ACTOR)
    objects = listing()
    assert old_stray not in objects
    assert young_stray in objects
    assert set(objects) == {key for key, _ in before["objects"]} - {old_stray}
    with catalog() as session:
        flagged = session.scalars(select(Blob).where(Blob.status == BlobStatus.ready)).all()
        missing = {b.id: b.meta.get(life.MISSING_OBJECTS) for b in flagged}
    assert [m["keys"] for m in missing.values() if m] == [[damaged]]
    assert {"orphan-sweep-summary", "orphan-sweep-steps"} <= artifact_keys(
        str(state.state_details.flow_run_id)
    )
    assert events_for("mediamill.orphan-sweep", "mediamill.orphan-sweep.completed")


def test_orphan_sweep_of_one_workspace_leaves_the_others_alone(
    catalog: Any, media: dict[str, uuid.UUID]
) -> None:
    other = ingest_bytes(samples.photo_jpeg(120, 90, seed=9), "x.jpg", "other")
    theirs = uuid.UUID(str(other["media_ids"][0]))  # type: ignore[index]
    backdate(catalog, theirs, created_at=2 * DAY, updated_at=2 * DAY)

    report = orphan_sweep("acme")

    assert report["counts"] == {}
    assert _media(catalog, theirs).status == MediaStatus.ready
    assert orphan_sweep("nobody")["actions"] == []


def test_purge_keeps_shared_blobs_then_frees_them_with_their_last_user(
    catalog: Any, media: dict[str, uuid.UUID]
) -> None:
    shoe_keys = blob_keys(catalog, media["shoe"])
    bag_keys = blob_keys(catalog, media["bag"])
    _soft_delete(catalog, media["shoe"], 31 * DAY)  # its blob is shared with shoe-copy
    _soft_delete(catalog, media["bag"], 31 * DAY)
    _soft_delete(catalog, media["hat"], 29 * DAY)  # still restorable
    before = snapshot(catalog)

    planned = purge("acme", dry_run=True)

    assert snapshot(catalog) == before
    assert planned["counts"] == {
        "media.purged": {"planned": 2},
        "blob.purged": {"planned": 1, "skipped": 1},
    }

    report = purge()

    assert report["counts"] == {
        "media.purged": {"done": 2},
        "blob.purged": {"done": 1, "skipped": 1},
    }
    objects = listing()
    assert not any(key in objects for key in bag_keys)
    assert all(key in objects for key in shoe_keys)
    assert set(dict(before["objects"])) - set(objects) == set(bag_keys)
    shoe = _media(catalog, media["shoe"])
    assert (shoe.status, shoe.blob_id) == (MediaStatus.purged, None)
    assert shoe.meta["sha256"]
    assert _media(catalog, media["hat"]).status == MediaStatus.deleted
    assert audit_trail(catalog, media["bag"])[-1] == ("media.purged", PURGE_ACTOR)

    _soft_delete(catalog, media["shoe-copy"], 31 * DAY)
    purge("acme")

    assert not any(key in listing() for key in shoe_keys)
    with catalog() as session:
        assert session.scalar(select(Blob).where(Blob.sha256 == shoe.meta["sha256"])) is None


def test_an_upload_of_purged_bytes_is_stored_again(
    catalog: Any, media: dict[str, uuid.UUID], tmp_path: Path
) -> None:
    keys = blob_keys(catalog, media["bag"])
    _soft_delete(catalog, media["bag"], 31 * DAY)
    purge("acme")
    assert not any(key in listing() for key in keys)

    again = ingest_bytes((tmp_path / "catalogue" / "bag.jpg").read_bytes(), "bag.jpg", "acme")

    assert again["ingested"] == 1  # rendered afresh, not reused from a blob with no objects
    fresh = uuid.UUID(str(again["media_ids"][0]))  # type: ignore[index]
    assert _media(catalog, fresh).status == MediaStatus.ready
    assert all(key in listing() for key in blob_keys(catalog, fresh))


def test_orphan_sweep_removes_stale_staged_uploads_but_not_those_in_flight(
    catalog: Any, media: dict[str, uuid.UUID]
) -> None:
    from mediamill.catalog.repository import ensure_workspace
    from mediamill.catalog.uploads import create_pending_media

    objects = store()
    for name in ("abandoned", "waiting", "fresh"):
        objects.put(
            f"incoming/acme/{name}",
            b"bytes",
            content_type="application/octet-stream",
            cache_control="private, no-store",
        )
    age_object("incoming/acme/abandoned", 2 * DAY)
    age_object("incoming/acme/waiting", 2 * DAY)
    with catalog.begin() as session:
        workspace = ensure_workspace(session, "acme")
        pending = create_pending_media(
            session,
            workspace.id,
            uploader="ann",
            filename="waiting.jpg",
            source="upload:waiting.jpg",
            incoming_key="incoming/acme/waiting",
        ).id

    planned = orphan_sweep(workspace="acme", dry_run=True)
    report = orphan_sweep(workspace="acme")

    def outcomes(result: dict[str, Any]) -> dict[str, str]:
        return {
            a["subject"]: a["status"]
            for a in result["actions"]
            if a["action"] == "object.deleted" and a["subject"].startswith("incoming/")
        }

    assert outcomes(planned) == {
        "incoming/acme/abandoned": "planned",
        "incoming/acme/waiting": "skipped",
    }
    assert outcomes(report) == {
        "incoming/acme/abandoned": "done",
        "incoming/acme/waiting": "skipped",
    }
    remaining = {o.key for o in objects.list_prefix("incoming/")}
    assert remaining == {"incoming/acme/waiting", "incoming/acme/fresh"}
    assert _media(catalog, pending).status == MediaStatus.pending
