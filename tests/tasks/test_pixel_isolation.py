"""Per-job limits of the pixel pool: a hang, a crash or a runaway allocation fails one job.

Each test sends a misbehaving job next to an ordinary one in the same batch, through real
worker processes: the misbehaving one fails with its reason, the ordinary one renders, and
the pool still renders the next batch. The misbehaviour comes from ``misbehave``, handed to
``PixelPool.render`` in place of ``render_job``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterable

import pytest
import pyvips

from mediamill.media import samples
from mediamill.media.limits import ImageLimits
from mediamill.tasks.pixels import (
    MIB,
    PixelLimits,
    PixelPool,
    PoolUnavailableError,
    RenderJob,
    RenderOutcome,
    render_job,
)
from mediamill.tasks.recipes import Recipe
from tests.tasks.jobs import image_job

MEMORY_CAP = 512 * MIB
# Long enough for an ordinary small render on a busy machine; the hang outlasts it anyway.
SECONDS = 6.0


def _job(blob_id: int, data: bytes, *, behaviour: str = "jpeg") -> RenderJob:
    """An image job; ``behaviour`` (in the format field) tells ``misbehave`` what to do."""
    recipe = Recipe(image_limits=ImageLimits(max_pixels=120_000_000))
    return image_job(blob_id, data, media_format=behaviour, recipe=recipe)


def misbehave(job: RenderJob) -> RenderOutcome:
    """Runs in a worker: the job's declared misbehaviour, or an ordinary render."""
    if job.media_format == "hang":
        # A decoder stuck in C code never returns to the interpreter, so it ignores the
        # SIGTERM a timeout sends first; blocking it here makes the SIGKILL after it count.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        while True:
            time.sleep(3600)
    if job.media_format in ("segfault", "killed"):
        # Dies partway through, as a decoder does: after real work, before answering.
        render_job(_job(job.blob_id, job.data or b""))
        os.kill(os.getpid(), signal.SIGSEGV if job.media_format == "segfault" else signal.SIGKILL)
    if job.media_format == "balloon":
        bytearray(MEMORY_CAP + 256 * MIB)
    return render_job(job)


def _progressive_jpeg(side: int) -> bytes:
    """A one-colour progressive JPEG of about a megabyte that takes about 650 MB to decode.

    libjpeg holds every DCT coefficient of a progressive image until its last scan, two
    bytes per sample at full size whatever the shrink-on-load (no chroma subsampling here).
    """
    image = pyvips.Image.black(side, side, bands=3).linear([1, 1, 1], [40, 90, 200])
    data: bytes = image.cast("uchar").jpegsave_buffer(Q=80, interlace=True, subsample_mode="off")
    return data


def _photo(seed: int) -> bytes:
    return samples.photo_jpeg(400, 300, seed=seed)


def _by_blob(outcomes: Iterable[RenderOutcome]) -> dict[int, RenderOutcome]:
    return {outcome.blob_id: outcome for outcome in outcomes}


def _renders_next_batch(pool: PixelPool) -> None:
    after = _by_blob(pool.render([_job(10, _photo(10)), _job(11, _photo(11))], misbehave))
    assert all(outcome.rendition is not None for outcome in after.values())


def test_a_hung_job_times_out_while_its_sibling_finishes() -> None:
    with PixelPool(2, limits=PixelLimits(seconds=SECONDS)) as pool:
        outcomes = _by_blob(
            pool.render([_job(1, _photo(1), behaviour="hang"), _job(2, _photo(2))], misbehave)
        )
        assert (outcomes[1].rendition, outcomes[1].error_code) == (None, "timed_out")
        assert f"{SECONDS:g} s" in (outcomes[1].error_message or "")
        assert outcomes[2].rendition is not None
        _renders_next_batch(pool)


@pytest.mark.parametrize(
    ("behaviour", "signal_name"), [("segfault", "SIGSEGV"), ("killed", "SIGKILL")]
)
def test_a_worker_that_dies_fails_its_job_alone(behaviour: str, signal_name: str) -> None:
    with PixelPool(2) as pool:
        outcomes = _by_blob(
            pool.render([_job(1, _photo(1), behaviour=behaviour), _job(2, _photo(2))], misbehave)
        )
        assert (outcomes[1].rendition, outcomes[1].error_code) == (None, "decoder_crashed")
        assert signal_name in (outcomes[1].error_message or "")
        assert outcomes[2].rendition is not None
        _renders_next_batch(pool)


def test_an_allocation_past_the_cap_is_out_of_memory() -> None:
    """Python's own allocation and libjpeg's (a real decode, through ``render_job``) both."""
    bomb = _progressive_jpeg(10_000)
    with PixelPool(2, limits=PixelLimits(memory_bytes=MEMORY_CAP)) as pool:
        outcomes = _by_blob(
            pool.render(
                [_job(1, _photo(1), behaviour="balloon"), _job(2, bomb), _job(3, _photo(3))],
                misbehave,
            )
        )
        assert (outcomes[1].rendition, outcomes[1].error_code) == (None, "out_of_memory")
        assert "512 MiB" in (outcomes[1].error_message or "")
        assert (outcomes[2].rendition, outcomes[2].error_code) == (None, "out_of_memory")
        assert outcomes[3].rendition is not None
        _renders_next_batch(pool)


def test_the_default_cap_leaves_room_for_a_large_decode() -> None:
    """The same 100 MP progressive JPEG, and a 12 MP photo under the lower cap, both fit."""
    with PixelPool(1) as pool:
        (large,) = pool.render([_job(1, _progressive_jpeg(10_000))])
    assert large.rendition is not None
    assert large.peak_rss_bytes > MEMORY_CAP
    with PixelPool(1, limits=PixelLimits(memory_bytes=MEMORY_CAP)) as pool:
        (photo,) = pool.render([_job(2, samples.photo_jpeg(4000, 3000, seed=2))])
    assert photo.rendition is not None


def _holds_a_job(pool: PixelPool) -> bool:
    """Whether one of the pool's workers has taken a job (pebble's own record of it)."""
    tasks = pool._pool._pool_manager.task_manager.tasks.values()
    return any(task.started for task in tasks)


def test_closing_stops_a_hung_job_and_ends_the_render_waiting_for_it() -> None:
    """A run that failed while a task still renders closes its pool: nobody waits out a limit."""
    pool = PixelPool(1, limits=PixelLimits(seconds=3600))
    ended: list[BaseException] = []

    def wait_for_outcomes() -> None:
        try:
            list(pool.render([_job(1, _photo(1), behaviour="hang")], misbehave))
        except PoolUnavailableError as error:
            ended.append(error)

    waiting = threading.Thread(target=wait_for_outcomes)
    waiting.start()
    try:
        deadline = time.monotonic() + 60
        while not _holds_a_job(pool) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _holds_a_job(pool)
    finally:
        pool.close()
    waiting.join()
    assert [str(error) for error in ended] == ["the pixel pool is closed"]
