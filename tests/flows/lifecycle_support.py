"""Helpers shared by the lifecycle flow tests: a small ingested catalogue, snapshots, time."""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from sqlalchemy import func, select, update

from mediamill.catalog.models import Attachment, AuditEvent, Blob, Media, Variant
from mediamill.catalog.repository import utcnow
from mediamill.flows.delivery import wait_for_delivery
from mediamill.flows.ingest import backfill
from mediamill.media import samples
from mediamill.settings import get_settings
from mediamill.storage.factory import open_store
from mediamill.storage.store import ObjectStore

# name -> (bytes seed, manifest entity); "shoe-copy" is the same bytes as "shoe" (dedupe).
CATALOGUE = {
    "shoe": (1, "product:42"),
    "bag": (2, "product:42"),
    "hat": (3, "page:home"),
    "shoe-copy": (1, "page:home"),
    "draft": (4, ""),
}


def ingest_catalogue(folder: Path, workspace: str = "acme") -> dict[str, uuid.UUID]:
    """Backfill the catalogue in one run (one pixel pool); media ids by name."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["path,entity,user"]
    for name, (seed, entity) in CATALOGUE.items():
        (folder / f"{name}.jpg").write_bytes(samples.photo_jpeg(160, 120, seed=seed))
        rows.append(f"{name}.jpg,{entity},ann")
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    summary = backfill(str(manifest), workspace, workers=1)
    assert summary["failed"] == 0, summary
    return {
        name: uuid.UUID(str(media_id))
        for name, media_id in zip(CATALOGUE, summary["media_ids"], strict=True)  # type: ignore[call-overload]
    }


def store() -> ObjectStore:
    return open_store(get_settings())


def listing() -> dict[str, datetime]:
    return {o.key: o.modified for o in store().list_prefix("tenants/")}


def snapshot(sessions: Any) -> dict[str, Any]:
    """Every row, the audit trail's size and every object: what a dry run must not change."""
    with sessions() as session:
        tables = {
            model.__name__: sorted(
                repr(sorted((k, str(v)) for k, v in vars(row).items() if not k.startswith("_")))
                for row in session.scalars(select(model))
            )
            for model in (Media, Blob, Variant, Attachment)
        }
        audits = session.scalar(select(func.count()).select_from(AuditEvent))
    return {**tables, "audits": audits, "objects": sorted(listing().items())}


def backdate(sessions: Any, media_id: uuid.UUID, **columns: timedelta) -> None:
    """Move a media's timestamps into the past, as if that much time had gone by."""
    now = utcnow()
    with sessions.begin() as session:
        session.execute(
            update(Media)
            .where(Media.id == media_id)
            .values({name: now - age for name, age in columns.items()})
        )


def age_object(key: str, age: timedelta) -> None:
    """Make an object of the file store look ``age`` old."""
    path = Path(store().root) / key
    stamp = time.time() - age.total_seconds()
    os.utime(path, (stamp, stamp))


def blob_keys(sessions: Any, media_id: uuid.UUID) -> list[str]:
    with sessions() as session:
        media = session.get(Media, media_id)
        assert media is not None
        assert media.blob_id is not None
        blob = session.get(Blob, media.blob_id)
        assert blob is not None
        variants = session.scalars(select(Variant.key).where(Variant.blob_id == blob.id)).all()
        return [blob.original_key, *variants]


def audit_trail(sessions: Any, media_id: uuid.UUID) -> list[tuple[str, str | None]]:
    with sessions() as session:
        rows = session.execute(
            select(AuditEvent.action, AuditEvent.actor)
            .where(AuditEvent.media_id == media_id)
            .order_by(AuditEvent.id)
        )
        return [(action, actor) for action, actor in rows]


def events_for(resource_id: str, name: str, timeout: float = 15.0) -> list[Any]:
    """Events the Prefect server recorded for one resource (delivery is asynchronous)."""
    wait_for_delivery()
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            # Built each time: the filter's default window ends when it is made.
            wanted = EventFilter(
                event=EventNameFilter(name=[name]), resource=EventResourceFilter(id=[resource_id])
            )
            page = client.read_events(filter=wanted, limit=50)
            if page.events or time.monotonic() > deadline:
                return list(page.events)
            time.sleep(0.25)


def artifact_keys(flow_run_id: str) -> set[str]:
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key for a in artifacts if a.key}
