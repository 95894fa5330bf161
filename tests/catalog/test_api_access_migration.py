"""Revision 0003 adds the API's tables on a populated catalog and takes them away again."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from mediamill.catalog import migrate
from mediamill.catalog.migrate import current_revision, downgrade, upgrade

BEFORE = "0002_quota_snapshots"
API = "0003_api_access"
API_TABLES = {"api_tokens", "webhook_secrets", "webhook_deliveries"}


def tables(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_upgrade_keeps_workspaces_and_downgrade_drops_only_the_api_tables(engine: Engine) -> None:
    upgrade(engine, BEFORE)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO workspaces (slug, name, quota_bytes, created_at) "
                "VALUES ('acme', 'Acme', NULL, '2026-01-01 00:00:00')"
            )
        )

    upgrade(engine, API)

    assert tables(engine) >= API_TABLES
    inspector = sa.inspect(engine)
    assert [u["column_names"] for u in inspector.get_unique_constraints("webhook_deliveries")] == [
        ["workspace_id", "event_id"]
    ]
    assert [u["column_names"] for u in inspector.get_unique_constraints("api_tokens")] == [
        ["token_hash"]
    ]
    insert = sa.text(
        "INSERT INTO webhook_deliveries (workspace_id, event_id, event_type, received_at) "
        "VALUES (1, 'evt_1', 'upload.completed', '2026-01-02 00:00:00')"
    )
    with engine.begin() as connection:
        connection.execute(insert)
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert)  # the same event id again: at-least-once is safe

    downgrade(engine, BEFORE)

    assert current_revision(engine) == BEFORE
    assert not API_TABLES & tables(engine)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT slug FROM workspaces")).scalar_one() == "acme"


def test_offline_sql_for_postgresql() -> None:
    buffer = io.StringIO()
    config = Config(output_buffer=buffer)
    config.set_main_option("script_location", migrate.SCRIPT_LOCATION)
    config.set_main_option("sqlalchemy.url", "postgresql://mediamill@localhost/mediamill")
    command.upgrade(config, f"{BEFORE}:{API}", sql=True)
    sql = buffer.getvalue()

    assert "CREATE TABLE api_tokens" in sql
    assert "CONSTRAINT uq_webhook_deliveries__workspace_id_event_id UNIQUE" in sql
    assert "run_id UUID" in sql
    assert f"UPDATE alembic_version SET version_num='{API}'" in sql
