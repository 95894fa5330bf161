"""The catalog health suite over a catalog a real backfill wrote, then broken on purpose.

The backfill runs once per module (on the embedded SQLite catalog); every test checks its
own copy of that catalog on each backend, broken with plain SQL the way an incident or a
hand-written fix would break it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from typer.testing import CliRunner

from mediamill.catalog import migrate
from mediamill.catalog.base import Base
from mediamill.catalog.engine import make_engine
from mediamill.catalog.errors import NotFound
from mediamill.catalog.health import HealthReport, check_catalog
from mediamill.cli import app
from mediamill.flows.ingest import backfill
from mediamill.media import samples
from mediamill.settings import get_settings
from mediamill.storage.keys import workspace_prefix
from mediamill.tasks.recipes import Recipe
from tests.catalog.conftest import DatabaseFactory
from tests.services.postgres import plain_url

EXPECTATIONS = {
    "sha256 is 64 lowercase hex digits",
    "blob sizes are positive",
    "blob statuses are known",
    "blob media types are known",
    "one blob per (workspace, sha256)",
    "ready blobs have every variant the recipe plans",
    "originals are keyed under their workspace",
    "media statuses are known",
    "media types are known",
    "ready media point at a ready blob",
    "failed media carry an error code",
    "variant sizes are positive",
    "variants are keyed under their blob's workspace",
    "no attachment points at a purged media",
}

READY_BLOB = "(SELECT min(id) FROM blobs WHERE status = 'ready')"
FAILED_BLOB = "(SELECT min(id) FROM blobs WHERE status = 'failed')"
FAILED_MEDIA = "(SELECT id FROM media WHERE status = 'failed')"
FIRST_VARIANT = "(SELECT min(id) FROM variants)"
# Not min(media_id): PostgreSQL has no min() of a uuid.
ATTACHED_MEDIA = "(SELECT media_id FROM attachments ORDER BY media_id LIMIT 1)"
BLOB_COLUMNS = "workspace_id, size, mime_type, media_type, original_key, metadata, created_at"


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, prefect_api: str) -> Path:
    """A catalog holding two workspaces' backfills: photos, a duplicate, alpha, a failure."""
    root = tmp_path_factory.mktemp("health")
    acme, globex = root / "acme", root / "globex"
    acme.mkdir()
    globex.mkdir()
    for seed in range(2):
        (acme / f"photo-{seed}.jpg").write_bytes(samples.photo_jpeg(320, 240, seed=seed))
    (acme / "photo-0-copy.jpg").write_bytes((acme / "photo-0.jpg").read_bytes())
    (acme / "alpha.png").write_bytes(samples.alpha_png(120, 80))
    (acme / "truncated.jpg").write_bytes(samples.corrupt_jpeg())
    (globex / "photo.jpg").write_bytes(samples.photo_jpeg(320, 240, seed=7))
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.startswith("MEDIAMILL_"):
                env.delenv(name)
        env.setenv("MEDIAMILL_HOME", str(root / "home"))
        settings = get_settings()
        engine = make_engine(settings.resolved_database_url)
        migrate.upgrade(engine)
        engine.dispose()
        backfill(str(acme), "acme", entity="product:42")
        backfill(str(globex), "globex")
        return Path(settings.resolved_database_url.removeprefix("sqlite:///"))


@pytest.fixture
def database(ingested: Path, database_factory: DatabaseFactory) -> str:
    """The URL of this test's own copy of the ingested catalog, on the backend under test."""
    url = database_factory()
    if url.startswith("sqlite"):
        with sqlite3.connect(ingested) as source, sqlite3.connect(_path(url)) as target:
            source.backup(target)
        return url
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        _copy_rows(f"sqlite:///{ingested}", engine)
    finally:
        engine.dispose()
    return url


def _path(sqlite_url: str) -> Path:
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _copy_rows(source_url: str, target: Engine) -> None:
    """Every row of every catalog table, ids included; sequences then continue after them."""
    source = make_engine(source_url)
    try:
        with source.connect() as read, target.begin() as write:
            for table in Base.metadata.sorted_tables:
                rows = [dict(row) for row in read.execute(table.select()).mappings()]
                if rows:
                    write.execute(table.insert(), rows)
                if isinstance(table.c.id.type, sa.Integer):
                    write.execute(
                        sa.text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                            f"(SELECT max(id) FROM {table.name}))"
                        )
                    )
    finally:
        source.dispose()


def _break(url: str, *statements: str) -> None:
    """Run SQL the schema's CHECK constraints would refuse, as a careless fix would."""
    if not url.startswith("sqlite"):
        _break_postgresql(url, statements)
        return
    connection = sqlite3.connect(_path(url))
    try:
        connection.execute("PRAGMA ignore_check_constraints = ON")
        for statement in statements:
            assert connection.execute(statement).rowcount >= 1, statement
        connection.commit()
    finally:
        connection.close()


def _break_postgresql(url: str, statements: Sequence[str]) -> None:
    # PostgreSQL cannot ignore CHECK constraints: they are dropped, as an older schema or a
    # hand-run migration would have left them.
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            checks = connection.execute(
                sa.text(
                    "SELECT conrelid::regclass::text, conname FROM pg_constraint "
                    "WHERE contype = 'c' AND connamespace = 'public'::regnamespace"
                )
            ).all()
            for table, name in checks:
                connection.execute(sa.text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
            for statement in statements:
                assert connection.execute(sa.text(statement)).rowcount >= 1, statement
    finally:
        engine.dispose()


def _check(url: str, workspace: str | None = None) -> HealthReport:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return check_catalog(
                connection,
                planned_variants=Recipe().planned_variants,
                workspace_prefix=workspace_prefix,
                workspace=workspace,
            )
    finally:
        engine.dispose()


def _failed(report: HealthReport) -> set[str]:
    return {result.expectation for result in report.failures}


def test_a_freshly_ingested_catalog_is_healthy(database: str) -> None:
    report = _check(database)

    assert report.healthy, report.frame().to_string()
    assert {result.expectation for result in report.results} == EXPECTATIONS
    frame = report.frame()
    assert list(frame.columns) == [
        "expectation",
        "table",
        "column",
        "success",
        "checked",
        "unexpected",
        "sample",
    ]
    checked = dict(zip(frame["expectation"], frame["checked"], strict=True))
    # Five blobs (four images and the corrupt one); five of the six media are ready.
    assert checked["sha256 is 64 lowercase hex digits"] == 5
    assert checked["ready media point at a ready blob"] == 5
    assert checked["failed media carry an error code"] == 1
    assert checked["no attachment points at a purged media"] == 5


@pytest.mark.parametrize(
    ("expectation", "statements"),
    [
        (
            "sha256 is 64 lowercase hex digits",
            [f"UPDATE blobs SET sha256 = upper(sha256) WHERE id = {READY_BLOB}"],
        ),
        ("blob sizes are positive", [f"UPDATE blobs SET size = 0 WHERE id = {READY_BLOB}"]),
        (
            "blob statuses are known",
            [f"UPDATE blobs SET status = 'lost' WHERE id = {FAILED_BLOB}"],
        ),
        (
            "blob media types are known",
            [f"UPDATE blobs SET media_type = 'hologram' WHERE id = {FAILED_BLOB}"],
        ),
        (
            "ready blobs have every variant the recipe plans",
            [f"DELETE FROM variants WHERE blob_id = {READY_BLOB} AND name = 'thumb'"],
        ),
        (
            "originals are keyed under their workspace",
            [
                "UPDATE blobs SET original_key = 'tenants/workspace_999/' || original_key "
                f"WHERE id = {READY_BLOB}"
            ],
        ),
        (
            "media statuses are known",
            [f"UPDATE media SET status = 'lost' WHERE id = {FAILED_MEDIA}"],
        ),
        (
            "media types are known",
            [f"UPDATE media SET media_type = 'hologram' WHERE id = {FAILED_MEDIA}"],
        ),
        (
            "ready media point at a ready blob",
            [f"UPDATE blobs SET status = 'failed', error_code = 'corrupt' WHERE id = {READY_BLOB}"],
        ),
        (
            "failed media carry an error code",
            [f"UPDATE media SET error_code = NULL WHERE id = {FAILED_MEDIA}"],
        ),
        (
            "variant sizes are positive",
            [f"UPDATE variants SET size = 0 WHERE id = {FIRST_VARIANT}"],
        ),
        (
            "variants are keyed under their blob's workspace",
            [f"UPDATE variants SET key = 'elsewhere/' || key WHERE id = {FIRST_VARIANT}"],
        ),
        (
            "no attachment points at a purged media",
            [f"UPDATE media SET status = 'purged' WHERE id = {ATTACHED_MEDIA}"],
        ),
    ],
)
def test_each_kind_of_damage_fails_its_expectation_alone(
    database: str, expectation: str, statements: list[str]
) -> None:
    _break(database, *statements)

    report = _check(database)

    assert _failed(report) == {expectation}
    (failure,) = report.failures
    assert failure.unexpected >= 1
    assert failure.sample, "a failure names the rows that broke it"


def test_a_hash_copied_in_another_case_is_a_second_blob_for_the_same_content(
    database: str,
) -> None:
    # The unique constraint compares bytes, so only the suite sees these two are one blob.
    _break(
        database,
        f"INSERT INTO blobs (sha256, status, {BLOB_COLUMNS}, updated_at) "
        f"SELECT upper(sha256), 'processing', {BLOB_COLUMNS}, updated_at FROM blobs "
        f"WHERE id = {READY_BLOB}",
    )

    report = _check(database)

    assert _failed(report) == {
        "one blob per (workspace, sha256)",
        "sha256 is 64 lowercase hex digits",
    }
    unique = next(r for r in report.failures if r.expectation.startswith("one blob"))
    assert unique.unexpected == 2


def test_missing_variants_are_named_in_the_sample(database: str) -> None:
    _break(database, f"DELETE FROM variants WHERE blob_id = {READY_BLOB} AND name = 'tiny'")

    (failure,) = _check(database).failures

    (sample,) = failure.sample
    assert "tiny.webp@" in sample
    assert "optimized" not in sample


def test_a_workspace_report_sees_only_that_workspace(database: str) -> None:
    _break(database, f"UPDATE variants SET size = 0 WHERE id = {FIRST_VARIANT}")  # an acme one

    globex = _check(database, "globex")
    acme = _check(database, "acme")

    assert globex.healthy
    assert globex.workspace == "globex"
    checked = dict(zip(globex.frame()["expectation"], globex.frame()["checked"], strict=True))
    assert checked["sha256 is 64 lowercase hex digits"] == 1
    assert _failed(acme) == {"variant sizes are positive"}


def test_an_unknown_workspace_is_an_error_not_a_clean_bill(database: str) -> None:
    with pytest.raises(NotFound, match="initech"):
        _check(database, "initech")


def test_an_empty_catalog_is_healthy(migrated_engine: Engine) -> None:
    report = _check(migrated_engine.url.render_as_string(hide_password=False))

    assert report.healthy
    assert report.as_dict()["healthy"] is True
    assert all(result.checked == 0 for result in report.results)


def test_the_cli_prints_the_suite_and_exits_non_zero_when_it_fails(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In-process, so the test pays for importing Great Expectations once, not per command.
    monkeypatch.setenv("MEDIAMILL_HOME", str(tmp_path / "home"))
    # As production spells it: no driver in a PostgreSQL URL.
    plain = database if database.startswith("sqlite") else plain_url(database)
    monkeypatch.setenv("MEDIAMILL_DATABASE_URL", plain)
    runner = CliRunner()

    healthy = runner.invoke(app, ["check", "catalog", "--json"])
    assert healthy.exit_code == 0, healthy.output
    assert json.loads(healthy.stdout)["healthy"] is True

    _break(database, f"UPDATE variants SET size = 0 WHERE id = {FIRST_VARIANT}")
    broken = runner.invoke(app, ["check", "catalog", "--workspace", "acme"])
    assert broken.exit_code == 1, broken.output
    assert "Catalog health: acme" in broken.stdout
    assert "failed" in broken.stdout
    as_json = runner.invoke(app, ["check", "catalog", "--workspace", "acme", "--json"])
    assert as_json.exit_code == 1
    failed = [e for e in json.loads(as_json.stdout)["expectations"] if not e["success"]]
    assert [e["expectation"] for e in failed] == ["variant sizes are positive"]

    unknown = runner.invoke(app, ["check", "catalog", "-w", "initech"])
    assert unknown.exit_code == 2
