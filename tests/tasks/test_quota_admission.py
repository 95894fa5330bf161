"""Quota admission at registration: a new blob is claimed only if its original fits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from mediamill.catalog import migrate
from mediamill.catalog.engine import make_engine
from mediamill.catalog.models import AuditEvent, Blob, BlobStatus, Media, MediaStatus
from mediamill.catalog.quota import QUOTA_EXCEEDED, lock_workspace_statement, set_quota
from mediamill.media import samples
from mediamill.settings import get_settings
from mediamill.tasks.context import PipelineContext
from mediamill.tasks.register import Registration, register_batch
from mediamill.tasks.sources import file_source
from mediamill.tasks.staging import Staged, stage


@pytest.fixture
def ctx(home: Path) -> Iterator[PipelineContext]:
    """A pipeline context on a migrated catalog; no pixel worker is ever started."""
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    migrate.upgrade(engine)
    engine.dispose()
    context = PipelineContext.open(settings, workers=1)
    yield context
    context.close()


@pytest.fixture
def uploads(tmp_path: Path) -> Path:
    folder = tmp_path / "uploads"
    folder.mkdir()
    return folder


def photo(folder: Path, seed: int, *, idempotent: bool = False, name: str | None = None) -> Staged:
    path = folder / (name or f"photo-{seed}.jpg")
    if not path.exists():
        path.write_bytes(samples.photo_jpeg(160, 120, seed=seed))
    return stage(file_source(path, idempotent=idempotent), get_settings().max_upload_bytes)


def workspace(ctx: PipelineContext, quota: int | None, slug: str = "acme") -> int:
    with ctx.writing() as session:
        return set_quota(session, slug, quota).id


def register(ctx: PipelineContext, workspace_id: int, *staged: Staged) -> list[Registration]:
    return register_batch(ctx, workspace_id, list(enumerate(staged)), None)


def set_blob_status(ctx: PipelineContext, status: BlobStatus, code: str | None = None) -> None:
    """What publishing does to a blob when it ends."""
    with ctx.writing() as session:
        session.execute(update(Blob).values(status=status, error_code=code, claimed_at=None))


def blob_count(ctx: PipelineContext) -> int:
    with ctx.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Blob)) or 0)


def outcomes(registrations: list[Registration]) -> list[tuple[str, str | None]]:
    return [(r.outcome, r.error_code) for r in registrations]


def test_an_upload_that_fits_is_admitted_and_claims_its_blob(
    ctx: PipelineContext, uploads: Path
) -> None:
    upload = photo(uploads, 1)
    workspace_id = workspace(ctx, upload.size)  # exactly full afterwards

    assert outcomes(register(ctx, workspace_id, upload)) == [("render", None)]
    assert blob_count(ctx) == 1


def test_a_claimed_blob_is_a_reservation_the_next_upload_cannot_use(
    ctx: PipelineContext, uploads: Path
) -> None:
    first, second = photo(uploads, 1), photo(uploads, 2)
    workspace_id = workspace(ctx, first.size + second.size - 1)
    register(ctx, workspace_id, first)  # claimed, still processing: not rendered yet

    (refused,) = register(ctx, workspace_id, second)

    assert (refused.outcome, refused.error_code) == ("failed", QUOTA_EXCEEDED)
    assert refused.error_message is not None
    assert "quota exceeded" in refused.error_message
    assert refused.settled == [refused.media_id]
    assert blob_count(ctx) == 1
    with ctx.sessions() as session:
        media = session.get(Media, refused.media_id)
        assert media is not None
        assert (media.status, media.error_code, media.blob_id) == (
            MediaStatus.failed,
            QUOTA_EXCEEDED,
            None,
        )
        audit = session.scalars(
            select(AuditEvent).where(AuditEvent.media_id == refused.media_id)
        ).all()
        assert [a.action for a in audit] == ["media.created", "media.failed"]
        assert audit[1].details["code"] == QUOTA_EXCEEDED


def test_in_one_batch_each_upload_is_admitted_against_what_is_left(
    ctx: PipelineContext, uploads: Path
) -> None:
    big = photo(uploads, 1)
    bigger = photo(uploads, 2)
    small = stage(
        file_source(_write(uploads / "tiny.png", samples.alpha_png(8, 8))),
        get_settings().max_upload_bytes,
    )
    assert small.size < bigger.size
    workspace_id = workspace(ctx, big.size + small.size)

    registered = register(ctx, workspace_id, big, bigger, small)

    assert outcomes(registered) == [("render", None), ("failed", QUOTA_EXCEEDED), ("render", None)]
    assert blob_count(ctx) == 2


def test_a_failed_blob_releases_its_reservation(ctx: PipelineContext, uploads: Path) -> None:
    first, second = photo(uploads, 1), photo(uploads, 2)
    workspace_id = workspace(ctx, max(first.size, second.size))
    register(ctx, workspace_id, first)
    set_blob_status(ctx, BlobStatus.failed, "corrupt")

    assert outcomes(register(ctx, workspace_id, second)) == [("render", None)]


def test_duplicates_cost_nothing_and_are_admitted_into_a_full_workspace(
    ctx: PipelineContext, uploads: Path
) -> None:
    original = photo(uploads, 1)
    workspace_id = workspace(ctx, original.size)
    # The same bytes twice in one batch: one blob, one reservation.
    copy = photo(uploads, 1, name="copy.jpg")
    assert outcomes(register(ctx, workspace_id, original, copy)) == [
        ("render", None),
        ("waiting", None),
    ]
    set_blob_status(ctx, BlobStatus.ready)
    workspace(ctx, 0)  # nothing new fits any more

    assert outcomes(register(ctx, workspace_id, photo(uploads, 1, name="again.jpg"))) == [
        ("duplicate", None)
    ]
    assert blob_count(ctx) == 1


def test_a_workspace_without_quota_admits_everything(ctx: PipelineContext, uploads: Path) -> None:
    workspace_id = workspace(ctx, None)
    registered = register(ctx, workspace_id, *(photo(uploads, seed) for seed in range(3)))
    assert outcomes(registered) == [("render", None)] * 3


def test_retrying_a_failed_blob_needs_room_again(ctx: PipelineContext, uploads: Path) -> None:
    flaky, other = photo(uploads, 1), photo(uploads, 2)
    workspace_id = workspace(ctx, max(flaky.size, other.size))
    register(ctx, workspace_id, flaky)
    set_blob_status(ctx, BlobStatus.failed, "storage_error")  # retried by the next upload
    register(ctx, workspace_id, other)  # took the space the failure released

    (retry,) = register(ctx, workspace_id, photo(uploads, 1, name="retry.jpg"))

    assert (retry.outcome, retry.error_code) == ("failed", QUOTA_EXCEEDED)
    with ctx.sessions() as session:
        statuses = sorted(session.scalars(select(Blob.status)))
    assert statuses == [BlobStatus.failed, BlobStatus.processing]


def test_a_refused_backfill_source_is_retried_by_a_rerun_once_there_is_room(
    ctx: PipelineContext, uploads: Path
) -> None:
    source = photo(uploads, 1, idempotent=True)
    workspace_id = workspace(ctx, source.size - 1)
    (refused,) = register(ctx, workspace_id, source)
    assert refused.error_code == QUOTA_EXCEEDED

    workspace(ctx, source.size)
    (rerun,) = register(ctx, workspace_id, photo(uploads, 1, idempotent=True))

    assert (rerun.outcome, rerun.media_id) == ("render", refused.media_id)


def test_admission_locks_the_workspace_row_on_postgresql() -> None:
    statement = lock_workspace_statement(1)
    # NO KEY: rows referencing the workspace, inserted before admission, must not block it.
    assert "FOR NO KEY UPDATE" in str(statement.compile(dialect=postgresql.dialect()))
    # SQLite has no row locks: BEGIN IMMEDIATE already serialises every writer.
    assert "FOR UPDATE" not in str(statement.compile(dialect=sqlite.dialect()))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
