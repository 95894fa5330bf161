"""Catalog side of the media lifecycle: attachments, soft delete, restore, purge, sweeps.

Every function takes an open session and leaves the transaction to its caller. Functions
that change a row first re-read it under a row lock (``FOR UPDATE`` on PostgreSQL; SQLite
callers hold the write lock from ``BEGIN IMMEDIATE``) and re-check the condition that made
the change safe, so a plan computed earlier can never act on a state that has moved on.

Two rules this module owns:

**The upload entity.** A media belongs to the entity it was first attached to: the entity
given at ingest (``--entity``, a manifest row) or, for upload-then-attach, the first
``attach``. While the media still has that first attachment it is simply its oldest one
(attachment ids only grow). Before any attachment is removed, and when a never-attached
media is attached, the entity is written to ``media.meta["upload_entity"]`` so the answer
survives detaching. Deleting that entity soft-deletes the media once it is attached
nowhere else; a media without a stamp and without an attachment was never attached (a
temporary upload, swept after ``upload_ttl_hours``).

**Who keeps a blob.** Every media row that is not ``purged`` keeps its blob and the
blob's objects: soft-deleted media must stay restorable. A purged media lets go of its
blob (``blob_id`` cleared, the hash kept in ``meta["sha256"]``); a blob no media points at
and that is not ``processing`` has its objects deleted and its row removed, so a later
upload of the same bytes claims and renders a fresh blob instead of reusing one whose
objects are gone.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import ColumnElement, Select, and_, delete, exists, func, select
from sqlalchemy.orm import Session, selectinload

from mediamill.catalog.errors import CatalogError, NotFound
from mediamill.catalog.models import (
    Attachment,
    Blob,
    BlobStatus,
    Media,
    MediaStatus,
    Variant,
    Workspace,
)
from mediamill.catalog.repository import record_audit

UPLOAD_ENTITY = "upload_entity"
STATUS_BEFORE_DELETE = "status_before_delete"
MISSING_OBJECTS = "missing_objects"
GONE = (MediaStatus.deleted, MediaStatus.purged)
IN_FLIGHT = (MediaStatus.pending, MediaStatus.processing)
# Only settled uploads age out: one still being processed is an upload in flight.
SETTLED = (MediaStatus.ready, MediaStatus.failed)


class Refused(CatalogError):  # noqa: N818  (reads better at the raise site)
    """The media exists but its state forbids the change (restore too late, attach deleted)."""


class Entity(NamedTuple):
    """An entity of the host platform, as ``TYPE:ID``."""

    type: str
    id: str

    def __str__(self) -> str:
        return f"{self.type}:{self.id}"

    def as_meta(self) -> dict[str, str]:
        return {"type": self.type, "id": self.id}


def _with_record(query: Select[tuple[Media]]) -> Select[tuple[Media]]:
    """Load what ``views.media_record`` reads, so the caller can render the rows."""
    return query.options(
        selectinload(Media.blob).selectinload(Blob.variants), selectinload(Media.workspace)
    )


def lock_media(session: Session, media_id: uuid.UUID, workspace_id: int | None = None) -> Media:
    """The media under a row lock, freshly read; NotFound when absent or in another workspace.

    Another workspace's id behaves exactly like an id that does not exist.
    """
    query = (
        select(Media)
        .where(Media.id == media_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if workspace_id is not None:
        query = query.where(Media.workspace_id == workspace_id)
    media = session.scalar(_with_record(query))
    if media is None:
        raise NotFound(f"no media {media_id}")
    return media


def _stamped_entity(media: Media) -> Entity | None:
    stamped = media.meta.get(UPLOAD_ENTITY)
    if isinstance(stamped, dict) and "type" in stamped and "id" in stamped:
        return Entity(str(stamped["type"]), str(stamped["id"]))
    return None


def _oldest_attachment(session: Session, media_id: uuid.UUID) -> Entity | None:
    row = session.execute(
        select(Attachment.entity_type, Attachment.entity_id)
        .where(Attachment.media_id == media_id)
        .order_by(Attachment.id)
        .limit(1)
    ).first()
    return Entity(row[0], row[1]) if row is not None else None


def upload_entity(session: Session, media: Media) -> Entity | None:
    """The entity this media was uploaded for; None for a never-attached upload."""
    return _stamped_entity(media) or _oldest_attachment(session, media.id)


def _stamp_upload_entity(media: Media, entity: Entity) -> None:
    # Reassigned, not mutated: the JSON column only notices a new value.
    media.meta = {**media.meta, UPLOAD_ENTITY: entity.as_meta()}


def remember_upload_entity(session: Session, media: Media) -> Entity | None:
    """Write the upload entity into the media before an attachment can disappear."""
    stamped = _stamped_entity(media)
    if stamped is not None:
        return stamped
    oldest = _oldest_attachment(session, media.id)
    if oldest is not None:
        _stamp_upload_entity(media, oldest)
    return oldest


def attachment_count(session: Session, media_id: uuid.UUID) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(Attachment).where(Attachment.media_id == media_id)
        )
        or 0
    )


def attach(
    session: Session, media: Media, entity: Entity, actor: str | None
) -> tuple[Attachment, bool]:
    """Attach ``media`` (locked by the caller) at the end of the entity's gallery.

    Returns (attachment, created): attaching again is a no-op that returns the existing one.
    """
    if media.status in GONE:
        raise Refused(f"media {media.id} is {media.status.value}; restore it before attaching")
    existing = session.scalar(
        select(Attachment).where(
            Attachment.media_id == media.id,
            Attachment.entity_type == entity.type,
            Attachment.entity_id == entity.id,
        )
    )
    if existing is not None:
        return existing, False
    if remember_upload_entity(session, media) is None:
        _stamp_upload_entity(media, entity)  # upload-then-attach: the first entity owns it
    position = session.scalar(
        select(func.coalesce(func.max(Attachment.position) + 1, 0)).where(
            Attachment.workspace_id == media.workspace_id,
            Attachment.entity_type == entity.type,
            Attachment.entity_id == entity.id,
        )
    )
    attachment = Attachment(
        workspace_id=media.workspace_id,
        media_id=media.id,
        entity_type=entity.type,
        entity_id=entity.id,
        position=position or 0,
        created_by=actor,
    )
    session.add(attachment)
    record_audit(
        session,
        workspace_id=media.workspace_id,
        action="media.attached",
        actor=actor,
        media_id=media.id,
        subject=str(entity),
        details={"position": attachment.position},
    )
    return attachment, True


def detach(session: Session, media: Media, entity: Entity, actor: str | None) -> bool:
    """Remove one attachment of ``media`` (locked by the caller); False if there was none."""
    attachment = session.scalar(
        select(Attachment).where(
            Attachment.media_id == media.id,
            Attachment.entity_type == entity.type,
            Attachment.entity_id == entity.id,
        )
    )
    if attachment is None:
        return False
    remember_upload_entity(session, media)
    session.delete(attachment)
    session.flush()
    record_audit(
        session,
        workspace_id=media.workspace_id,
        action="media.detached",
        actor=actor,
        media_id=media.id,
        subject=str(entity),
        details={"position": attachment.position},
    )
    return True


def entity_media(
    session: Session, workspace_id: int, entity: Entity, *, include_deleted: bool = False
) -> list[Media]:
    """The entity's gallery in order: live media only unless asked otherwise."""
    query = (
        select(Media)
        .join(Attachment, Attachment.media_id == Media.id)
        .where(
            Attachment.workspace_id == workspace_id,
            Attachment.entity_type == entity.type,
            Attachment.entity_id == entity.id,
        )
        .order_by(Attachment.position, Attachment.id)
    )
    if not include_deleted:
        query = query.where(Media.status.not_in(GONE))
    return list(session.scalars(_with_record(query)))


def soft_delete(
    session: Session, media: Media, *, actor: str | None, now: datetime, reason: str
) -> bool:
    """Mark ``media`` (locked by the caller) deleted; False if it already was deleted or purged.

    Attachments stay, so a restore puts the media back where it was; galleries hide it.
    Objects stay until the purge: a deleted media is restorable for ``retention_days``.
    """
    if media.status in GONE:
        return False
    previous = media.status
    media.status = MediaStatus.deleted
    media.deleted_at = now
    media.meta = {**media.meta, STATUS_BEFORE_DELETE: previous.value}
    record_audit(
        session,
        workspace_id=media.workspace_id,
        action="media.deleted",
        actor=actor,
        media_id=media.id,
        details={"reason": reason, "previous_status": previous.value},
    )
    return True


def restorable_until(media: Media, retention: timedelta) -> datetime | None:
    return media.deleted_at + retention if media.deleted_at is not None else None


def restore(
    session: Session, media: Media, *, actor: str | None, now: datetime, retention: timedelta
) -> MediaStatus:
    """Undo a soft delete within the retention period; returns the status given back.

    Refused for a media that is not deleted, was purged, or whose retention has run out
    (the purge may be about to delete its objects, or already has).
    """
    if media.status == MediaStatus.purged:
        raise Refused(f"media {media.id} was purged and cannot be restored")
    if media.status != MediaStatus.deleted:
        raise Refused(f"media {media.id} is not deleted (status {media.status.value})")
    deadline = restorable_until(media, retention)
    if deadline is None or now >= deadline:
        deleted = media.deleted_at.isoformat() if media.deleted_at else "an unknown time"
        days = retention.days
        raise Refused(
            f"media {media.id} was deleted at {deleted}; it could be restored for "
            f"{days} day{'s' if days != 1 else ''} (MEDIAMILL_RETENTION_DAYS), until "
            f"{deadline.isoformat() if deadline else 'then'}"
        )
    status = _status_after_restore(media)
    meta = dict(media.meta)
    meta.pop(STATUS_BEFORE_DELETE, None)
    media.meta = meta
    media.status = status
    media.deleted_at = None
    record_audit(
        session,
        workspace_id=media.workspace_id,
        action="media.restored",
        actor=actor,
        media_id=media.id,
        details={"status": status.value},
    )
    return status


def _status_after_restore(media: Media) -> MediaStatus:
    """The status before the delete; an upload that was in flight takes its blob's outcome.

    The pipeline settles only media still waiting on a blob, so a media deleted mid-upload
    missed its blob's outcome and reads it from the blob now.
    """
    try:
        previous = MediaStatus(media.meta.get(STATUS_BEFORE_DELETE, MediaStatus.ready.value))
    except ValueError:
        previous = MediaStatus.ready
    if previous not in IN_FLIGHT or media.blob is None:
        return previous
    if media.blob.status == BlobStatus.ready:
        return MediaStatus.ready
    if media.blob.status == BlobStatus.failed:
        media.error_code = media.blob.error_code
        media.error_message = media.blob.error_message
        return MediaStatus.failed
    return MediaStatus.processing


# -- entity deleted -------------------------------------------------------------------


class EntityCleanup(NamedTuple):
    """What deleting an entity does (or did) to its media."""

    detached: list[uuid.UUID]
    deleted: list[uuid.UUID]
    kept: list[tuple[uuid.UUID, str]]  # media that stay, and why


def cleanup_entity(
    session: Session,
    workspace_id: int,
    entity: Entity,
    *,
    actor: str | None,
    now: datetime,
    apply: bool,
) -> EntityCleanup:
    """Detach every media from a deleted entity and soft-delete the ones it leaves alone.

    A media is soft-deleted only when, once detached, it is attached nowhere and it was
    uploaded for this entity; anything else (still in another gallery, uploaded for another
    entity, already deleted) is kept and the reason reported. With ``apply=False`` nothing
    is written: the same decisions are computed for a dry run. Applied, the decisions are
    taken in this transaction, on locked rows, so they match what is committed.
    """
    media_ids = list(
        session.scalars(
            select(Attachment.media_id)
            .where(
                Attachment.workspace_id == workspace_id,
                Attachment.entity_type == entity.type,
                Attachment.entity_id == entity.id,
            )
            .order_by(Attachment.position, Attachment.id)
        )
    )
    result = EntityCleanup([], [], [])
    for media_id in media_ids:
        media = (
            lock_media(session, media_id, workspace_id) if apply else _read_media(session, media_id)
        )
        owner = remember_upload_entity(session, media) if apply else upload_entity(session, media)
        if apply:
            detach(session, media, entity, actor)
            others = attachment_count(session, media.id)
        else:
            others = attachment_count(session, media.id) - 1
        result.detached.append(media.id)
        reason = _reason_to_keep(media, owner, entity, others)
        if reason is not None:
            result.kept.append((media.id, reason))
            continue
        if apply:
            soft_delete(session, media, actor=actor, now=now, reason=f"entity {entity} deleted")
        result.deleted.append(media.id)
    if apply:
        record_audit(
            session,
            workspace_id=workspace_id,
            action="entity.deleted",
            actor=actor,
            subject=str(entity),
            details={"detached": len(result.detached), "deleted": len(result.deleted)},
        )
    return result


def _read_media(session: Session, media_id: uuid.UUID) -> Media:
    media = session.get(Media, media_id)
    if media is None:
        raise NotFound(f"no media {media_id}")
    return media


def _reason_to_keep(media: Media, owner: Entity | None, entity: Entity, others: int) -> str | None:
    if media.status in GONE:
        return f"already {media.status.value}"
    if others > 0:
        return f"still attached to {others} other entit{'y' if others == 1 else 'ies'}"
    if owner != entity:
        return f"uploaded for {owner}" if owner else "not uploaded for this entity"
    return None


# -- stale temporary uploads ----------------------------------------------------------


def _never_attached() -> ColumnElement[bool]:
    """No attachment now and no stamp saying there was one."""
    return and_(
        ~exists().where(Attachment.media_id == Media.id),
        Media.meta[UPLOAD_ENTITY].as_string().is_(None),
    )


def stale_uploads(
    session: Session, workspace_ids: Sequence[int], cutoff: datetime
) -> list[tuple[uuid.UUID, int]]:
    """Settled, never-attached media unchanged since before ``cutoff``: (id, workspace).

    Age counts from the last change (``updated_at``), not the upload: a restored upload
    gets a full TTL again instead of being swept within the hour.
    """
    rows = session.execute(
        select(Media.id, Media.workspace_id)
        .where(
            Media.workspace_id.in_(workspace_ids),
            Media.status.in_(SETTLED),
            Media.updated_at < cutoff,
            _never_attached(),
        )
        .order_by(Media.updated_at, Media.id)
    )
    return [(media_id, workspace_id) for media_id, workspace_id in rows]


def still_stale(session: Session, media: Media, cutoff: datetime) -> str | None:
    """Re-check a planned stale upload on its locked row: None if still stale, else why not."""
    if media.status not in SETTLED:
        return f"status is now {media.status.value}"
    if _stamped_entity(media) is not None or attachment_count(session, media.id):
        return "attached since the sweep was planned"
    if media.updated_at >= cutoff:
        return "changed within the upload TTL"
    return None


# -- purge ----------------------------------------------------------------------------


def purgeable_media(
    session: Session, workspace_ids: Sequence[int], cutoff: datetime
) -> list[tuple[uuid.UUID, int, int | None]]:
    """Media soft-deleted before ``cutoff``: (id, workspace, blob), blob by blob."""
    rows = session.execute(
        select(Media.id, Media.workspace_id, Media.blob_id)
        .where(
            Media.workspace_id.in_(workspace_ids),
            Media.status == MediaStatus.deleted,
            Media.deleted_at <= cutoff,
        )
        .order_by(Media.blob_id, Media.deleted_at, Media.id)
    )
    return [(media_id, workspace_id, blob_id) for media_id, workspace_id, blob_id in rows]


def purge_media(
    session: Session, media: Media, *, cutoff: datetime, now: datetime, actor: str | None
) -> bool:
    """Purge ``media`` (locked by the caller) if it is still deleted since before ``cutoff``.

    False when the re-check says no (restored meanwhile). The media lets go of its blob and
    its attachments; the caller then decides whether the blob it pointed at can go.
    """
    if media.status != MediaStatus.deleted or media.deleted_at is None:
        return False
    if media.deleted_at > cutoff:
        return False
    meta = dict(media.meta)
    if media.blob is not None:
        meta["sha256"] = media.blob.sha256
    meta.pop(STATUS_BEFORE_DELETE, None)
    media.meta = meta
    media.status = MediaStatus.purged
    media.purged_at = now
    media.blob = None
    media.blob_id = None
    session.execute(delete(Attachment).where(Attachment.media_id == media.id))
    record_audit(
        session,
        workspace_id=media.workspace_id,
        action="media.purged",
        actor=actor,
        media_id=media.id,
        details={"sha256": meta.get("sha256"), "deleted_at": media.deleted_at.isoformat()},
    )
    return True


def load_blob(session: Session, blob_id: int, *, lock: bool = True) -> Blob | None:
    """The blob with its variants, freshly read (under a row lock unless told not to)."""
    query = (
        select(Blob)
        .where(Blob.id == blob_id)
        .options(selectinload(Blob.variants))
        .execution_options(populate_existing=True)
    )
    return session.scalar(query.with_for_update() if lock else query)


def blob_users(session: Session, blob_id: int) -> int:
    """How many media still point at the blob (purged media never do)."""
    return int(
        session.scalar(select(func.count()).select_from(Media).where(Media.blob_id == blob_id)) or 0
    )


def blob_keys(blob: Blob) -> list[str]:
    """Every object of the blob: its original and every variant of every spec version."""
    keys = [blob.original_key] if blob.original_key else []
    keys.extend(variant.key for variant in blob.variants)
    return list(dict.fromkeys(keys))


def why_blob_stays(session: Session, blob: Blob) -> str | None:
    """Re-check on the locked blob: None if it may be deleted now, else why not."""
    if blob.status == BlobStatus.processing:
        return "an upload of it is in flight"
    users = blob_users(session, blob.id)
    if users:
        return f"still used by {users} media"
    return None


def remove_blob(session: Session, blob: Blob, *, actor: str | None, deleted_objects: int) -> None:
    """Delete the blob row (its variants go with it); the audit keeps its hash and keys."""
    keys = blob_keys(blob)
    session.execute(delete(Blob).where(Blob.id == blob.id))
    record_audit(
        session,
        workspace_id=blob.workspace_id,
        action="blob.purged",
        actor=actor,
        subject=f"blob:{blob.sha256}",
        details={
            "blob_id": blob.id,
            "sha256": blob.sha256,
            "keys": keys,
            "objects_deleted": deleted_objects,
        },
    )


def unused_blobs(
    session: Session, workspace_ids: Sequence[int], cutoff: datetime
) -> list[tuple[int, int]]:
    """Blobs no media points at, settled before ``cutoff``: (id, workspace).

    Left over by earlier purges: a media purged while its blob was still processing leaves
    such a blob behind.
    """
    rows = session.execute(
        select(Blob.id, Blob.workspace_id)
        .where(
            Blob.workspace_id.in_(workspace_ids),
            Blob.status != BlobStatus.processing,
            Blob.updated_at <= cutoff,
            ~exists().where(Media.blob_id == Blob.id),
        )
        .order_by(Blob.id)
    )
    return [(blob_id, workspace_id) for blob_id, workspace_id in rows]


# -- objects and their catalog rows ---------------------------------------------------


def workspaces(session: Session, slug: str | None) -> dict[int, str]:
    """Workspace ids and slugs to sweep: one by slug, or every workspace."""
    query = select(Workspace.id, Workspace.slug).order_by(Workspace.id)
    if slug is not None:
        query = query.where(Workspace.slug == slug)
    return {workspace_id: found for workspace_id, found in session.execute(query)}


def referenced_keys(session: Session, workspace_id: int) -> set[str]:
    """Every key the workspace's catalog points at: blob originals and variants."""
    originals = session.scalars(select(Blob.original_key).where(Blob.workspace_id == workspace_id))
    variants = session.scalars(
        select(Variant.key)
        .join(Blob, Blob.id == Variant.blob_id)
        .where(Blob.workspace_id == workspace_id)
    )
    return {key for key in originals if key} | set(variants)


def in_flight_hashes(session: Session, workspace_id: int) -> set[str]:
    """Hashes of the workspace's blobs being processed: their objects are being written."""
    return set(
        session.scalars(
            select(Blob.sha256).where(
                Blob.workspace_id == workspace_id, Blob.status == BlobStatus.processing
            )
        )
    )


def lock_blob_by_hash(session: Session, workspace_id: int, sha256: str) -> Blob | None:
    """The blob for these bytes under a row lock, with its variants; None if there is none."""
    return session.scalar(
        select(Blob)
        .where(Blob.workspace_id == workspace_id, Blob.sha256 == sha256)
        .options(selectinload(Blob.variants))
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def key_referenced_anywhere(session: Session, workspace_id: int, key: str) -> bool:
    """Whether any blob of the workspace points at ``key``: the slow path, for foreign names."""
    original = session.scalar(
        select(exists().where(Blob.workspace_id == workspace_id, Blob.original_key == key))
    )
    variant = session.scalar(
        select(
            exists().where(
                Variant.key == key, Variant.blob_id == Blob.id, Blob.workspace_id == workspace_id
            )
        )
    )
    return bool(original or variant)


def ready_blobs(session: Session, workspace_id: int) -> list[Blob]:
    """The workspace's ready blobs with their variants, to check their objects exist."""
    return list(
        session.scalars(
            select(Blob)
            .where(Blob.workspace_id == workspace_id, Blob.status == BlobStatus.ready)
            .options(selectinload(Blob.variants))
            .order_by(Blob.id)
        )
    )


def flag_missing(
    session: Session, blob: Blob, missing: Iterable[str], *, now: datetime, actor: str | None
) -> None:
    """Record on the blob (and in the audit trail) which of its objects the store lacks."""
    keys = sorted(missing)
    blob.meta = {**blob.meta, MISSING_OBJECTS: {"keys": keys, "checked_at": now.isoformat()}}
    record_audit(
        session,
        workspace_id=blob.workspace_id,
        action="blob.missing_objects",
        actor=actor,
        subject=f"blob:{blob.sha256}",
        details={"blob_id": blob.id, "keys": keys},
    )


def clear_missing(session: Session, blob: Blob, *, actor: str | None) -> None:
    """Drop a missing-objects flag once every object is back."""
    meta = dict(blob.meta)
    meta.pop(MISSING_OBJECTS, None)
    blob.meta = meta
    record_audit(
        session,
        workspace_id=blob.workspace_id,
        action="blob.objects_found",
        actor=actor,
        subject=f"blob:{blob.sha256}",
        details={"blob_id": blob.id},
    )
