"""The Dask pixel pool on a real local cluster, including workers killed mid-job."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dask
import pytest
import pyvips
from distributed import Client, LocalCluster

from mediamill.media import samples
from mediamill.tasks.dask_pool import KEY_PREFIX, DaskPixelPool
from mediamill.tasks.pixels import RenderJob, RenderOutcome, with_bytes
from mediamill.tasks.recipes import Recipe
from tests.tasks.jobs import image_job


def _path_job(blob_id: int, path: Path, sha256: str) -> RenderJob:
    return RenderJob(
        blob_id=blob_id,
        sha256=sha256,
        media_type="image",
        media_format="jpeg",
        recipe=Recipe(),
        path=str(path),
    )


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> Iterator[LocalCluster]:
    """Two worker processes; closed whatever happens.

    Parametrised indirectly with a number, the scheduler fails a job after that many of its
    workers died (Dask's default is 3).
    """
    allowed = getattr(request, "param", None)
    config = {} if allowed is None else {"distributed.scheduler.allowed-failures": allowed}
    # The scheduler runs in this process and reads its config when it starts.
    with (
        dask.config.set(config),
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as local,
    ):
        yield local


def _kill_the_busy_worker(client: Client, pids: dict[str, int], killed: list[int]) -> None:
    """SIGKILL the worker the scheduler gave a render job to, while it holds that job."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for worker, keys in client.processing().items():
            if any(str(key).startswith(KEY_PREFIX) for key in keys):
                os.kill(pids[worker], signal.SIGKILL)
                killed.append(pids[worker])
                return
        time.sleep(0.005)


def _render_while_killing(pool: DaskPixelPool, client: Client, job: RenderJob) -> RenderOutcome:
    pids: dict[str, int] = client.run(os.getpid)
    killed: list[int] = []
    killer = threading.Thread(target=_kill_the_busy_worker, args=(client, pids, killed))
    killer.start()
    try:
        (outcome,) = pool.render([job])
    finally:
        killer.join()
    assert len(killed) == 1
    return outcome


def test_outcomes_carry_variants_or_a_reason(cluster: LocalCluster) -> None:
    jobs = [
        image_job(1, samples.photo_jpeg(400, 300, seed=1)),
        image_job(2, samples.corrupt_jpeg()),
    ]
    with DaskPixelPool(cluster.scheduler_address) as pool:
        assert pool.workers == 2
        by_blob = {outcome.blob_id: outcome for outcome in pool.render(jobs)}

    assert by_blob[1].rendition is not None
    assert by_blob[1].peak_rss_bytes > 0
    assert set(by_blob[1].library_versions or {}) == {"libvips", "pillow"}
    assert (by_blob[2].rendition, by_blob[2].error_code) == (None, "corrupt")


def test_a_worker_killed_mid_job_has_its_job_rerun_by_the_scheduler(cluster: LocalCluster) -> None:
    photo = samples.photo_jpeg(4000, 3000, seed=2)
    with (
        Client(cluster.scheduler_address) as client,
        DaskPixelPool(cluster.scheduler_address) as pool,
    ):
        outcome = _render_while_killing(pool, client, image_job(1, photo))

        assert outcome.rendition is not None
        assert outcome.error_code is None


@pytest.mark.parametrize("cluster", [0], indirect=True)
def test_a_job_whose_workers_all_died_fails_alone_and_the_pool_goes_on(
    cluster: LocalCluster,
) -> None:
    photo = samples.photo_jpeg(4000, 3000, seed=2)
    with (
        Client(cluster.scheduler_address) as client,
        DaskPixelPool(cluster.scheduler_address) as pool,
    ):
        crashed = _render_while_killing(pool, client, image_job(1, photo))
        assert (crashed.rendition, crashed.error_code) == (None, "worker_crashed")

        (recovered,) = pool.render([image_job(2, samples.photo_jpeg(400, 300, seed=3))])
        assert recovered.rendition is not None
        client.wait_for_workers(2)
        # The nanny's replacement worker was configured like the others: no libvips cache.
        assert set(client.run(pyvips.cache_get_max).values()) == {0}


def test_a_job_travels_with_its_bytes_so_workers_need_no_shared_files(tmp_path: Path) -> None:
    data = samples.photo_jpeg(64, 48, seed=1)
    path = tmp_path / "a.jpg"
    path.write_bytes(data)
    sha256 = hashlib.sha256(data).hexdigest()

    shipped = with_bytes(_path_job(1, path, sha256))
    assert isinstance(shipped, RenderJob)
    assert (shipped.path, shipped.data) == (None, data)

    path.write_bytes(samples.photo_jpeg(64, 48, seed=2))
    changed = with_bytes(_path_job(2, path, sha256))
    assert isinstance(changed, RenderOutcome)
    assert changed.error_code == "source_changed"

    missing = with_bytes(_path_job(3, tmp_path / "gone.jpg", sha256))
    assert isinstance(missing, RenderOutcome)
    assert missing.error_code == "unreadable"


def test_losing_the_scheduler_fails_the_jobs_left_and_the_render_returns() -> None:
    photo = samples.photo_jpeg(4000, 3000, seed=4)
    jobs = [image_job(blob_id, photo) for blob_id in range(8)]
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        # A short timeout: the client gives up reconnecting after it, instead of Dask's 30 s.
        DaskPixelPool(cluster.scheduler_address, timeout=5) as pool,
    ):
        outcomes = pool.render(jobs)
        first = next(outcomes)
        cluster.close()
        rest = list(outcomes)

    assert first.rendition is not None
    assert sorted(o.blob_id for o in [first, *rest]) == list(range(8))
    lost = [o for o in rest if o.rendition is None]
    assert lost
    assert {o.error_code for o in lost} == {"worker_crashed"}
    assert all("lost contact with the Dask cluster" in (o.error_message or "") for o in lost)
