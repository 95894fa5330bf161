"""The benchmark seeder makes a catalog the real code reads like one it wrote itself."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench.postgres import PostgresUnavailableError, find_bin_dir, throwaway_cluster
from bench.seed import (
    MEASURED_WORKSPACE,
    RETENTION_DAYS,
    TEMPORARY_HOURS,
    seed_catalog,
)
from mediamill.catalog import migrate
from mediamill.catalog import repository as repo
from mediamill.catalog.engine import make_engine
from mediamill.catalog.library import Position, card_page
from mediamill.catalog.models import Attachment, Media, MediaStatus, MediaType
from mediamill.catalog.views import media_record

ROWS = 3_000


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    try:
        find_bin_dir()
    except PostgresUnavailableError as error:
        pytest.fail(str(error))  # `make test` installs it; a missing service must not hide
    with throwaway_cluster() as cluster:
        yield cluster.url


def _indexes(engine: sa.Engine) -> set[tuple[str, str]]:
    inspector = sa.inspect(engine)
    return {
        (table, str(index["name"]))
        for table in inspector.get_table_names()
        for index in inspector.get_indexes(table)
    }


def test_seeded_catalog_reads_back_through_the_catalog_code(
    empty_catalog: str, tmp_path: Path
) -> None:
    result = seed_catalog(empty_catalog, ROWS, workspaces=5)
    assert result.media == ROWS
    assert 0.4 * ROWS < result.measured_media < 0.6 * ROWS
    assert result.blobs > 0.9 * ROWS
    # 7 current variants per ready blob of the measured workspace, an 8th on every 10th.
    assert result.variants > 6 * 0.85 * result.measured_media
    assert set(result.seconds) >= {"migrate", "media + blobs", "variants", "analyze"}

    engine = make_engine(empty_catalog)
    reference = make_engine(f"sqlite:///{tmp_path / 'reference.db'}")
    try:
        assert migrate.is_current(engine)
        # Every index the migrations made is back after the load dropped the plain ones.
        if engine.dialect.name == "sqlite":
            migrate.upgrade(reference)
            assert _indexes(engine) == _indexes(reference)
            with engine.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        with engine.connect() as connection:
            # Foreign keys hold (PostgreSQL loaded with its triggers off), within a workspace.
            orphans = connection.execute(
                sa.text(
                    "SELECT count(*) FROM media m LEFT JOIN blobs b ON b.id = m.blob_id "
                    "WHERE m.blob_id IS NOT NULL "
                    "AND (b.id IS NULL OR b.workspace_id <> m.workspace_id)"
                )
            ).scalar_one()
            assert orphans == 0
            statuses = dict(
                connection.execute(sa.text("SELECT status, count(*) FROM media GROUP BY status"))
                .tuples()
                .all()
            )
            assert statuses["ready"] > 0.85 * ROWS
            assert statuses.get("deleted", 0) > 0

        with Session(engine) as session:
            page = card_page(session, result.workspace_id, first=50)
            assert len(page.items) == 50
            assert page.has_next
            stamps = [(m.created_at, m.id) for m in page.items]
            assert stamps == sorted(stamps, reverse=True)
            first = page.items[0]
            assert first.created_at.tzinfo is UTC
            assert isinstance(first.id, uuid.UUID)
            assert first.id.version == 4
            ready = [m for m in page.items if m.status is MediaStatus.ready and m.width]
            assert ready
            for card in ready:
                assert {(v.name, v.format) for v in card.variants} == {
                    ("optimized", "jpeg"),
                    ("optimized", "webp"),
                    ("optimized", "avif"),
                    ("thumb", "jpeg"),
                    ("thumb", "webp"),
                    ("tiny", "jpeg"),
                    ("tiny", "webp"),
                }
                assert all(v.key.startswith("tenants/") for v in card.variants)
            media = repo.get_media(session, ready[0].id, result.workspace_id)
            assert media is not None
            assert media.workspace.slug == MEASURED_WORKSPACE
            record = media_record(media, lambda key: f"https://cdn.test/{key}")
            assert record["variants"][0]["url"].startswith("https://cdn.test/tenants/")
            # Keyset paging continues strictly older, and the type filter holds.
            last = page.items[-1]
            after = card_page(
                session,
                result.workspace_id,
                first=20,
                after=Position(last.created_at, last.id),
                media_type=MediaType.image,
            )
            assert after.items
            for card in after.items:
                assert (card.created_at, card.id) < (last.created_at, last.id)
                assert card.media_type is MediaType.image
            total = session.scalar(sa.select(sa.func.count()).select_from(Media))
            assert total == ROWS
            _check_lifecycle(session, result.attachments)
    finally:
        engine.dispose()
        reference.dispose()


def _check_lifecycle(session: Session, attachments: int) -> None:
    """Attachments, temporary uploads and deletions look like a catalog the sweeps keep."""
    now = datetime.now(UTC)
    attached = set(session.scalars(sa.select(Attachment.media_id)))
    assert len(attached) == attachments > 0.8 * ROWS
    media = list(session.scalars(sa.select(Media)))
    for item in media:
        stamped = item.meta.get("upload_entity")
        if item.id in attached:
            assert stamped is not None
            assert item.status is not MediaStatus.purged
        elif stamped is None:
            # Never attached: a temporary upload of the last TEMPORARY_HOURS hours.
            assert item.created_at > now - timedelta(hours=TEMPORARY_HOURS, minutes=5)
        else:
            assert item.status is MediaStatus.purged  # a purge removed its attachment
        if item.status is MediaStatus.deleted:
            # Older deletions were purged by an earlier daily purge.
            assert item.deleted_at is not None
            assert item.deleted_at > now - timedelta(days=RETENTION_DAYS + 1, minutes=5)
        if item.status is MediaStatus.purged:
            assert item.blob_id is None
            assert item.purged_at is not None
    galleries = session.execute(
        sa.select(Attachment.workspace_id, Attachment.entity_id, Attachment.position)
    ).all()
    assert len(set(galleries)) == len(galleries)
