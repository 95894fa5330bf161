"""The pixel pool: real worker processes, including one that dies mid-job."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time

from mediamill.media import samples
from mediamill.media.specs import DEFAULT_IMAGE_SPECS
from mediamill.tasks.pixels import PixelPool, RenderJob, missing_variants
from mediamill.tasks.recipes import Recipe


def _job(blob_id: int, data: bytes) -> RenderJob:
    return RenderJob(
        blob_id=blob_id,
        sha256=hashlib.sha256(data).hexdigest(),
        media_type="image",
        media_format="jpeg",
        recipe=Recipe(),
        data=data,
    )


def _kill_workers_once_started(pool: PixelPool) -> None:
    """SIGKILL the pool's workers as soon as they exist, i.e. while the first job runs."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = list(pool._executor._processes or {})  # the executor's own worker pids
        if pids:
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.005)


def test_outcomes_carry_variants_or_a_reason() -> None:
    with PixelPool(1) as pool:
        good, bad = list(pool.render([_job(1, samples.photo_jpeg(400, 300, seed=1)),
                                      _job(2, samples.corrupt_jpeg())]))  # fmt: skip
    by_blob = {good.blob_id: good, bad.blob_id: bad}
    assert by_blob[1].rendition is not None
    assert by_blob[1].peak_rss_bytes > 0
    assert by_blob[1].library_versions == {"libvips": by_blob[1].library_versions["libvips"]}
    assert (by_blob[2].rendition, by_blob[2].error_code) == (None, "corrupt")


def test_a_killed_worker_fails_its_job_and_the_pool_recovers() -> None:
    photo = samples.photo_jpeg(4000, 3000, seed=2)
    with PixelPool(1) as pool:
        killer = threading.Thread(target=_kill_workers_once_started, args=(pool,))
        killer.start()
        (crashed,) = pool.render([_job(1, photo)])
        killer.join()
        assert (crashed.rendition, crashed.error_code) == (None, "worker_crashed")

        (recovered,) = pool.render([_job(2, samples.photo_jpeg(400, 300, seed=3))])
        assert recovered.rendition is not None


def test_missing_variants_follow_alpha_and_versions() -> None:
    have = {(s.name, f.format, s.version) for s in DEFAULT_IMAGE_SPECS for f in s.formats}
    assert missing_variants(Recipe(), "image", have, has_alpha=False) == frozenset()
    alpha_missing = missing_variants(Recipe(), "image", have, has_alpha=True)
    assert {fmt for _, fmt, _ in alpha_missing} == {"png"}
