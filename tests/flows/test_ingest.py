"""The ingest flows end to end on the embedded defaults, under a real Prefect test server."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from sqlalchemy import func, select

from mediamill.catalog import repository as repo
from mediamill.catalog.models import (
    Attachment,
    AuditEvent,
    Blob,
    BlobStatus,
    Media,
    MediaStatus,
    Variant,
)
from mediamill.flows.ingest import backfill, batch_bounds, ingest_bytes, run_pipeline
from mediamill.media import samples
from mediamill.media.specs import DEFAULT_IMAGE_SPECS
from mediamill.settings import get_settings
from mediamill.storage.errors import TransientStorageError
from mediamill.storage.factory import open_store
from mediamill.storage.headers import IMMUTABLE
from mediamill.storage.keys import workspace_prefix
from mediamill.storage.objects import NewObject
from mediamill.storage.store import ObjectStore
from mediamill.tasks.context import PipelineContext
from mediamill.tasks.sources import discover
from tests.flows.sample_sets import write_mixed_set

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture
def sample_dir(tmp_path: Path) -> Path:
    return write_mixed_set(tmp_path / "samples")


def _count(sessions: Any, model: Any, *where: Any) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)))


def test_backfill_ingests_dedupes_and_fails_only_bad_assets(catalog: Any, sample_dir: Path) -> None:
    summary = backfill(str(sample_dir), "acme")

    assert summary["total"] == 8
    assert (summary["ingested"], summary["duplicates"], summary["failed"]) == (5, 1, 2)
    reasons = {f["source"]: f["code"] for f in summary["failures"]}  # type: ignore[union-attr]
    assert reasons == {"truncated.jpg": "corrupt", "page.jpg": "unsupported_type"}
    assert _count(catalog, Blob) == 6  # five images and the corrupt one, which failed
    assert _count(catalog, Blob, Blob.status == BlobStatus.ready) == 5
    assert _count(catalog, Media, Media.status == MediaStatus.ready) == 6
    with catalog() as session:
        failed = session.scalars(select(Media).where(Media.status == MediaStatus.failed)).all()
        assert all(m.error_code and m.error_message for m in failed)
        assert (
            session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "media.failed")
            )
            == 2
        )


def test_published_objects_are_complete_immutable_and_under_the_workspace(
    catalog: Any, sample_dir: Path
) -> None:
    backfill(str(sample_dir), "acme")
    store = open_store(get_settings())
    with catalog() as session:
        variants = session.scalars(select(Variant)).all()
        blob_workspace = {b.id: b.workspace_id for b in session.scalars(select(Blob))}
        originals = [
            b.original_key
            for b in session.scalars(select(Blob).where(Blob.status == BlobStatus.ready))
        ]
    formats_per_blob: dict[int, set[str]] = {}
    for variant in variants:
        assert variant.key.startswith(workspace_prefix(blob_workspace[variant.blob_id]))
        info = store.head(variant.key)
        assert info.size == variant.size
        assert info.content_type == variant.mime_type
        assert info.cache_control == IMMUTABLE
        formats_per_blob.setdefault(variant.blob_id, set()).add(f"{variant.name}.{variant.format}")
    for formats in formats_per_blob.values():
        assert {"optimized.webp", "optimized.avif", "thumb.webp", "tiny.webp"} <= formats
    assert all(store.exists(key) for key in originals)


def test_rerun_adds_no_media_and_does_no_pixel_work(catalog: Any, sample_dir: Path) -> None:
    backfill(str(sample_dir), "acme")
    media_before = _count(catalog, Media)
    variants_before = _count(catalog, Variant)

    rerun = backfill(str(sample_dir), "acme")

    assert rerun["unchanged"] == 8
    assert (rerun["ingested"], rerun["failed"], rerun["pixel_seconds"]) == (0, 0, 0.0)
    keys = [source.source_key or "" for source in discover(sample_dir)]
    with catalog() as session:
        workspace = repo.find_workspace(session, "acme")
        assert workspace is not None
        # Every source finished: a rerun starts no pixel worker. Chunked like a huge run.
        assert repo.count_finished_sources(session, workspace.id, keys, chunk=3) == 8
    assert _count(catalog, Media) == media_before
    assert _count(catalog, Variant) == variants_before


def test_each_stage_task_run_shows_the_batch_task_run_it_consumed(
    catalog: Any, sample_dir: Path
) -> None:
    """Batches reach their next stage unwalked (``opaque``); the UI still draws the edges."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    state = backfill(str(sample_dir), "acme", batch_size=2, return_state=True)
    assert state.is_completed()
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
            )
        )
    name_of = {run.id: run.name.rsplit("-", 1)[0] for run in runs}
    by_name: dict[str, list[Any]] = {}
    for run in runs:
        by_name.setdefault(name_of[run.id], []).append(run)

    def upstream(run: Any, parameter: str) -> list[str]:
        return [name_of[item.id] for item in run.task_inputs[parameter]]

    assert len(by_name["register"]) == len(by_name["stage"]) > 1
    assert all(upstream(run, "staged") == ["stage"] for run in by_name["register"])
    assert by_name["derive-and-publish"]
    assert all(
        upstream(run, "registrations") == ["register"] for run in by_name["derive-and-publish"]
    )


def test_rerun_reads_only_the_files_changed_since(
    catalog: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mediamill.tasks import staging

    monkeypatch.setattr(staging, "SETTLE_SECONDS", 0.0)  # the files count as long written
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in range(3):
        (folder / f"{seed}.jpg").write_bytes(samples.photo_jpeg(400, 300, seed=seed))
    assert backfill(str(folder), "acme")["ingested"] == 3
    read_through: list[str] = []
    full_read = staging._chunks

    def counted(source: Any) -> Any:
        read_through.append(source.filename)
        return full_read(source)

    monkeypatch.setattr(staging, "_chunks", counted)

    rerun = backfill(str(folder), "acme")
    assert (rerun["unchanged"], read_through) == (3, [])

    changed = folder / "1.jpg"
    changed.write_bytes(samples.photo_jpeg(400, 300, seed=7))
    third = backfill(str(folder), "acme")
    assert read_through == ["1.jpg"]
    assert (third["unchanged"], third["ingested"]) == (2, 1)
    assert _count(catalog, Blob) == 4


def test_interrupted_backfill_is_finished_by_a_rerun(catalog: Any, sample_dir: Path) -> None:
    """Registration done, rendering never happened: the rerun takes its own rows over."""
    from mediamill.tasks.register import register_batch
    from mediamill.tasks.staging import stage

    settings = get_settings()
    ctx = PipelineContext.open(settings, workers=1)
    try:
        with ctx.sessions.begin() as session:
            from mediamill.catalog import repository as repo

            workspace_id = repo.ensure_workspace(session, "acme").id
        sources = discover(sample_dir)
        staged = [(i, stage(s, settings.max_upload_bytes)) for i, s in enumerate(sources)]
        register_batch(ctx, workspace_id, staged, None)
    finally:
        ctx.close()
    # Everything but the HTML page, which staging refused: the truncated JPEG fails later.
    assert _count(catalog, Media, Media.status == MediaStatus.processing) == 7

    summary = backfill(str(sample_dir), "acme")

    # The HTML page already failed for good; the truncated JPEG fails now, when decoded.
    assert (summary["unchanged"], summary["failed"]) == (1, 1)
    assert _count(catalog, Media) == 8
    assert _count(catalog, Media, Media.status == MediaStatus.processing) == 0
    assert _count(catalog, Media, Media.status == MediaStatus.ready) == 6
    assert _count(catalog, Blob) == 6


def test_a_backfill_for_an_entity_attaches_in_source_order(catalog: Any, tmp_path: Path) -> None:
    folder = tmp_path / "gallery"
    folder.mkdir()
    names = [f"{n:02d}.jpg" for n in range(9)]
    for seed, name in enumerate(names):
        (folder / name).write_bytes(samples.photo_jpeg(64 + seed, 48, seed=seed))

    backfill(str(folder), "acme", entity="product:9", batch_size=2, workers=2)

    with catalog() as session:
        ordered = session.execute(
            select(Media.original_filename)
            .join(Attachment, Attachment.media_id == Media.id)
            .order_by(Attachment.position)
        ).scalars()
        assert list(ordered) == names


def test_upload_of_bytes_attaches_to_its_entity_and_keys_follow_it(catalog: Any) -> None:
    data = samples.photo_jpeg(640, 480, seed=7)
    first = ingest_bytes(data, "../../red+shoe.jpg", "acme", user="ann", entity="product:42")
    second = ingest_bytes(data, "again.jpg", "acme", user="bob", entity="product:42")

    assert (first["ingested"], second["duplicates"]) == (1, 1)
    with catalog() as session:
        attachments = session.scalars(select(Attachment).order_by(Attachment.position)).all()
        assert [(a.entity_type, a.entity_id, a.position) for a in attachments] == [
            ("product", "42", 0),
            ("product", "42", 1),
        ]
        media = session.scalars(select(Media).order_by(Media.created_at)).all()
        assert [m.original_filename for m in media] == ["red+shoe.jpg", "again.jpg"]
        assert [m.uploader for m in media] == ["ann", "bob"]
        assert [m.source for m in media] == ["upload:red+shoe.jpg", "upload:again.jpg"]
        assert media[0].blob_id == media[1].blob_id
        keys = session.scalars(select(Variant.key)).all()
    assert keys
    assert all("/product/" in key and "/42/image/" in key for key in keys)
    assert not any("shoe" in key for key in keys)
    staging = get_settings().staging_dir
    assert not any(staging.iterdir())  # the staged upload is gone once ingested


def _run_with(ctx_factory: Callable[[], PipelineContext], folder: Path) -> dict[str, Any]:
    @flow
    def custom_backfill() -> dict[str, Any]:
        ctx = ctx_factory()
        try:
            return run_pipeline(ctx, "acme", discover(folder), batch_size=3).as_dict()
        finally:
            ctx.close()

    return custom_backfill()


def test_changed_spec_regenerates_only_what_is_missing(catalog: Any, tmp_path: Path) -> None:
    import dataclasses

    folder = tmp_path / "two"
    folder.mkdir()
    for seed in range(2):
        (folder / f"{seed}.jpg").write_bytes(samples.photo_jpeg(600, 400, seed=seed))
    backfill(str(folder), "acme")
    before = {(v.blob_id, v.name, v.format, v.spec_version) for v in _all_variants(catalog)}

    changed = tuple(
        dataclasses.replace(spec, width=320, height=320) if spec.name == "thumb" else spec
        for spec in DEFAULT_IMAGE_SPECS
    )
    new_thumb_version = next(s.version for s in changed if s.name == "thumb")

    def context() -> PipelineContext:
        ctx = PipelineContext.open(get_settings(), workers=1)
        ctx.recipe = dataclasses.replace(ctx.recipe, image_specs=changed)
        return ctx

    (folder / "copy.jpg").write_bytes((folder / "0.jpg").read_bytes())
    _run_with(context, folder)

    after = {(v.blob_id, v.name, v.format, v.spec_version) for v in _all_variants(catalog)}
    added = after - before
    assert before <= after
    assert {name for _, name, _, _ in added} == {"thumb"}
    assert {version for *_, version in added} == {new_thumb_version}
    assert len(added) == 2 * 2  # two blobs, JPEG + WebP each
    thumbs = [v for v in _all_variants(catalog) if v.spec_version == new_thumb_version]
    assert all((v.width, v.height) == (320, 320) for v in thumbs)


def _all_variants(sessions: Any) -> list[Variant]:
    with sessions() as session:
        return list(session.scalars(select(Variant)))


class FlakyStore:
    """Fails about a third of writes with a transient error, like a throttling bucket."""

    def __init__(self, inner: ObjectStore) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.calls = 0
        self.failures = 0

    def _maybe_fail(self) -> None:
        with self._lock:
            self.calls += 1
            fail = self.calls % 3 == 0
            if fail:
                self.failures += 1
        if fail:
            raise TransientStorageError("503 slow down")

    def put_many(self, objects: Sequence[NewObject], **kwargs: Any) -> None:
        self._maybe_fail()
        self._inner.put_many(objects, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_transient_storage_errors_are_retried_until_every_asset_is_ready(
    catalog: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "flaky"
    folder.mkdir()
    for seed in range(4):
        (folder / f"{seed}.jpg").write_bytes(samples.photo_jpeg(400, 300, seed=seed))
    stores: list[FlakyStore] = []

    def context() -> PipelineContext:
        ctx = PipelineContext.open(get_settings(), workers=1)
        ctx.store = FlakyStore(ctx.store)  # type: ignore[assignment]
        stores.append(ctx.store)  # type: ignore[arg-type]
        return ctx

    summary = _run_with(context, folder)

    assert summary["ingested"] == 4
    assert stores[0].failures > 0
    assert _count(catalog, Media, Media.status == MediaStatus.ready) == 4


def test_backfill_of_a_tree_holding_our_own_state_skips_that_state(
    catalog: Any, sample_dir: Path
) -> None:
    backfill(str(sample_dir), "acme")
    parent = sample_dir.parent  # also holds MEDIAMILL_HOME: catalog.db, storage/, prefect/

    summary = backfill(str(parent), "acme")

    assert summary["total"] == 8
    with catalog() as session:
        sources = session.scalars(select(Media.source)).all()
    assert not any("/home/" in source for source in sources)


def test_manifest_backfill_attaches_rows_and_fails_a_bad_row_alone(
    catalog: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "catalogue"
    folder.mkdir()
    (folder / "shoe.jpg").write_bytes(samples.photo_jpeg(500, 400, seed=11))
    (folder / "bag.png").write_bytes(samples.alpha_png(300, 300))
    manifest = folder / "manifest.csv"
    manifest.write_text(
        "path,entity,alt,user\n"
        "shoe.jpg,product:42,Red shoe,ann\n"
        "bag.png,collection:summer,A bag,bob\n"
        "shoe.jpg,not an entity,,\n"
    )

    summary = backfill(str(manifest), "acme")

    assert (summary["ingested"], summary["failed"]) == (2, 1)
    (failure,) = summary["failures"]  # type: ignore[misc]
    assert (failure["source"], failure["code"]) == ("shoe.jpg", "invalid_source")
    assert "manifest line 4" in failure["message"]
    with catalog() as session:
        rows = session.execute(
            select(Media.original_filename, Media.alt_text, Media.uploader, Attachment.entity_type)
            .join(Attachment, Attachment.media_id == Media.id)
            .order_by(Media.original_filename)
        ).all()
    assert [tuple(row) for row in rows] == [
        ("bag.png", "A bag", "bob", "collection"),
        ("shoe.jpg", "Red shoe", "ann", "product"),
    ]


def test_no_gps_or_xmp_reaches_any_stored_variant(catalog: Any, tmp_path: Path) -> None:
    folder = tmp_path / "private"
    folder.mkdir()
    upload = samples.photo_jpeg(900, 600, seed=5, orientation=6, gps=True, xmp=True)
    assert b"GPS" in upload or samples.XMP_SENTINEL.encode() in upload
    (folder / "holiday.jpg").write_bytes(upload)

    backfill(str(folder), "acme")

    store = open_store(get_settings())
    with catalog() as session:
        variants = session.scalars(select(Variant)).all()
    assert len(variants) == 7
    for variant in variants:
        data = store.get(variant.key)
        assert samples.XMP_SENTINEL.encode() not in data
        assert b"Exif\x00\x00" not in data
        assert b"GPS" not in data
    optimized = next(v for v in variants if v.name == "optimized")
    assert (optimized.width, optimized.height) == (600, 900)  # orientation 6 applied


@pytest.mark.parametrize(
    ("total", "size", "first", "expected"),
    [
        (0, 32, 2, []),
        (1, 32, 2, [(0, 1)]),
        (7, 3, 2, [(0, 2), (2, 5), (5, 7)]),
        (70, 32, 2, [(0, 2), (2, 6), (6, 14), (14, 30), (30, 62), (62, 70)]),
        (
            200,
            64,
            2,
            [(0, 2), (2, 6), (6, 14), (14, 30), (30, 62), (62, 126), (126, 190), (190, 200)],
        ),
        (5, 2, 8, [(0, 2), (2, 4), (4, 5)]),
    ],
)
def test_batches_start_with_one_asset_per_worker_double_and_cover_every_source_once(
    total: int, size: int, first: int, expected: list[tuple[int, int]]
) -> None:
    bounds = batch_bounds(total, size, first)
    assert bounds == expected
    assert [i for start, end in bounds for i in range(start, end)] == list(range(total))
