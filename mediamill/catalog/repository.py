"""Catalog queries the pipeline and the CLI share.

Every function takes an open session and leaves the transaction to its caller, so a stage
can group its writes into one commit. Every query is scoped by workspace.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, distinct, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from mediamill.catalog.base import refuse_overlong_strings
from mediamill.catalog.models import (
    AuditEvent,
    Blob,
    BlobStatus,
    Media,
    MediaStatus,
    MediaType,
    Variant,
    Workspace,
)

# The tables behind the models, for the statements that skip the unit of work.
BLOBS = cast(Table, Blob.__table__)
MEDIA = cast(Table, Media.__table__)
VARIANTS = cast(Table, Variant.__table__)
AUDIT_EVENTS = cast(Table, AuditEvent.__table__)

VariantId = tuple[str, str, str]
"""(name, format, spec_version): what identifies a variant of one blob."""

# The statements that claim and finish a blob, built once. A backfill runs them for every blob on
# the process that feeds the pixel workers; built afresh, each cost about 0.2 ms of that
# process's CPU in construction and cache-key generation, reused about 0.04 ms. An UPDATE
# without ``.values()`` sets the columns its parameters name.
_LOCK_BLOB_FOR_FINISH = (
    select(
        BLOBS.c.id,
        BLOBS.c.workspace_id,
        BLOBS.c.media_type,
        BLOBS.c.mime_type,
        BLOBS.c.size,
        BLOBS.c["metadata"],
    )
    .where(BLOBS.c.id == bindparam("blob_id"))
    .with_for_update()
)
_VARIANT_IDS_OF_BLOBS = select(
    VARIANTS.c.blob_id, VARIANTS.c.name, VARIANTS.c.format, VARIANTS.c.spec_version
).where(VARIANTS.c.blob_id.in_(bindparam("blob_ids", expanding=True)))
_INSERT_VARIANTS = insert(VARIANTS)
_UPDATE_BLOB = update(BLOBS).where(BLOBS.c.id == bindparam("blob_id"))
_MEDIA_WAITING_ON_BLOB = select(MEDIA.c.id, MEDIA.c.uploader).where(
    MEDIA.c.blob_id == bindparam("blob_id"),
    MEDIA.c.status.in_([MediaStatus.pending, MediaStatus.processing]),
)
_SETTLE_MEDIA = update(MEDIA).where(MEDIA.c.id.in_(bindparam("media_ids", expanding=True)))
_INSERT_AUDIT_EVENTS = insert(AUDIT_EVENTS)
# Registration claims each new blob with one of these, also once per blob.
_CLAIM_BLOB = insert(BLOBS).returning(BLOBS.c.id)


def utcnow() -> datetime:
    return datetime.now(UTC)


def find_workspace(session: Session, slug: str) -> Workspace | None:
    return session.scalar(select(Workspace).where(Workspace.slug == slug))


def ensure_workspace(session: Session, slug: str) -> Workspace:
    """The workspace called ``slug``, created on first use; safe under concurrent callers."""
    existing = find_workspace(session, slug)
    if existing is not None:
        return existing
    try:
        with session.begin_nested():
            workspace = Workspace(slug=slug, name=slug)
            session.add(workspace)
        return workspace
    except IntegrityError:
        winner = find_workspace(session, slug)
        assert winner is not None
        return winner


def media_by_source_keys(
    session: Session, workspace_id: int, source_keys: Iterable[str]
) -> dict[str, Media]:
    """The newest live media per source key, to make re-running a backfill a no-op."""
    keys = sorted(set(source_keys))
    if not keys:
        return {}
    rows = session.scalars(
        select(Media)
        .where(
            Media.workspace_id == workspace_id,
            Media.source_key.in_(keys),
            Media.status.not_in([MediaStatus.deleted, MediaStatus.purged]),
        )
        .order_by(Media.created_at)
    )
    return {row.source_key: row for row in rows if row.source_key is not None}


def count_finished_sources(
    session: Session, workspace_id: int, source_keys: Iterable[str], chunk: int = 500
) -> int:
    """How many of these backfill sources already ended ready or failed: a rerun's no-ops."""
    keys = sorted(set(source_keys))
    finished = 0
    for start in range(0, len(keys), chunk):
        finished += (
            session.scalar(
                select(func.count(distinct(Media.source_key))).where(
                    Media.workspace_id == workspace_id,
                    Media.source_key.in_(keys[start : start + chunk]),
                    Media.status.in_([MediaStatus.ready, MediaStatus.failed]),
                )
            )
            or 0
        )
    return finished


def blobs_by_sha(session: Session, workspace_id: int, digests: Iterable[str]) -> dict[str, Blob]:
    wanted = sorted(set(digests))
    if not wanted:
        return {}
    rows = session.scalars(
        select(Blob).where(Blob.workspace_id == workspace_id, Blob.sha256.in_(wanted))
    )
    return {row.sha256: row for row in rows}


def lock_blob(session: Session, blob_id: int) -> Blob:
    """Re-read a blob under a row lock so finishing it and linking to it serialise."""
    blob = session.scalar(
        select(Blob)
        .where(Blob.id == blob_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if blob is None:
        raise LookupError(f"blob {blob_id} vanished")
    return blob


def claim_blob(
    session: Session,
    *,
    workspace_id: int,
    sha256: str,
    size: int,
    mime_type: str,
    media_type: MediaType,
    original_key: str,
    meta: dict[str, Any] | None = None,
) -> tuple[Blob, bool]:
    """Insert the blob for this content as ``processing``; returns (blob, claimed_by_us).

    The unique (workspace, sha256) constraint decides races: the loser's insert fails
    inside a savepoint and it gets the winner's row. The savepoint is the connection's,
    not the session's, which would snapshot every row the session holds for each blob a
    registration batch claims; pending rows stay pending (no autoflush), so a batch writes
    its media in one statement at the end.
    """
    values = {
        "workspace_id": workspace_id,
        "sha256": sha256,
        "size": size,
        "mime_type": mime_type,
        "media_type": media_type,
        "original_key": original_key,
        "metadata": meta or {},
        "status": BlobStatus.processing,
        "claimed_at": utcnow(),
    }
    refuse_overlong_strings(BLOBS, values)
    connection = session.connection()
    try:
        with connection.begin_nested():
            claimed = connection.execute(_CLAIM_BLOB, values).scalar_one()
    except IntegrityError:
        with session.no_autoflush:
            return blobs_by_sha(session, workspace_id, [sha256])[sha256], False
    with session.no_autoflush:
        blob = session.get(Blob, claimed)
    assert blob is not None  # inserted by this transaction a statement ago
    return blob, True


def reclaim_blob(session: Session, blob: Blob) -> None:
    """Take over a blob whose previous claim was abandoned (crash, expired lease)."""
    blob.status = BlobStatus.processing
    blob.claimed_at = utcnow()
    blob.error_code = None
    blob.error_message = None


def lease_expired(blob: Blob, lease: timedelta) -> bool:
    return blob.claimed_at is None or blob.claimed_at + lease < utcnow()


def variant_ids(session: Session, blob_ids: Sequence[int]) -> dict[int, set[VariantId]]:
    """Which (name, format, spec_version) each blob already has."""
    return _variant_ids_on(session.connection(), blob_ids)


def _variant_ids_on(connection: Connection, blob_ids: Sequence[int]) -> dict[int, set[VariantId]]:
    found: dict[int, set[VariantId]] = {blob_id: set() for blob_id in blob_ids}
    if not blob_ids:
        return found
    rows = connection.execute(_VARIANT_IDS_OF_BLOBS, {"blob_ids": list(blob_ids)})
    for blob_id, name, fmt, version in rows:
        found[blob_id].add((name, fmt, version))
    return found


@dataclass(frozen=True)
class NewVariant:
    """A variant to record: what a render made, and the key its bytes were stored under."""

    name: str
    format: str
    spec_version: str
    mime_type: str
    width: int
    height: int
    size: int
    key: str
    encoder: str
    library_versions: dict[str, str]


def add_variants(session: Session, blob_id: int, variants: Iterable[NewVariant]) -> int:
    """Insert the variants the blob does not have yet; a rerun adds nothing twice.

    One multi-row INSERT on the session's connection rather than the unit of work: a
    backfill commits every blob on its orchestrating process, whose CPU the pixel workers
    share.
    """
    connection = session.connection()
    have = _variant_ids_on(connection, [blob_id])[blob_id]
    rows: list[dict[str, Any]] = []
    for variant in variants:
        identity = (variant.name, variant.format, variant.spec_version)
        if identity in have:
            continue
        have.add(identity)
        row = {**vars(variant), "blob_id": blob_id}
        refuse_overlong_strings(VARIANTS, row)
        rows.append(row)
    if rows:
        connection.execute(_INSERT_VARIANTS, rows)
    return len(rows)


@dataclass(frozen=True)
class LockedBlob:
    """What finishing a blob reads of it, under its row lock."""

    id: int
    workspace_id: int
    media_type: MediaType
    mime_type: str
    size: int
    meta: dict[str, Any]


def lock_blob_for_finish(session: Session, blob_id: int) -> LockedBlob:
    """Lock a blob's row and read what finishing it needs, without the unit of work.

    The same row lock as `lock_blob`, so finishing a blob and linking to it serialise.
    """
    row = session.connection().execute(_LOCK_BLOB_FOR_FINISH, {"blob_id": blob_id}).one_or_none()
    if row is None:
        raise LookupError(f"blob {blob_id} vanished")
    return LockedBlob(*row)


def update_blob(session: Session, blob_id: int, values: dict[str, Any]) -> None:
    """Set columns of one blob (keyed by column name) and its ``updated_at``."""
    # The prebuilt UPDATE would skip a name that is no column, where ``.values()`` refused it.
    unknown = values.keys() - BLOBS.c.keys()
    if unknown:
        raise ValueError(f"blobs has no column {', '.join(sorted(unknown))}")
    refuse_overlong_strings(BLOBS, values)
    session.connection().execute(
        _UPDATE_BLOB, {**values, "updated_at": utcnow(), "blob_id": blob_id}
    )


def settle_waiting_media(
    session: Session,
    blob: Blob | LockedBlob,
    *,
    status: MediaStatus,
    error_code: str | None = None,
    error_message: str | None = None,
    details: dict[str, Any] | None = None,
) -> list[uuid.UUID]:
    """Move every media still waiting on ``blob`` to its outcome, audited; returns their ids.

    Statements on the session's connection: the caller holds no media rows to keep in step.
    """
    connection = session.connection()
    waiting = list(connection.execute(_MEDIA_WAITING_ON_BLOB, {"blob_id": blob.id}))
    if not waiting:
        return []
    ids = [media_id for media_id, _ in waiting]
    now = utcnow()
    connection.execute(
        _SETTLE_MEDIA,
        {
            "media_ids": ids,
            "status": status,
            "error_code": error_code,
            "error_message": error_message,
            "media_type": blob.media_type,
            "mime_type": blob.mime_type,
            "size": blob.size,
            "updated_at": now,
        },
    )
    audit = details or ({"code": error_code, "message": error_message} if error_code else {})
    connection.execute(
        _INSERT_AUDIT_EVENTS,
        [
            {
                "workspace_id": blob.workspace_id,
                "action": f"media.{status.value}",
                "actor": uploader,
                "media_id": media_id,
                "subject": None,
                "details": audit,
                "created_at": now,
            }
            for media_id, uploader in waiting
        ],
    )
    return ids


def get_media(
    session: Session, media_id: uuid.UUID, workspace_id: int | None = None
) -> Media | None:
    """One media with its blob and variants loaded; None when absent or in another workspace."""
    query = (
        select(Media)
        .where(Media.id == media_id)
        .options(
            selectinload(Media.blob).selectinload(Blob.variants),
            selectinload(Media.workspace),
        )
    )
    if workspace_id is not None:
        query = query.where(Media.workspace_id == workspace_id)
    return session.scalar(query)


def get_many_media(session: Session, media_ids: Sequence[uuid.UUID]) -> list[Media]:
    """Media in the order asked for, with blob, variants and workspace loaded."""
    rows = session.scalars(
        select(Media)
        .where(Media.id.in_(media_ids))
        .options(
            selectinload(Media.blob).selectinload(Blob.variants),
            selectinload(Media.workspace),
        )
    )
    by_id = {row.id: row for row in rows}
    return [by_id[media_id] for media_id in media_ids if media_id in by_id]


def recent_media(
    session: Session,
    workspace_id: int,
    *,
    media_type: MediaType | None = None,
    limit: int = 100,
    include_deleted: bool = False,
) -> list[Media]:
    """Newest first, served by the (workspace, type, created_at) index."""
    query = select(Media).where(Media.workspace_id == workspace_id)
    if media_type is not None:
        query = query.where(Media.media_type == media_type)
    if not include_deleted:
        query = query.where(Media.status.not_in([MediaStatus.deleted, MediaStatus.purged]))
    query = (
        query.order_by(Media.created_at.desc(), Media.id.desc())
        .limit(limit)
        .options(
            selectinload(Media.blob).selectinload(Blob.variants),
            selectinload(Media.workspace),
        )
    )
    return list(session.scalars(query))


def record_audit(
    session: Session,
    *,
    workspace_id: int,
    action: str,
    actor: str | None,
    media_id: uuid.UUID | None = None,
    subject: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEvent(
            workspace_id=workspace_id,
            action=action,
            actor=actor,
            media_id=media_id,
            subject=subject,
            details=details or {},
        )
    )
