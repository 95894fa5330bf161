"""Lifecycle queries on a real migrated catalog: attachments, delete, restore, purge rules."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mediamill.catalog import lifecycle as life
from mediamill.catalog.errors import NotFound
from mediamill.catalog.models import (
    Attachment,
    AuditEvent,
    Blob,
    BlobStatus,
    Media,
    MediaStatus,
    Workspace,
)
from tests.catalog.factories import add_blob, add_media, add_workspace, new_variant

NOW = datetime.now(UTC)
RETENTION = timedelta(days=30)
PRODUCT = life.Entity("product", "42")
PAGE = life.Entity("page", "home")


def _ready(
    session: Session, workspace: Workspace, blob: Blob | None = None, **fields: object
) -> Media:
    return add_media(session, workspace, blob, status=MediaStatus.ready, meta={}, **fields)


def _attach(session: Session, media: Media, entity: life.Entity, actor: str = "ann") -> int:
    locked = life.lock_media(session, media.id)
    attachment, _ = life.attach(session, locked, entity, actor)
    session.flush()
    return attachment.position


def _gallery(session: Session, workspace: Workspace, entity: life.Entity) -> list[uuid.UUID]:
    return [m.id for m in life.entity_media(session, workspace.id, entity)]


def _audits(session: Session, action: str) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
        )
        or 0
    )


def test_attachments_are_ordered_and_a_media_serves_many_entities(
    session: Session, workspace: Workspace
) -> None:
    first, second, third = (_ready(session, workspace) for _ in range(3))
    assert [_attach(session, m, PRODUCT) for m in (first, second, third)] == [0, 1, 2]
    assert _attach(session, second, PAGE) == 0

    assert _gallery(session, workspace, PRODUCT) == [first.id, second.id, third.id]
    assert _gallery(session, workspace, PAGE) == [second.id]
    # Attaching again is a no-op that keeps the original position.
    assert _attach(session, first, PRODUCT) == 0
    assert _audits(session, "media.attached") == 4

    assert life.detach(session, life.lock_media(session, second.id), PRODUCT, "ann")
    assert not life.detach(session, life.lock_media(session, second.id), PRODUCT, "ann")
    assert _gallery(session, workspace, PRODUCT) == [first.id, third.id]
    assert _gallery(session, workspace, PAGE) == [second.id]
    assert _attach(session, second, PRODUCT) == 3  # back at the end of the gallery


def test_another_workspaces_media_is_not_found(session: Session, workspace: Workspace) -> None:
    other = add_workspace(session, "other")
    theirs = _ready(session, other)

    with pytest.raises(NotFound):
        life.lock_media(session, theirs.id, workspace.id)
    with pytest.raises(NotFound):
        life.lock_media(session, uuid.uuid4(), workspace.id)
    assert life.lock_media(session, theirs.id, other.id).id == theirs.id
    assert life.entity_media(session, workspace.id, PRODUCT) == []


def test_upload_entity_is_the_first_attachment_and_survives_detaching(
    session: Session, workspace: Workspace
) -> None:
    ingested = _ready(session, workspace)
    # What the pipeline does for `--entity`: the attachment, made with the media.
    session.add(
        Attachment(
            workspace_id=workspace.id,
            media_id=ingested.id,
            entity_type="product",
            entity_id="42",
            position=0,
        )
    )
    session.flush()
    assert life.upload_entity(session, ingested) == PRODUCT
    _attach(session, ingested, PAGE)
    life.detach(session, life.lock_media(session, ingested.id), PRODUCT, "ann")
    assert life.upload_entity(session, ingested) == PRODUCT

    temporary = _ready(session, workspace)
    assert life.upload_entity(session, temporary) is None
    _attach(session, temporary, PAGE)  # upload-then-attach: the first entity owns it
    _attach(session, temporary, PRODUCT)
    life.detach(session, life.lock_media(session, temporary.id), PAGE, "ann")
    assert life.upload_entity(session, temporary) == PAGE


def test_deleted_media_cannot_be_attached(session: Session, workspace: Workspace) -> None:
    media = _ready(session, workspace)
    life.soft_delete(session, media, actor="ann", now=NOW, reason="user")
    with pytest.raises(life.Refused, match="restore it"):
        life.attach(session, life.lock_media(session, media.id), PRODUCT, "ann")


def test_galleries_hide_deleted_media_and_restore_brings_them_back(
    session: Session, workspace: Workspace
) -> None:
    media = _ready(session, workspace)
    _attach(session, media, PRODUCT)
    assert life.soft_delete(session, media, actor="ann", now=NOW, reason="user")
    assert not life.soft_delete(session, media, actor="ann", now=NOW, reason="user")
    assert (media.status, media.deleted_at) == (MediaStatus.deleted, NOW)
    assert _gallery(session, workspace, PRODUCT) == []

    status = life.restore(
        session, media, actor="bob", now=NOW + RETENTION - timedelta(seconds=1), retention=RETENTION
    )
    assert status == MediaStatus.ready
    assert (media.status, media.deleted_at) == (MediaStatus.ready, None)
    assert _gallery(session, workspace, PRODUCT) == [media.id]
    actors = session.execute(
        select(AuditEvent.action, AuditEvent.actor).where(AuditEvent.media_id == media.id)
    ).all()
    assert set(actors) >= {("media.deleted", "ann"), ("media.restored", "bob")}


def test_restore_is_refused_once_retention_has_run_out(
    session: Session, workspace: Workspace
) -> None:
    media = _ready(session, workspace)
    life.soft_delete(session, media, actor="ann", now=NOW, reason="user")

    with pytest.raises(life.Refused, match=r"could be restored for 30 days"):
        life.restore(session, media, actor="bob", now=NOW + RETENTION, retention=RETENTION)
    assert media.status == MediaStatus.deleted
    with pytest.raises(life.Refused, match="not deleted"):
        life.restore(session, _ready(session, workspace), actor=None, now=NOW, retention=RETENTION)


def test_a_media_deleted_mid_upload_is_restored_with_its_blobs_outcome(
    session: Session, workspace: Workspace
) -> None:
    blob = add_blob(session, workspace, status=BlobStatus.processing)
    media = add_media(session, workspace, blob, status=MediaStatus.processing, meta={})
    life.soft_delete(session, media, actor="ann", now=NOW, reason="user")
    blob.status = BlobStatus.ready  # the upload finished while the media was deleted
    session.flush()

    locked = life.lock_media(session, media.id)
    assert life.restore(session, locked, actor="ann", now=NOW, retention=RETENTION) == (
        MediaStatus.ready
    )


def test_entity_cleanup_deletes_only_media_uploaded_for_it_and_left_alone(
    session: Session, workspace: Workspace
) -> None:
    own = _ready(session, workspace)
    shared = _ready(session, workspace)
    borrowed = _ready(session, workspace)
    for media in (own, shared):
        _attach(session, media, PRODUCT)
    _attach(session, borrowed, PAGE)  # uploaded for the page, shown on the product too
    _attach(session, borrowed, PRODUCT)
    _attach(session, shared, PAGE)

    planned = life.cleanup_entity(
        session, workspace.id, PRODUCT, actor="shop", now=NOW, apply=False
    )
    assert not session.new
    assert not session.dirty
    assert _gallery(session, workspace, PRODUCT) == [own.id, shared.id, borrowed.id]

    done = life.cleanup_entity(session, workspace.id, PRODUCT, actor="shop", now=NOW, apply=True)
    session.flush()

    assert planned == done
    assert done.detached == [own.id, shared.id, borrowed.id]
    assert done.deleted == [own.id]
    assert dict(done.kept) == {
        shared.id: "still attached to 1 other entity",
        borrowed.id: "still attached to 1 other entity",
    }
    assert own.status == MediaStatus.deleted
    assert shared.status == borrowed.status == MediaStatus.ready
    assert _gallery(session, workspace, PRODUCT) == []
    assert _gallery(session, workspace, PAGE) == [borrowed.id, shared.id]
    assert _audits(session, "entity.deleted") == 1


def test_stale_uploads_are_the_settled_never_attached_ones(
    session: Session, workspace: Workspace
) -> None:
    old = NOW - timedelta(days=2)
    stale = _ready(session, workspace, created_at=old, updated_at=old)
    failed = add_media(
        session, workspace, status=MediaStatus.failed, meta={}, created_at=old, updated_at=old
    )
    attached = _ready(session, workspace, created_at=old, updated_at=old)
    _attach(session, attached, PRODUCT)
    detached = _ready(session, workspace, created_at=old, updated_at=old)  # a library item now
    _attach(session, detached, PRODUCT)
    life.detach(session, life.lock_media(session, detached.id), PRODUCT, "ann")
    add_media(
        session, workspace, status=MediaStatus.processing, meta={}, created_at=old, updated_at=old
    )
    _ready(session, workspace, created_at=old)  # changed since: restored, say
    other = add_workspace(session, "other")
    _ready(session, other, created_at=old, updated_at=old)

    found = life.stale_uploads(session, [workspace.id], NOW - timedelta(hours=24))

    assert {media_id for media_id, _ in found} == {stale.id, failed.id}
    assert life.still_stale(session, life.lock_media(session, stale.id), NOW) is None
    assert life.still_stale(session, attached, NOW) == "attached since the sweep was planned"


def test_purge_lets_go_of_the_blob_and_keeps_the_hash(
    session: Session, workspace: Workspace
) -> None:
    blob = add_blob(session, workspace, "shared", status=BlobStatus.ready)
    session.add(new_variant(blob))
    gone = _ready(session, workspace, blob)
    kept = _ready(session, workspace, blob)
    _attach(session, gone, PRODUCT)
    life.soft_delete(session, gone, actor="ann", now=NOW, reason="user")
    cutoff = NOW + RETENTION

    locked = life.lock_media(session, gone.id)
    assert not life.purge_media(
        session, locked, cutoff=NOW - timedelta(days=1), now=cutoff, actor="p"
    )
    assert life.purge_media(session, locked, cutoff=cutoff, now=cutoff, actor="p")
    session.flush()

    assert (locked.status, locked.purged_at, locked.blob_id) == (MediaStatus.purged, cutoff, None)
    assert locked.meta["sha256"] == blob.sha256
    assert life.entity_media(session, workspace.id, PRODUCT, include_deleted=True) == []
    stays = life.load_blob(session, blob.id)
    assert stays is not None
    assert life.why_blob_stays(session, stays) == "still used by 1 media"
    assert kept.blob_id == blob.id

    kept.blob_id = None  # the other user goes too
    session.flush()
    assert life.why_blob_stays(session, stays) is None
    assert life.blob_keys(stays) == [blob.original_key, f"variants/{blob.sha256}/optimized.webp"]
    life.remove_blob(session, stays, actor="p", deleted_objects=2)
    assert session.get(Blob, blob.id) is None
    assert _audits(session, "blob.purged") == 1


def test_a_processing_blob_is_never_released(session: Session, workspace: Workspace) -> None:
    blob = add_blob(session, workspace, status=BlobStatus.processing)
    assert life.why_blob_stays(session, blob) == "an upload of it is in flight"
    assert life.unused_blobs(session, [workspace.id], NOW + RETENTION) == []

    blob.status = BlobStatus.ready
    session.flush()
    assert life.unused_blobs(session, [workspace.id], NOW + RETENTION) == [(blob.id, workspace.id)]
    assert life.unused_blobs(session, [workspace.id], NOW - RETENTION) == []  # too recent


def test_a_restored_upload_gets_a_full_ttl_again(session: Session, workspace: Workspace) -> None:
    old = NOW - timedelta(days=2)
    media = _ready(session, workspace, created_at=old, updated_at=old)
    cutoff = NOW - timedelta(hours=24)
    assert life.stale_uploads(session, [workspace.id], cutoff) == [(media.id, workspace.id)]

    life.soft_delete(session, media, actor="sweep", now=NOW, reason="stale")
    life.restore(session, media, actor="ann", now=NOW, retention=RETENTION)
    session.flush()

    assert life.stale_uploads(session, [workspace.id], cutoff) == []
