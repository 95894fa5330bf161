from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from mediamill.catalog import migrate
from mediamill.catalog.base import Base
from mediamill.catalog.engine import make_engine
from mediamill.catalog.errors import CatalogError, CatalogNotMigrated
from mediamill.catalog.migrate import (
    current_revision,
    downgrade,
    head_revision,
    is_current,
    require_current,
    upgrade,
)
from tests.catalog.conftest import DatabaseFactory

TABLES = {
    "workspaces", "blobs", "media", "variants", "attachments", "audit_events", "quota_snapshots",
    "api_tokens", "webhook_secrets", "webhook_deliveries",
}  # fmt: skip


def table_names(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_head_is_the_api_access_revision() -> None:
    assert head_revision() == "0003_api_access"


def test_upgrade_an_empty_database_to_head(engine: Engine) -> None:
    assert current_revision(engine) is None
    assert not is_current(engine)

    upgrade(engine)

    assert current_revision(engine) == head_revision()
    assert is_current(engine)
    assert table_names(engine) == TABLES


def test_upgrade_twice_is_a_no_op(migrated_engine: Engine) -> None:
    upgrade(migrated_engine)
    assert is_current(migrated_engine)


def test_downgrade_to_base_and_up_again(migrated_engine: Engine) -> None:
    downgrade(migrated_engine, "base")
    assert current_revision(migrated_engine) is None
    assert table_names(migrated_engine) == set()

    upgrade(migrated_engine)
    assert is_current(migrated_engine)
    assert table_names(migrated_engine) == TABLES


def test_url_from_another_working_directory(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The scripts are package data: neither the cwd nor an alembic.ini matters.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    upgrade(database_url)
    assert is_current(database_url)
    downgrade(database_url, "base")
    assert current_revision(database_url) is None


def test_require_current(engine: Engine) -> None:
    with pytest.raises(CatalogNotMigrated, match="mediamill db upgrade"):
        require_current(engine)
    upgrade(engine)
    require_current(engine)


def test_require_current_refuses_a_schema_from_a_newer_mediamill(migrated_engine: Engine) -> None:
    with migrated_engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999_future'"))
    assert not is_current(migrated_engine)
    with pytest.raises(CatalogError, match="upgrade mediamill") as raised:
        require_current(migrated_engine)
    assert not isinstance(raised.value, CatalogNotMigrated)


def test_migrated_schema_matches_the_models(migrated_engine: Engine) -> None:
    with migrated_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def reflect(engine: Engine) -> dict[str, dict[str, Any]]:
    """Everything the inspector sees of each table, in comparable form."""
    inspector = sa.inspect(engine)

    def named(items: list[Any]) -> list[Any]:
        return sorted(items, key=lambda item: str(item.get("name")))

    schema: dict[str, dict[str, Any]] = {}
    for table in sorted(table_names(engine)):
        schema[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
            ],
            "pk": inspector.get_pk_constraint(table),
            "fks": named(inspector.get_foreign_keys(table)),
            "uniques": named(inspector.get_unique_constraints(table)),
            "indexes": named(inspector.get_indexes(table)),
            "checks": named(inspector.get_check_constraints(table)),
        }
    return schema


def test_migration_and_models_create_the_same_schema(
    migrated_engine: Engine, database_factory: DatabaseFactory
) -> None:
    # compare_metadata does not look at CHECK constraints nor at constraint names; a later
    # migration that drops a constraint by name depends on both being the same.
    created = make_engine(database_factory())
    try:
        Base.metadata.create_all(created)
        assert reflect(migrated_engine) == reflect(created)
    finally:
        created.dispose()


def test_enum_check_constraints_are_named_by_convention(migrated_engine: Engine) -> None:
    checks = {c["name"] for c in sa.inspect(migrated_engine).get_check_constraints("media")}
    assert checks == {"ck_media__media_type", "ck_media__media_status"}


def offline_sql(url: str) -> str:
    buffer = io.StringIO()
    config = Config(output_buffer=buffer)
    config.set_main_option("script_location", migrate.SCRIPT_LOCATION)
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "head", sql=True)
    return buffer.getvalue()


def test_offline_sql_for_postgresql() -> None:
    # Renders the revision for PostgreSQL without a server: portable types throughout.
    sql = offline_sql("postgresql://mediamill@localhost/mediamill")
    assert "CREATE TABLE media" in sql
    assert "metadata JSONB NOT NULL" in sql
    assert "id BIGSERIAL NOT NULL" in sql
    assert "id UUID NOT NULL" in sql
    assert "created_at TIMESTAMP WITH TIME ZONE NOT NULL" in sql
    assert "ON DELETE CASCADE" in sql
    assert "INSERT INTO alembic_version (version_num) VALUES ('0001_initial')" in sql


def test_sqlite_migrations_run_with_foreign_keys_off(sqlite_url: str) -> None:
    # Batch migrations rebuild tables by drop and rename: with foreign keys on, dropping a
    # parent would cascade-delete its children's rows.
    engine = make_engine(sqlite_url)
    seen: list[int] = []

    def probe(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().startswith("CREATE TABLE"):
            seen.append(cursor.connection.execute("PRAGMA foreign_keys").fetchone()[0])

    sa.event.listen(engine, "before_cursor_execute", probe)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
    assert seen
    assert set(seen) == {0}


def test_the_shipped_head_constant_matches_alembic() -> None:
    from mediamill.catalog import migrate

    assert migrate.head_revision() == migrate.HEAD_REVISION
