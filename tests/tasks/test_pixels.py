"""The pixel pool: real worker processes, including one lost while it held no job.

Jobs that hang, crash their worker or run out of memory: see ``test_pixel_isolation``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from pebble.pool.base_pool import PoolStatus, Task
from pebble.pool.process import PoolManager

from mediamill.media import samples
from mediamill.media.errors import MediaError, ProcessingError, ValidationError
from mediamill.media.limits import ImageLimits
from mediamill.media.specs import DEFAULT_IMAGE_SPECS
from mediamill.tasks import staging
from mediamill.tasks.pixels import (
    PixelPool,
    RenderJob,
    RenderOutcome,
    _reason,
    missing_variants,
    prime_worker,
    render_ahead,
    with_bytes,
)
from mediamill.tasks.recipes import Recipe
from mediamill.tasks.staging import file_identity
from tests.tasks.jobs import image_job


def worker_pid(job: RenderJob) -> RenderOutcome:
    """Runs in a worker instead of ``render_job``: which process took the job."""
    return RenderOutcome(job.blob_id, None, None, str(os.getpid()), 0.0)


def slow_worker_pid(job: RenderJob) -> RenderOutcome:
    """``worker_pid`` after half a second of work, so the next job is running when asked."""
    time.sleep(0.5)
    return worker_pid(job)


def test_outcomes_carry_variants_or_a_reason() -> None:
    with PixelPool(1) as pool:
        good, bad = list(pool.render([image_job(1, samples.photo_jpeg(400, 300, seed=1)),
                                      image_job(2, samples.corrupt_jpeg())]))  # fmt: skip
    by_blob = {good.blob_id: good, bad.blob_id: bad}
    assert by_blob[1].rendition is not None
    assert by_blob[1].peak_rss_bytes > 0
    assert set(by_blob[1].library_versions or {}) == {"libvips", "pillow"}
    assert (by_blob[2].rendition, by_blob[2].error_code) == (None, "corrupt")


def test_a_worker_lost_between_jobs_is_replaced() -> None:
    """A worker killed while idle breaks pebble's pool; the next batch still renders."""
    with PixelPool(1) as pool:
        (first,) = pool.render([image_job(1, samples.photo_jpeg(400, 300, seed=1))], worker_pid)
        os.kill(int(first.error_message or 0), signal.SIGKILL)

        (recovered,) = pool.render([image_job(2, samples.photo_jpeg(400, 300, seed=3))])
        assert recovered.rendition is not None


def test_a_job_sent_as_the_pool_breaks_is_sent_again() -> None:
    """Pebble never settles a job its scheduler thread takes after the pool broke.

    The worker dies between the job's hand-over and its scheduling, the order a loaded
    machine produced once: the job goes to a fresh pool instead of waiting for ever.
    """
    original = PoolManager.schedule
    pending: list[int] = []

    def break_first(manager: PoolManager, task: Task) -> None:
        if pending:
            os.kill(pending.pop(), signal.SIGKILL)
            deadline = time.monotonic() + 10
            while manager.context.status != PoolStatus.ERROR and time.monotonic() < deadline:
                time.sleep(0.01)
        original(manager, task)

    with PixelPool(1) as pool:
        (first,) = pool.render([image_job(1, samples.photo_jpeg(400, 300, seed=1))], worker_pid)
        pending.append(int(first.error_message or 0))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(PoolManager, "schedule", break_first)
            (recovered,) = pool.render([image_job(2, samples.photo_jpeg(400, 300, seed=3))])
    assert not pending
    assert recovered.rendition is not None


def test_jobs_a_caller_stops_waiting_for_finish_on_the_same_worker() -> None:
    """Nothing is cancelled: pebble stops the worker of a started job that is cancelled.

    A worker stopped just as it took its next job leaves that job unsettled until its time
    limit, and the run waiting for it with it.
    """
    with PixelPool(1) as pool:
        outcomes = pool.render(
            [image_job(i, samples.photo_jpeg(400, 300, seed=i)) for i in range(1, 5)],
            slow_worker_pid,
        )
        first = next(outcomes)
        outcomes.close()
        (after,) = pool.render([image_job(9, samples.photo_jpeg(400, 300, seed=9))], worker_pid)
    assert after.error_message == first.error_message


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ValidationError("corrupt", "vips_tracked: out of memory -- size == 0MB"), "out_of_memory"),
        (ValidationError("corrupt", "VipsJpeg: Insufficient memory (case 4)"), "out_of_memory"),
        (ProcessingError("resizing 'thumb' failed: out of memory"), "out_of_memory"),
        (ValidationError("corrupt", "VipsJpeg: Premature end of JPEG file"), "corrupt"),
        (ValidationError("too_many_pixels", "over the memory allocation cap"), "too_many_pixels"),
    ],
)
def test_a_failed_allocation_is_out_of_memory_not_bad_data(error: MediaError, code: str) -> None:
    assert _reason(error)[0] == code


def test_missing_variants_follow_alpha_and_versions() -> None:
    have = {(s.name, f.format, s.version) for s in DEFAULT_IMAGE_SPECS for f in s.formats}
    assert missing_variants(Recipe(), "image", have, has_alpha=False) == frozenset()
    alpha_missing = missing_variants(Recipe(), "image", have, has_alpha=True)
    assert {fmt for _, fmt, _ in alpha_missing} == {"png"}


def _file_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, RenderJob]:
    """A job for a settled file, planned with the identity it had when it was hashed."""
    monkeypatch.setattr(staging, "SETTLE_SECONDS", 0.0)
    data = samples.photo_jpeg(64, 48, seed=1)
    path = tmp_path / "a.jpg"
    path.write_bytes(data)
    job = dataclasses.replace(image_job(1, data), data=None, path=str(path))
    return path, dataclasses.replace(job, identity=file_identity(path))


def test_a_file_untouched_since_it_was_hashed_is_not_hashed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, job = _file_job(tmp_path, monkeypatch)
    assert job.identity is not None
    # A hash the bytes do not have: taken on the identity's word, so it was not recomputed.
    vouched = with_bytes(dataclasses.replace(job, sha256="0" * 64))
    assert isinstance(vouched, RenderJob)
    assert vouched.data == path.read_bytes()

    unvouched = with_bytes(dataclasses.replace(job, sha256="0" * 64, identity=None))
    assert isinstance(unvouched, RenderOutcome)
    assert unvouched.error_code == "source_changed"


def test_a_file_written_since_it_was_hashed_is_refused_despite_its_identity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, job = _file_job(tmp_path, monkeypatch)
    rewritten = samples.photo_jpeg(64, 48, seed=2)
    path.write_bytes(rewritten)

    changed = with_bytes(job)
    assert isinstance(changed, RenderOutcome)
    assert changed.error_code == "source_changed"

    # The identity no longer vouches, so the bytes were hashed: they pass with their own hash.
    rehashed = with_bytes(dataclasses.replace(job, sha256=hashlib.sha256(rewritten).hexdigest()))
    assert isinstance(rehashed, RenderJob)
    assert rehashed.data == rewritten


def test_priming_renders_a_blank_jpeg_and_names_the_worker() -> None:
    assert prime_worker() == os.getpid()


def test_warm_up_primes_each_worker_once_per_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    rounds: list[int] = []
    original = PixelPool._schedule_priming

    def counting(pool: PixelPool) -> None:
        rounds.append(pool.workers)
        original(pool)

    monkeypatch.setattr(PixelPool, "_schedule_priming", counting)
    with PixelPool(2) as pool:
        pool.warm_up()
        pool.warm_up()
        (outcome,) = pool.render([image_job(1, samples.photo_jpeg(400, 300, seed=1))])
    assert rounds == [2]
    assert outcome.rendition is not None


def _job_for_file(blob_id: int, path: Path) -> RenderJob:
    """A job for a staged file, as the pipeline plans one: by path and content hash."""
    data = path.read_bytes()
    return dataclasses.replace(image_job(blob_id, data), data=None, path=str(path))


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The blob ids of the jobs a pool sends to its workers."""
    blob_ids: list[int] = []
    original = PixelPool._schedule

    def recording(pool: PixelPool, run: Any, job: RenderJob, **kwargs: Any) -> Any:
        blob_ids.append(job.blob_id)
        return original(pool, run, job, **kwargs)

    monkeypatch.setattr(PixelPool, "_schedule", recording)
    return blob_ids


def test_a_job_takes_the_early_render_of_its_own_file(tmp_path: Path, sent: list[int]) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(samples.photo_jpeg(320, 240, seed=1))
    with PixelPool(1) as pool:
        pool.render_ahead([photo], Recipe())
        (outcome,) = pool.render([_job_for_file(7, photo)])
    assert sent == []  # no job of its own
    assert outcome.blob_id == 7
    assert outcome.rendition is not None
    assert (outcome.rendition.width, outcome.rendition.height) == (320, 240)


def test_an_early_render_of_other_bytes_or_another_recipe_is_not_used(
    tmp_path: Path, sent: list[int]
) -> None:
    """The file changed after its early render, or the run's recipe differs: render anew."""
    changed, other_recipe = tmp_path / "changed.jpg", tmp_path / "recipe.jpg"
    changed.write_bytes(samples.photo_jpeg(320, 240, seed=1))
    other_recipe.write_bytes(samples.photo_jpeg(200, 100, seed=2))
    with PixelPool(1) as pool:
        pool.render_ahead([changed, other_recipe], Recipe(image_specs=DEFAULT_IMAGE_SPECS[:1]))
        # The one worker takes jobs in order: once this one is back, both early renders are.
        list(pool.render([image_job(9, samples.photo_jpeg(32, 32, seed=4))]))
        changed.write_bytes(samples.photo_jpeg(160, 120, seed=3))
        jobs = [
            dataclasses.replace(
                _job_for_file(1, changed), recipe=Recipe(image_specs=DEFAULT_IMAGE_SPECS[:1])
            ),
            _job_for_file(2, other_recipe),
        ]
        outcomes = {outcome.blob_id: outcome for outcome in pool.render(jobs)}
    assert sorted(sent) == [1, 2, 9]
    sizes = {
        blob_id: (o.rendition.width, o.rendition.height)
        for blob_id, o in outcomes.items()
        if o.rendition is not None
    }
    assert sizes == {1: (160, 120), 2: (200, 100)}
    assert len(outcomes[2].rendition.variants) > 2  # type: ignore[union-attr]


def test_only_readable_images_are_rendered_ahead(tmp_path: Path) -> None:
    """Anything else is left to the run, which fails it with its reason."""
    good, text, corrupt = tmp_path / "a.jpg", tmp_path / "b.txt", tmp_path / "c.jpg"
    good.write_bytes(samples.photo_jpeg(64, 48, seed=1))
    text.write_text("not an image")
    corrupt.write_bytes(samples.corrupt_jpeg())
    early = render_ahead(str(good), Recipe())
    assert early is not None
    assert early.sha256 == hashlib.sha256(good.read_bytes()).hexdigest()
    assert early.outcome.rendition is not None
    assert render_ahead(str(text), Recipe()) is None
    assert render_ahead(str(corrupt), Recipe()) is None
    assert render_ahead(str(tmp_path / "gone.jpg"), Recipe()) is None
    small = Recipe(image_limits=ImageLimits(max_bytes=good.stat().st_size - 1))
    assert render_ahead(str(good), small) is None  # over the size cap: never read whole
