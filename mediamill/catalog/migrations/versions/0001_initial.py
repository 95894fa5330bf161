"""Initial catalog: workspaces, blobs, media, variants, attachments, audit events.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_initial"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The column types as the database sees them, spelled out here rather than imported from
# the models so this revision keeps meaning the same schema whatever the models become.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)
ENUM = sa.String(32)

MEDIA_TYPES = "'image', 'video', 'model', 'document'"
BLOB_STATUSES = "'processing', 'ready', 'failed'"
MEDIA_STATUSES = "'pending', 'processing', 'ready', 'failed', 'deleted', 'purged'"


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("quota_bytes", sa.BigInteger(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspaces")),
        sa.UniqueConstraint("slug", name=op.f("uq_workspaces__slug")),
        sa.CheckConstraint(
            "quota_bytes IS NULL OR quota_bytes >= 0", name=op.f("ck_workspaces__quota_bytes")
        ),
    )

    op.create_table(
        "blobs",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mime_type", sa.String(255), nullable=False),
        sa.Column("media_type", ENUM, nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("placeholder", sa.Text(), nullable=True),
        sa.Column("original_key", sa.String(1024), nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("status", ENUM, nullable=False),
        sa.Column("claimed_at", TIMESTAMP, nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blobs")),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_blobs__workspace_id__workspaces")
        ),
        sa.UniqueConstraint("workspace_id", "sha256", name=op.f("uq_blobs__workspace_id_sha256")),
        sa.CheckConstraint("length(sha256) = 64", name=op.f("ck_blobs__sha256_length")),
        sa.CheckConstraint("size >= 0", name=op.f("ck_blobs__size")),
        sa.CheckConstraint(f"media_type IN ({MEDIA_TYPES})", name=op.f("ck_blobs__media_type")),
        sa.CheckConstraint(f"status IN ({BLOB_STATUSES})", name=op.f("ck_blobs__blob_status")),
    )
    op.create_index(op.f("ix_blobs__sha256"), "blobs", ["sha256"])
    op.create_index(op.f("ix_blobs__status_claimed_at"), "blobs", ["status", "claimed_at"])

    op.create_table(
        "media",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("blob_id", ID, nullable=True),
        sa.Column("uploader", sa.String(255), nullable=True),
        sa.Column("original_filename", sa.String(255), nullable=True),
        sa.Column("media_type", ENUM, nullable=True),
        sa.Column("mime_type", sa.String(255), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("status", ENUM, nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("alt_text", sa.Text(), nullable=True),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("source_key", sa.String(64), nullable=True),
        sa.Column("flow_run_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("deleted_at", TIMESTAMP, nullable=True),
        sa.Column("purged_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media")),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_media__workspace_id__workspaces")
        ),
        sa.ForeignKeyConstraint(
            ["blob_id"], ["blobs.id"], name=op.f("fk_media__blob_id__blobs"), ondelete="SET NULL"
        ),
        sa.CheckConstraint(f"media_type IN ({MEDIA_TYPES})", name=op.f("ck_media__media_type")),
        sa.CheckConstraint(f"status IN ({MEDIA_STATUSES})", name=op.f("ck_media__media_status")),
    )
    op.create_index(op.f("ix_media__blob_id"), "media", ["blob_id"])
    op.create_index(
        op.f("ix_media__workspace_id_media_type_created_at"),
        "media",
        ["workspace_id", "media_type", "created_at"],
    )
    op.create_index(
        op.f("ix_media__workspace_id_created_at"), "media", ["workspace_id", "created_at"]
    )
    op.create_index(op.f("ix_media__workspace_id_status"), "media", ["workspace_id", "status"])
    op.create_index(
        op.f("ix_media__workspace_id_source_key"), "media", ["workspace_id", "source_key"]
    )

    op.create_table(
        "variants",
        sa.Column("id", ID, nullable=False),
        sa.Column("blob_id", ID, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("spec_version", sa.String(32), nullable=False),
        sa.Column("mime_type", sa.String(255), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("encoder", sa.String(128), nullable=False),
        sa.Column("library_versions", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_variants")),
        sa.ForeignKeyConstraint(
            ["blob_id"], ["blobs.id"], name=op.f("fk_variants__blob_id__blobs"), ondelete="CASCADE"
        ),
        sa.UniqueConstraint(
            "blob_id",
            "name",
            "format",
            "spec_version",
            name=op.f("uq_variants__blob_id_name_format_spec_version"),
        ),
        sa.CheckConstraint("size >= 0", name=op.f("ck_variants__size")),
    )

    op.create_table(
        "attachments",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("media_id", sa.Uuid(), nullable=False),
        sa.Column("entity_type", sa.String(64), nullable=False),
        sa.Column("entity_id", sa.String(128), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_attachments__workspace_id__workspaces"),
        ),
        sa.ForeignKeyConstraint(
            ["media_id"],
            ["media.id"],
            name=op.f("fk_attachments__media_id__media"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "media_id",
            "entity_type",
            "entity_id",
            name=op.f("uq_attachments__media_id_entity_type_entity_id"),
        ),
    )
    op.create_index(
        op.f("ix_attachments__workspace_id_entity_type_entity_id_position"),
        "attachments",
        ["workspace_id", "entity_type", "entity_id", "position"],
    )

    op.create_table(
        "audit_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("media_id", sa.Uuid(), nullable=True),
        sa.Column("subject", sa.String(255), nullable=True),
        sa.Column("details", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_audit_events__workspace_id__workspaces"),
        ),
    )
    op.create_index(op.f("ix_audit_events__media_id"), "audit_events", ["media_id"])
    op.create_index(
        op.f("ix_audit_events__workspace_id_created_at"),
        "audit_events",
        ["workspace_id", "created_at"],
    )


def downgrade() -> None:
    # Children before parents; a table's indexes go with it on every backend.
    op.drop_table("audit_events")
    op.drop_table("attachments")
    op.drop_table("variants")
    op.drop_table("media")
    op.drop_table("blobs")
    op.drop_table("workspaces")
