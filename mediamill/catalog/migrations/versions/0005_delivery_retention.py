"""Delivery retention: the purge forgets a workspace's old settled webhook deliveries.

The index lets it find them by age without reading the whole table.

Revision ID: 0005_delivery_retention
Revises: 0004_delivery_jobs
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005_delivery_retention"
down_revision: str | Sequence[str] | None = "0004_delivery_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_webhook_deliveries__workspace_id_received_at"


def upgrade() -> None:
    op.create_index(op.f(INDEX), "webhook_deliveries", ["workspace_id", "received_at"])


def downgrade() -> None:
    op.drop_index(op.f(INDEX), table_name="webhook_deliveries")
