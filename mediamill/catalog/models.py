"""The catalog's tables.

A **blob** is stored bytes, one per ``(workspace, sha256)``, processed once; its
**variants** are the derived files. A **media** row is one upload: it carries what the
uploader said (filename, alt text) and points at the blob its bytes turned out to be, so a
duplicate upload is a new media row on an existing blob. **Attachments** tie media to any
entity of the host platform; **audit events** record what happened, and outlive purges.

Relationships are ``lazy="raise"``: a query that needs related rows says so
(``selectinload``/``joinedload``), so an N+1 loop fails in tests instead of in production.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mediamill.catalog.base import ID, Base, str_enum, utcnow

__all__ = [
    "ApiToken",
    "Attachment",
    "AuditEvent",
    "Blob",
    "BlobStatus",
    "Media",
    "MediaStatus",
    "MediaType",
    "QuotaSnapshot",
    "QuotaState",
    "Variant",
    "WebhookDelivery",
    "WebhookSecret",
    "Workspace",
]


class MediaStatus(enum.StrEnum):
    """Lifecycle of one upload: ``pending -> processing -> ready | failed``, then
    ``deleted`` (soft, restorable within the retention period) and finally ``purged``."""

    pending = "pending"
    processing = "processing"
    ready = "ready"
    failed = "failed"
    deleted = "deleted"
    purged = "purged"


class MediaType(enum.StrEnum):
    """What kind of content the bytes turned out to be, decided by sniffing, not by name."""

    image = "image"
    video = "video"
    model = "model"
    document = "document"


class BlobStatus(enum.StrEnum):
    """Processing state of a blob's bytes, shared by every media row pointing at it."""

    processing = "processing"
    ready = "ready"
    failed = "failed"


class QuotaState(enum.StrEnum):
    """Where a workspace's usage stands against its quota (warning from 80%)."""

    unlimited = "unlimited"
    ok = "ok"
    warning = "warning"
    exceeded = "exceeded"


# Shared column sizes, so the same kind of value has the same width in every table.
MIME_TYPE = sa.String(255)  # RFC 6838: type and subtype are each at most 127 characters
PRINCIPAL = sa.String(255)  # a user or service name as the host platform reports it
STORE_KEY = sa.String(1024)  # an object key in the store (S3 allows 1024 bytes)
ERROR_CODE = sa.String(64)


def _created_at() -> Mapped[datetime]:
    return mapped_column(default=utcnow)


def _updated_at() -> Mapped[datetime]:
    # onupdate only fires for rows the ORM flushes an UPDATE for; bulk UPDATE statements
    # must set updated_at themselves.
    return mapped_column(default=utcnow, onupdate=utcnow)


class Workspace(Base):
    """A tenant: every other row belongs to exactly one workspace."""

    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(primary_key=True)
    # What the CLI's `--workspace W` and the API accept; ids stay internal.
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    # NULL means unlimited; bytes counted over the workspace's blobs and variants.
    quota_bytes: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = _created_at()

    __table_args__ = (
        sa.CheckConstraint("quota_bytes IS NULL OR quota_bytes >= 0", name="quota_bytes"),
    )


class Blob(Base):
    """Stored bytes, unique per ``(workspace, sha256)``: stored once, processed once.

    The row is inserted with status ``processing`` *before* any pixel work. Two identical
    uploads racing each other both try the insert; the unique constraint lets exactly one
    win and the loser reuses the winner's blob, so the work is never done twice.
    ``claimed_at`` is that claim's lease: a ``processing`` blob whose lease is old belongs
    to a crashed worker and may be claimed again.
    """

    __tablename__ = "blobs"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(sa.ForeignKey("workspaces.id"))
    # Indexed on its own too: looking a hash up across workspaces (abuse reports, storage
    # audits) must not scan the table.
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    mime_type: Mapped[str] = mapped_column(MIME_TYPE)
    media_type: Mapped[MediaType] = mapped_column(str_enum(MediaType, "media_type"))
    width: Mapped[int | None]
    height: Mapped[int | None]
    # A tiny inline preview (e.g. a thumbhash) shown while the real image loads.
    placeholder: Mapped[str | None] = mapped_column(sa.Text)
    original_key: Mapped[str] = mapped_column(STORE_KEY)
    # `metadata` is reserved on declarative classes, hence the attribute name `meta`.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    status: Mapped[BlobStatus] = mapped_column(
        str_enum(BlobStatus, "blob_status"), default=BlobStatus.processing
    )
    claimed_at: Mapped[datetime | None]
    error_code: Mapped[str | None] = mapped_column(ERROR_CODE)
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()

    # The DB deletes variants with their blob (ON DELETE CASCADE); passive_deletes keeps
    # the ORM from loading them first, which lazy="raise" would refuse anyway.
    variants: Mapped[list[Variant]] = relationship(
        lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "sha256"),
        sa.CheckConstraint("length(sha256) = 64", name="sha256_length"),
        sa.CheckConstraint("size >= 0", name="size"),
        # The reclaim sweep: processing blobs ordered by how old their lease is.
        sa.Index(None, "status", "claimed_at"),
    )


class Media(Base):
    """One upload, as the uploader made it, pointing at the blob its bytes are."""

    __tablename__ = "media"

    # A UUID, not a sequence: ids appear in URLs and webhooks and must not reveal volumes
    # or be guessable, and backfills can mint them before touching the database.
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[int] = mapped_column(sa.ForeignKey("workspaces.id"))
    # NULL until the bytes are hashed, and forever for uploads that failed before that.
    # SET NULL lets the cleanup sweep delete a blob that only purged media still point at.
    blob_id: Mapped[int | None] = mapped_column(
        ID, sa.ForeignKey("blobs.id", ondelete="SET NULL"), index=True
    )
    uploader: Mapped[str | None] = mapped_column(PRINCIPAL)
    # Escaped and capped before it gets here; metadata only, never part of a storage key.
    original_filename: Mapped[str | None] = mapped_column(sa.String(255))
    media_type: Mapped[MediaType | None] = mapped_column(str_enum(MediaType, "media_type"))
    mime_type: Mapped[str | None] = mapped_column(MIME_TYPE)
    size: Mapped[int | None] = mapped_column(sa.BigInteger)
    status: Mapped[MediaStatus] = mapped_column(
        str_enum(MediaStatus, "media_status"), default=MediaStatus.pending
    )
    # error_code is for machines (stable, e.g. "too_many_pixels"); error_message for people.
    error_code: Mapped[str | None] = mapped_column(ERROR_CODE)
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    alt_text: Mapped[str | None] = mapped_column(sa.Text)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    # Where the bytes came from (a path, a URL, "manifest:row"), for people.
    source: Mapped[str | None] = mapped_column(sa.Text)
    # A stable digest of the source, for machines: a backfill that is run again finds the
    # media it already made instead of making duplicates.
    source_key: Mapped[str | None] = mapped_column(sa.String(64))
    # The Prefect flow run that ingested it; Prefect's own id, so no foreign key.
    flow_run_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()
    deleted_at: Mapped[datetime | None]
    purged_at: Mapped[datetime | None]

    blob: Mapped[Blob | None] = relationship(lazy="raise")
    workspace: Mapped[Workspace] = relationship(lazy="raise")
    attachments: Mapped[list[Attachment]] = relationship(
        lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        # Recent media of a workspace, with or without a media-type filter.
        sa.Index(None, "workspace_id", "media_type", "created_at"),
        sa.Index(None, "workspace_id", "created_at"),
        sa.Index(None, "workspace_id", "status"),
        # Not unique: the same source may legitimately be ingested twice on purpose
        # (re-upload after a purge); idempotency is the backfill's decision, made by lookup.
        sa.Index(None, "workspace_id", "source_key"),
    )


class Variant(Base):
    """A derived file of a blob, produced by one version of one variant spec.

    A spec is data; its hash is ``spec_version``. Regenerating with a changed spec writes
    new rows (and new, immutable keys) next to the old ones instead of overwriting them.
    """

    __tablename__ = "variants"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    blob_id: Mapped[int] = mapped_column(ID, sa.ForeignKey("blobs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(64))  # e.g. "optimized", "thumbnail"
    format: Mapped[str] = mapped_column(sa.String(16))  # e.g. "jpeg", "webp", "avif", "png"
    spec_version: Mapped[str] = mapped_column(sa.String(32))
    mime_type: Mapped[str] = mapped_column(MIME_TYPE)
    width: Mapped[int]
    height: Mapped[int]
    size: Mapped[int] = mapped_column(sa.BigInteger)
    key: Mapped[str] = mapped_column(STORE_KEY)
    encoder: Mapped[str] = mapped_column(sa.String(128))
    # e.g. {"libvips": "8.18.7"}: which build produced the bytes, for reproducing bugs.
    library_versions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = _created_at()

    __table_args__ = (
        sa.UniqueConstraint("blob_id", "name", "format", "spec_version"),
        sa.CheckConstraint("size >= 0", name="size"),
    )


class Attachment(Base):
    """Links a media to an entity of the host platform (a product, a page...), ordered.

    Many-to-many: one media may illustrate several entities, and an entity has an ordered
    gallery. Media with no attachment are temporary uploads.
    """

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    # Denormalised from the media so "the gallery of entity E in workspace W" is one index.
    workspace_id: Mapped[int] = mapped_column(sa.ForeignKey("workspaces.id"))
    media_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("media.id", ondelete="CASCADE"))
    entity_type: Mapped[str] = mapped_column(sa.String(64))
    entity_id: Mapped[str] = mapped_column(sa.String(128))
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = _created_at()
    created_by: Mapped[str | None] = mapped_column(PRINCIPAL)

    __table_args__ = (
        sa.UniqueConstraint("media_id", "entity_type", "entity_id"),
        sa.Index(None, "workspace_id", "entity_type", "entity_id", "position"),
    )


class AuditEvent(Base):
    """Something that happened to a workspace's media, kept after the media is purged."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(sa.ForeignKey("workspaces.id"))
    actor: Mapped[str | None] = mapped_column(PRINCIPAL)
    action: Mapped[str] = mapped_column(sa.String(64))  # e.g. "media.created", "media.ready"
    # Deliberately not a foreign key: the trail must survive the media row being purged.
    media_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    subject: Mapped[str | None] = mapped_column(sa.String(255))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = _created_at()

    __table_args__ = (sa.Index(None, "workspace_id", "created_at"),)


class QuotaSnapshot(Base):
    """A workspace's usage against its quota at one moment, written by the quota sweep.

    History, never updated: usage over time, billing, and "when did this workspace cross
    80%?". Sizes are split as `mediamill.catalog.usage` reports them: logical bytes count
    the blob of every live media (a duplicate upload counts again), physical bytes count
    each stored blob once, and each is the sum of its original and variant parts.
    """

    __tablename__ = "quota_snapshots"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(sa.ForeignKey("workspaces.id"))
    taken_at: Mapped[datetime] = _created_at()
    # The quota in force when the snapshot was taken; NULL means unlimited.
    quota_bytes: Mapped[int | None] = mapped_column(sa.BigInteger)
    state: Mapped[QuotaState] = mapped_column(str_enum(QuotaState, "quota_state"))
    media_count: Mapped[int]
    blob_count: Mapped[int]
    # Live media per type, e.g. {"image": 12, "video": 1}: a new media type needs no migration.
    media_by_type: Mapped[dict[str, Any]] = mapped_column(default=dict)
    logical_original_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    logical_variant_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    physical_original_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    physical_variant_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    # The sweep's Prefect flow run; Prefect's own id, so no foreign key.
    flow_run_id: Mapped[uuid.UUID | None]

    __table_args__ = (
        # A workspace's history, newest first.
        sa.Index(None, "workspace_id", "taken_at"),
        sa.CheckConstraint("quota_bytes IS NULL OR quota_bytes >= 0", name="quota_bytes"),
    )

    @property
    def logical_bytes(self) -> int:
        return self.logical_original_bytes + self.logical_variant_bytes

    @property
    def physical_bytes(self) -> int:
        return self.physical_original_bytes + self.physical_variant_bytes


class ApiToken(Base):
    """An API credential of one user in one workspace, with scopes.

    Only the token's SHA-256 is stored: the token is 256 random bits, so a fast hash is as
    safe as a slow one, and a request is authenticated by one indexed lookup.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(sa.ForeignKey("workspaces.id"))
    user: Mapped[str] = mapped_column(PRINCIPAL)
    name: Mapped[str | None] = mapped_column(sa.String(255))
    # The first characters of the token, so a person can tell tokens apart in a listing.
    prefix: Mapped[str] = mapped_column(sa.String(16))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    scopes: Mapped[str] = mapped_column(sa.String(64))  # space-separated, e.g. "read write"
    created_at: Mapped[datetime] = _created_at()
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    __table_args__ = (sa.Index(None, "workspace_id", "user"),)


class WebhookSecret(Base):
    """The secret a workspace's webhook senders sign with.

    Kept in clear because checking an HMAC needs it; creating a new one revokes the old.
    """

    __tablename__ = "webhook_secrets"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(sa.ForeignKey("workspaces.id"), index=True)
    secret: Mapped[str] = mapped_column(sa.String(128))
    created_at: Mapped[datetime] = _created_at()
    revoked_at: Mapped[datetime | None]


class WebhookDelivery(Base):
    """One accepted webhook event, remembered so a redelivery is acknowledged, not rerun.

    Senders deliver at least once; the unique ``(workspace, event_id)`` makes two copies
    arriving at the same moment end in one run: the second insert loses and is answered
    as a duplicate.
    """

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(sa.ForeignKey("workspaces.id"))
    event_id: Mapped[str] = mapped_column(sa.String(255))
    event_type: Mapped[str] = mapped_column(sa.String(64))
    received_at: Mapped[datetime] = _created_at()
    # The Prefect flow run it started (Prefect's own id, so no foreign key) and the media
    # it created, if any; both stay NULL until the run is dispatched.
    run_id: Mapped[uuid.UUID | None]
    media_id: Mapped[uuid.UUID | None]
    # Until its run exists: what to start (the run's kind and parameters) and when another
    # API process may start it instead, should the one that accepted it die first. Both
    # are NULL once the run exists or the event is settled another way.
    job: Mapped[dict[str, Any] | None]
    retry_at: Mapped[datetime | None]

    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "event_id"),
        sa.Index(None, "retry_at"),
        # The purge forgets a workspace's oldest settled deliveries.
        sa.Index(None, "workspace_id", "received_at"),
    )
