"""Revision 0002 adds quota_snapshots on a populated catalog and takes it away again."""

from __future__ import annotations

import io

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from mediamill.catalog import migrate
from mediamill.catalog.migrate import current_revision, downgrade, upgrade

BEFORE = "0001_initial"
QUOTAS = "0002_quota_snapshots"


def tables(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_upgrade_keeps_workspaces_and_downgrade_drops_only_the_snapshots(engine: Engine) -> None:
    upgrade(engine, BEFORE)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO workspaces (slug, name, quota_bytes, created_at) "
                "VALUES ('acme', 'Acme', 5000, '2026-01-01 00:00:00')"
            )
        )

    upgrade(engine, QUOTAS)

    assert current_revision(engine) == QUOTAS
    assert "quota_snapshots" in tables(engine)
    inspector = sa.inspect(engine)
    assert [i["name"] for i in inspector.get_indexes("quota_snapshots")] == [
        "ix_quota_snapshots__workspace_id_taken_at"
    ]
    assert {fk["referred_table"] for fk in inspector.get_foreign_keys("quota_snapshots")} == {
        "workspaces"
    }
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO quota_snapshots (workspace_id, taken_at, quota_bytes, state, "
                "media_count, blob_count, media_by_type, logical_original_bytes, "
                "logical_variant_bytes, physical_original_bytes, physical_variant_bytes) "
                "VALUES (1, '2026-01-02 00:00:00', 5000, 'ok', 0, 0, '{}', 0, 0, 0, 0)"
            )
        )

    downgrade(engine, BEFORE)

    assert current_revision(engine) == BEFORE
    assert "quota_snapshots" not in tables(engine)
    with engine.connect() as connection:
        quota = connection.execute(sa.text("SELECT quota_bytes FROM workspaces")).scalar_one()
    assert quota == 5000

    upgrade(engine)
    assert current_revision(engine) == migrate.HEAD_REVISION


def test_snapshot_state_is_checked_by_the_database(migrated_engine: Engine) -> None:
    checks = {
        c["name"] for c in sa.inspect(migrated_engine).get_check_constraints("quota_snapshots")
    }
    assert checks == {"ck_quota_snapshots__quota_state", "ck_quota_snapshots__quota_bytes"}


def test_offline_sql_for_postgresql() -> None:
    buffer = io.StringIO()
    config = Config(output_buffer=buffer)
    config.set_main_option("script_location", migrate.SCRIPT_LOCATION)
    config.set_main_option("sqlalchemy.url", "postgresql://mediamill@localhost/mediamill")
    command.upgrade(config, f"{BEFORE}:{QUOTAS}", sql=True)
    sql = buffer.getvalue()

    assert "CREATE TABLE quota_snapshots" in sql
    assert "id BIGSERIAL NOT NULL" in sql
    assert "media_by_type JSONB NOT NULL" in sql
    assert "taken_at TIMESTAMP WITH TIME ZONE NOT NULL" in sql
    assert f"UPDATE alembic_version SET version_num='{QUOTAS}'" in sql
