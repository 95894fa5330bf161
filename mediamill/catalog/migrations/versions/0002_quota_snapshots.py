"""Quota snapshots: the quota sweep's history of each workspace's usage.

Revision ID: 0002_quota_snapshots
Revises: 0001_initial
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_quota_snapshots"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported from the models, as in 0001, so this revision keeps
# meaning the same schema whatever the models become.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)
ENUM = sa.String(32)

QUOTA_STATES = "'unlimited', 'ok', 'warning', 'exceeded'"


def upgrade() -> None:
    op.create_table(
        "quota_snapshots",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("taken_at", TIMESTAMP, nullable=False),
        sa.Column("quota_bytes", sa.BigInteger(), nullable=True),
        sa.Column("state", ENUM, nullable=False),
        sa.Column("media_count", sa.Integer(), nullable=False),
        sa.Column("blob_count", sa.Integer(), nullable=False),
        sa.Column("media_by_type", JSON, nullable=False),
        sa.Column("logical_original_bytes", sa.BigInteger(), nullable=False),
        sa.Column("logical_variant_bytes", sa.BigInteger(), nullable=False),
        sa.Column("physical_original_bytes", sa.BigInteger(), nullable=False),
        sa.Column("physical_variant_bytes", sa.BigInteger(), nullable=False),
        sa.Column("flow_run_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quota_snapshots")),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_quota_snapshots__workspace_id__workspaces"),
        ),
        sa.CheckConstraint(
            "quota_bytes IS NULL OR quota_bytes >= 0",
            name=op.f("ck_quota_snapshots__quota_bytes"),
        ),
        sa.CheckConstraint(
            f"state IN ({QUOTA_STATES})", name=op.f("ck_quota_snapshots__quota_state")
        ),
    )
    op.create_index(
        op.f("ix_quota_snapshots__workspace_id_taken_at"),
        "quota_snapshots",
        ["workspace_id", "taken_at"],
    )


def downgrade() -> None:
    # The table's index goes with it on every backend.
    op.drop_table("quota_snapshots")
