"""Delivery jobs: an accepted webhook event keeps its run's parameters until the run exists.

So an event whose API process died before Prefect created its run is started again by
another one, instead of staying accepted with nothing running.

Revision ID: 0004_delivery_jobs
Revises: 0003_api_access
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_delivery_jobs"
down_revision: str | Sequence[str] | None = "0003_api_access"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported from the models, as in 0001, so this revision keeps
# meaning the same schema whatever the models become.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("webhook_deliveries", sa.Column("job", JSON, nullable=True))
    op.add_column("webhook_deliveries", sa.Column("retry_at", TIMESTAMP, nullable=True))
    op.create_index(op.f("ix_webhook_deliveries__retry_at"), "webhook_deliveries", ["retry_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_deliveries__retry_at"), table_name="webhook_deliveries")
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("retry_at")
        batch.drop_column("job")
