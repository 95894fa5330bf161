"""Plans and their execution on a real SQLite catalog and file store, time moved by ``now``.

Rows and objects are seeded directly (no pixel work), so each race can be staged exactly:
plan, change the world, execute.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from mediamill.catalog import access, migrate
from mediamill.catalog import lifecycle as life
from mediamill.catalog import repository as repo
from mediamill.catalog.engine import make_engine
from mediamill.catalog.models import (
    Attachment,
    AuditEvent,
    Blob,
    BlobStatus,
    Media,
    MediaStatus,
    MediaType,
    Variant,
    WebhookDelivery,
)
from mediamill.settings import get_settings
from mediamill.storage.headers import IMMUTABLE
from mediamill.storage.keys import (
    ORIGINAL_VERSION,
    media_key,
    original_filename,
    variant_filename,
    workspace_prefix,
)
from mediamill.tasks import cleanup
from mediamill.tasks.cleanup import (
    CleanupContext,
    blob_hash_of_key,
    execute_orphan_sweep,
    execute_purge,
    plan_orphan_sweep,
    plan_purge,
)

ACTOR = "test:sweep"
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@pytest.fixture
def ctx(home: Path) -> Iterator[CleanupContext]:
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    migrate.upgrade(engine)
    engine.dispose()
    context = CleanupContext.open(settings)
    yield context
    context.close()


def _workspace(ctx: CleanupContext, slug: str) -> int:
    with ctx.writing() as session:
        return repo.ensure_workspace(session, slug).id


def _key(workspace_id: int, sha: str, variant: str | None = None) -> str:
    filename = variant_filename(sha, variant, "webp") if variant else original_filename(sha, "jpg")
    return media_key(
        workspace_id=workspace_id,
        entity_type="product",
        entity_id="42",
        media_type="image",
        version="v1" if variant else ORIGINAL_VERSION,
        filename=filename,
    )


def _put(ctx: CleanupContext, key: str) -> None:
    ctx.store.put(
        key, b"bytes of " + key.encode(), content_type="image/jpeg", cache_control=IMMUTABLE
    )


def _blob(
    ctx: CleanupContext,
    workspace_id: int,
    content: str,
    status: BlobStatus = BlobStatus.ready,
    variants: tuple[str, ...] = ("thumb",),
) -> tuple[int, list[str]]:
    """A blob row with its original and variants, every object written to the store."""
    sha = hashlib.sha256(content.encode()).hexdigest()
    keys = [_key(workspace_id, sha)] + [_key(workspace_id, sha, v) for v in variants]
    for key in keys:
        _put(ctx, key)
    with ctx.writing() as session:
        blob = Blob(
            workspace_id=workspace_id,
            sha256=sha,
            size=10,
            mime_type="image/jpeg",
            media_type=MediaType.image,
            original_key=keys[0],
            status=status,
            meta={},
        )
        session.add(blob)
        session.flush()
        for name, key in zip(variants, keys[1:], strict=True):
            session.add(_variant(blob.id, name, key))
        return blob.id, keys


def _variant(blob_id: int, name: str, key: str) -> Variant:
    return Variant(
        blob_id=blob_id,
        name=name,
        format="webp",
        spec_version="v1",
        mime_type="image/webp",
        width=10,
        height=10,
        size=10,
        key=key,
        encoder="test",
    )


def _media(
    ctx: CleanupContext,
    workspace_id: int,
    blob_id: int | None,
    *,
    created_at: datetime | None = None,
    deleted_at: datetime | None = None,
    entity: life.Entity | None = None,
) -> uuid.UUID:
    with ctx.writing() as session:
        media = Media(
            workspace_id=workspace_id,
            blob_id=blob_id,
            status=MediaStatus.ready,
            meta={},
            created_at=created_at or repo.utcnow(),
            updated_at=created_at or repo.utcnow(),
        )
        session.add(media)
        session.flush()
        if entity is not None:
            life.attach(session, media, entity, "ann")
        if deleted_at is not None:
            life.soft_delete(session, media, actor="ann", now=deleted_at, reason="test")
        return media.id


def _status(ctx: CleanupContext, media_id: uuid.UUID) -> MediaStatus:
    with ctx.sessions() as session:
        media = session.get(Media, media_id)
        assert media is not None
        return media.status


def _listing(ctx: CleanupContext) -> set[str]:
    return {obj.key for obj in ctx.store.list_prefix("tenants/")}


def _snapshot(ctx: CleanupContext) -> dict[str, Any]:
    """Everything a dry run must leave alone: rows, audit trail, objects and their times."""
    with ctx.sessions() as session:
        tables = {
            model.__name__: sorted(
                repr(sorted((k, str(v)) for k, v in vars(row).items() if not k.startswith("_")))
                for row in session.scalars(select(model))
            )
            for model in (Media, Blob, Variant, Attachment)
        }
        audits = session.scalar(select(func.count()).select_from(AuditEvent))
    objects = sorted((o.key, o.modified) for o in ctx.store.list_prefix("tenants/"))
    return {**tables, "audits": audits, "objects": objects}


def _outcomes(actions: list[Any], action: str) -> dict[str, str | None]:
    """status (and reason) per media id or subject, for one kind of action."""
    return {
        (a.media_id or a.subject): (a.status if a.reason is None else f"{a.status}: {a.reason}")
        for a in actions
        if a.action == action
    }


def test_blob_hash_is_read_from_the_key_filename() -> None:
    sha = "a" * 64
    assert blob_hash_of_key(_key(1, sha)) == sha
    assert blob_hash_of_key(_key(1, sha, "thumb")) == sha
    assert blob_hash_of_key("tenants/workspace_1/notes/readme.txt") is None


def test_an_upload_attached_after_the_plan_is_not_expired(ctx: CleanupContext) -> None:
    ws = _workspace(ctx, "acme")
    old = repo.utcnow() - 2 * DAY
    lucky = _media(ctx, ws, None, created_at=old)
    doomed = _media(ctx, ws, None, created_at=old)
    recent = _media(ctx, ws, None)

    plan = plan_orphan_sweep(ctx, "acme", repo.utcnow())
    assert {m for m, _ in plan.stale_uploads} == {lucky, doomed}
    with ctx.writing() as session:
        life.attach(session, life.lock_media(session, lucky), life.Entity("product", "1"), "ann")
    actions = execute_orphan_sweep(ctx, plan, ACTOR)

    assert _outcomes(actions, "media.deleted") == {
        str(lucky): "skipped: attached since the sweep was planned",
        str(doomed): "done",
    }
    assert (_status(ctx, lucky), _status(ctx, doomed), _status(ctx, recent)) == (
        MediaStatus.ready,
        MediaStatus.deleted,
        MediaStatus.ready,
    )


def test_strays_are_deleted_unless_referenced_in_flight_young_or_elsewhere(
    ctx: CleanupContext,
) -> None:
    acme, other = _workspace(ctx, "acme"), _workspace(ctx, "other")
    blob_id, keys = _blob(ctx, acme, "kept")
    sha = hashlib.sha256(b"kept").hexdigest()
    leftover = _key(acme, sha, "tiny")  # a variant a crashed run wrote, never committed
    foreign = f"{workspace_prefix(acme)}notes/readme.txt"
    adopted = _key(acme, sha, "thumb2")  # stray at planning, referenced before execution
    in_flight_sha = hashlib.sha256(b"in flight").hexdigest()
    claimed = _key(acme, in_flight_sha, "thumb")  # its blob is claimed after planning
    theirs = _key(other, sha, "tiny")
    for key in (leftover, foreign, adopted, claimed, theirs):
        _put(ctx, key)

    young = plan_orphan_sweep(ctx, "acme", repo.utcnow())
    assert young.strays == []
    assert {a.subject for a in young.spared} == {leftover, foreign, adopted, claimed}

    plan = plan_orphan_sweep(ctx, "acme", repo.utcnow() + 2 * HOUR)
    assert {s.key for s in plan.strays} == {leftover, foreign, adopted, claimed}
    with ctx.writing() as session:
        session.add(_variant(blob_id, "thumb2", adopted))
    _blob(ctx, acme, "in flight", status=BlobStatus.processing, variants=())
    actions = execute_orphan_sweep(ctx, plan, ACTOR)

    assert _outcomes(actions, "object.deleted") == {
        leftover: "done",
        foreign: "done",
        adopted: "skipped: referenced since the sweep was planned",
        claimed: "skipped: its upload is in flight",
    }
    assert _listing(ctx) == {*keys, adopted, claimed, theirs, _key(acme, in_flight_sha)}
    with ctx.sessions() as session:
        audited = session.scalars(
            select(AuditEvent.subject).where(AuditEvent.action == "object.deleted")
        ).all()
    assert sorted(audited) == sorted([leftover, foreign])


def test_objects_of_a_processing_blob_are_never_swept(ctx: CleanupContext) -> None:
    acme = _workspace(ctx, "acme")
    _, keys = _blob(ctx, acme, "uploading", status=BlobStatus.processing, variants=())
    sha = hashlib.sha256(b"uploading").hexdigest()
    written = [_key(acme, sha, v) for v in ("optimized", "thumb")]  # not committed yet
    for key in written:
        _put(ctx, key)

    plan = plan_orphan_sweep(ctx, "acme", repo.utcnow() + DAY)
    execute_orphan_sweep(ctx, plan, ACTOR)

    assert plan.strays == []
    assert {a.reason for a in plan.spared} == {"its upload is in flight"}
    assert _listing(ctx) == {*keys, *written}


def test_a_missing_object_is_flagged_then_cleared_when_it_is_back(ctx: CleanupContext) -> None:
    acme = _workspace(ctx, "acme")
    blob_id, (_, thumb) = _blob(ctx, acme, "damaged")
    ctx.store.delete_many([thumb])

    actions = execute_orphan_sweep(ctx, plan_orphan_sweep(ctx, None, repo.utcnow()), ACTOR)

    assert [(a.action, a.status, a.details["keys"]) for a in actions] == [
        ("blob.missing_objects", "done", [thumb])
    ]
    with ctx.sessions() as session:
        blob = session.get(Blob, blob_id)
        assert blob is not None
        assert blob.meta[life.MISSING_OBJECTS]["keys"] == [thumb]

    _put(ctx, thumb)
    again = execute_orphan_sweep(ctx, plan_orphan_sweep(ctx, None, repo.utcnow()), ACTOR)

    assert [(a.action, a.status) for a in again] == [("blob.objects_found", "done")]
    with ctx.sessions() as session:
        blob = session.get(Blob, blob_id)
        assert blob is not None
        assert life.MISSING_OBJECTS not in blob.meta


def test_purge_deletes_the_objects_of_unused_blobs_and_only_those(ctx: CleanupContext) -> None:
    acme = _workspace(ctx, "acme")
    now = repo.utcnow()
    expired = now - 31 * DAY
    alone_blob, alone_keys = _blob(ctx, acme, "alone", variants=("thumb", "tiny"))
    shared_blob, shared_keys = _blob(ctx, acme, "shared")
    recent_blob, recent_keys = _blob(ctx, acme, "recent")
    alone = _media(ctx, acme, alone_blob, deleted_at=expired, entity=life.Entity("product", "1"))
    shared_gone = _media(ctx, acme, shared_blob, deleted_at=expired)
    shared_live = _media(ctx, acme, shared_blob)
    recent = _media(ctx, acme, recent_blob, deleted_at=now - 5 * DAY)
    before = _listing(ctx)

    actions = execute_purge(ctx, plan_purge(ctx, "acme", now), ACTOR)

    assert _outcomes(actions, "media.purged") == {str(alone): "done", str(shared_gone): "done"}
    assert before - _listing(ctx) == set(alone_keys)
    assert {*shared_keys, *recent_keys} <= _listing(ctx)
    with ctx.sessions() as session:
        assert session.get(Blob, alone_blob) is None
        assert session.get(Blob, shared_blob) is not None
        purged = session.get(Media, alone)
        assert purged is not None
        assert (purged.status, purged.blob_id) == (MediaStatus.purged, None)
        assert purged.purged_at is not None
        assert purged.meta["sha256"] == hashlib.sha256(b"alone").hexdigest()
        assert session.scalars(select(Attachment)).all() == []
    assert _status(ctx, shared_live) == MediaStatus.ready
    assert _status(ctx, recent) == MediaStatus.deleted


def test_purge_rechecks_restores_and_new_users_of_the_blob(ctx: CleanupContext) -> None:
    acme = _workspace(ctx, "acme")
    now = repo.utcnow()
    restored_blob, restored_keys = _blob(ctx, acme, "restored")
    reused_blob, reused_keys = _blob(ctx, acme, "reused")
    restored = _media(ctx, acme, restored_blob, deleted_at=now)
    reused = _media(ctx, acme, reused_blob, deleted_at=now)

    later = now + 31 * DAY  # the plan is made when both are past retention
    plan = plan_purge(ctx, "acme", later)
    with ctx.writing() as session:
        life.restore(
            session, life.lock_media(session, restored), actor="ann", now=now, retention=30 * DAY
        )
    duplicate = _media(ctx, acme, reused_blob)  # a new upload of the same bytes reuses the blob
    actions = execute_purge(ctx, plan, ACTOR)

    assert _outcomes(actions, "media.purged") == {
        str(restored): "skipped: restored since planned",
        str(reused): "done",
    }
    assert [(a.status, a.reason) for a in actions if a.action == "blob.purged"] == [
        ("skipped", "still used by 1 media"),
        ("skipped", "still used by 1 media"),
    ]
    assert {*restored_keys, *reused_keys} <= _listing(ctx)
    assert _status(ctx, duplicate) == MediaStatus.ready


def test_planning_changes_nothing(ctx: CleanupContext) -> None:
    acme = _workspace(ctx, "acme")
    now = repo.utcnow()
    blob_id, (_, thumb) = _blob(ctx, acme, "damaged")
    ctx.store.delete_many([thumb])
    _media(ctx, acme, blob_id, deleted_at=now - 40 * DAY)
    _media(ctx, acme, None, created_at=now - 2 * DAY)
    _put(ctx, _key(acme, "b" * 64, "thumb"))
    before = _snapshot(ctx)

    orphans = plan_orphan_sweep(ctx, None, now + 2 * HOUR)
    purge = plan_purge(ctx, None, now)

    assert {a.action for a in orphans.planned()} == {
        "media.deleted",
        "object.deleted",
        "blob.missing_objects",
    }
    assert {a.action for a in purge.planned()} == {"media.purged", "blob.purged"}
    assert _snapshot(ctx) == before


def test_a_blob_left_without_media_is_purged_unless_in_flight(ctx: CleanupContext) -> None:
    """What a media purged while its blob was still processing leaves behind."""
    acme = _workspace(ctx, "acme")
    left_blob, left_keys = _blob(ctx, acme, "left behind")
    _, flight_keys = _blob(ctx, acme, "in flight", status=BlobStatus.processing)

    too_soon = execute_purge(ctx, plan_purge(ctx, "acme", repo.utcnow()), ACTOR)
    actions = execute_purge(ctx, plan_purge(ctx, "acme", repo.utcnow() + 2 * HOUR), ACTOR)

    assert too_soon == []
    assert [(a.action, a.status, a.details["blob_id"]) for a in actions] == [
        ("blob.purged", "done", left_blob)
    ]
    assert _listing(ctx) == set(flight_keys)
    assert not set(left_keys) & _listing(ctx)


# -- webhook deliveries -----------------------------------------------------------------


def _delivery(
    ctx: CleanupContext, workspace_id: int, event_id: str, age: timedelta, waiting: bool = False
) -> None:
    """An accepted event received ``age`` ago; a ``waiting`` one has its run still to start."""
    with ctx.writing() as session:
        delivery_id = access.claim_delivery(
            session,
            workspace_id,
            event_id,
            "entity.deleted",
            job={"kind": "entity-cleanup", "parameters": {}} if waiting else None,
            retry_at=repo.utcnow() if waiting else None,
        )
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(received_at=repo.utcnow() - age)
        )


def _deliveries(ctx: CleanupContext) -> set[tuple[int, str]]:
    with ctx.sessions() as session:
        rows = session.execute(select(WebhookDelivery.workspace_id, WebhookDelivery.event_id))
        return {(workspace_id, event_id) for workspace_id, event_id in rows}


def test_purge_forgets_old_settled_deliveries_of_its_workspace_only(
    ctx: CleanupContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cleanup, "DELIVERY_BATCH", 1)  # several transactions for two rows
    acme, globex = _workspace(ctx, "acme"), _workspace(ctx, "globex")
    _delivery(ctx, acme, "evt_old", 40 * DAY)
    _delivery(ctx, acme, "evt_older", 400 * DAY)
    _delivery(ctx, acme, "evt_recent", 29 * DAY)
    _delivery(ctx, acme, "evt_waiting", 40 * DAY, waiting=True)
    _delivery(ctx, globex, "evt_theirs", 40 * DAY)
    everything = _deliveries(ctx)

    plan = plan_purge(ctx, "acme", repo.utcnow())
    planned = [(a.action, a.workspace, a.status, a.details["count"]) for a in plan.planned()]
    assert planned == [("deliveries.forgotten", "acme", "planned", 2)]
    assert _deliveries(ctx) == everything  # planning (a dry run) forgets nothing

    actions = execute_purge(ctx, plan, ACTOR)

    done = [(a.action, a.workspace, a.status, a.details["count"]) for a in actions]
    assert done == [("deliveries.forgotten", "acme", "done", 2)]
    assert _deliveries(ctx) == {(acme, "evt_recent"), (acme, "evt_waiting"), (globex, "evt_theirs")}
    with ctx.sessions() as session:
        (audit,) = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "deliveries.forgotten")
        )
        assert (audit.workspace_id, audit.actor, audit.details["count"]) == (acme, ACTOR, 2)
    # A forgotten event delivered again is accepted again; a remembered one is not.
    with ctx.writing() as session:
        assert access.claim_delivery(session, acme, "evt_old", "entity.deleted") is not None
        assert access.claim_delivery(session, acme, "evt_recent", "entity.deleted") is None
    (again,) = execute_purge(ctx, plan, ACTOR)  # the same plan run twice
    assert (again.status, again.reason, again.details["count"]) == (
        "skipped",
        "forgotten since planned",
        0,
    )
    assert execute_purge(ctx, plan_purge(ctx, "acme", repo.utcnow()), ACTOR) == []
