"""API access: tokens, webhook secrets and the webhook deliveries already accepted.

Revision ID: 0003_api_access
Revises: 0002_quota_snapshots
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_api_access"
down_revision: str | Sequence[str] | None = "0002_quota_snapshots"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported from the models, as in 0001, so this revision keeps
# meaning the same schema whatever the models become.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
PRINCIPAL = sa.String(255)


def _workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"], ["workspaces.id"], name=op.f(f"fk_{table}__workspace_id__workspaces")
    )


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("user", PRINCIPAL, nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=True),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        _workspace_fk("api_tokens"),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens__token_hash")),
    )
    op.create_index(
        op.f("ix_api_tokens__workspace_id_user"), "api_tokens", ["workspace_id", "user"]
    )
    op.create_table(
        "webhook_secrets",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_secrets")),
        _workspace_fk("webhook_secrets"),
    )
    op.create_index(op.f("ix_webhook_secrets__workspace_id"), "webhook_secrets", ["workspace_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column("media_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        _workspace_fk("webhook_deliveries"),
        sa.UniqueConstraint(
            "workspace_id", "event_id", name=op.f("uq_webhook_deliveries__workspace_id_event_id")
        ),
    )


def downgrade() -> None:
    # Each table's indexes and constraints go with it on every backend.
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_secrets")
    op.drop_table("api_tokens")
