"""A backfill rendered on a Dask cluster ends exactly as one rendered by the local pool."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from distributed import Client, LocalCluster, get_task_stream
from sqlalchemy import select

from mediamill.catalog import migrate
from mediamill.catalog.engine import make_engine, make_session_factory
from mediamill.catalog.models import Blob, Media, Variant
from mediamill.flows.ingest import backfill
from mediamill.settings import get_settings
from mediamill.storage.factory import open_store
from mediamill.tasks.dask_pool import KEY_PREFIX
from tests.flows.sample_sets import write_mixed_set

pytestmark = pytest.mark.usefixtures("prefect_api")

# The sample set below: five distinct images and the truncated JPEG reach the renderer; the
# copy is a duplicate and the HTML page is refused before any pixel work.
RENDERED = 6


@pytest.fixture
def sample_dir(tmp_path: Path) -> Path:
    return write_mixed_set(tmp_path / "samples", 640, 480)


def _migrate_home(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIAMILL_HOME", str(path))
    engine = make_engine(get_settings().resolved_database_url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()


def _outcome() -> dict[str, Any]:
    """Media and variants of the current home, with each stored variant's content hash."""
    settings = get_settings()
    store = open_store(settings)
    engine = make_engine(settings.resolved_database_url)
    try:
        with make_session_factory(engine)() as session:
            media = session.execute(
                select(
                    Media.original_filename,
                    Media.status,
                    Media.error_code,
                    Media.error_message,
                    Blob.sha256,
                ).outerjoin(Blob, Media.blob_id == Blob.id)
            ).all()
            variants = session.execute(
                select(
                    Blob.sha256,
                    Variant.name,
                    Variant.format,
                    Variant.spec_version,
                    Variant.width,
                    Variant.height,
                    Variant.key,
                ).join(Blob, Variant.blob_id == Blob.id)
            ).all()
    finally:
        engine.dispose()
    return {
        "media": sorted(
            (name, str(status), code, message, sha) for name, status, code, message, sha in media
        ),
        "variants": sorted(
            (sha, name, fmt, version, width, height, hashlib.sha256(store.get(key)).hexdigest())
            for sha, name, fmt, version, width, height, key in variants
        ),
    }


def test_dask_backfill_matches_the_local_pool_and_runs_on_the_cluster(
    catalog: Any,
    sample_dir: Path,
    cluster: LocalCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Client(cluster.scheduler_address) as client, get_task_stream(client) as stream:
        on_dask = backfill(str(sample_dir), "acme", dask_address=cluster.scheduler_address)
        workers = set(client.scheduler_info()["workers"])
    dask_outcome = _outcome()

    _migrate_home(tmp_path / "home-local", monkeypatch)
    local = backfill(str(sample_dir), "acme")
    local_outcome = _outcome()

    counts = ("total", "ingested", "duplicates", "unchanged", "failed", "failures")
    assert {k: on_dask[k] for k in counts} == {k: local[k] for k in counts}
    assert (on_dask["ingested"], on_dask["duplicates"], on_dask["failed"]) == (5, 1, 2)
    assert dask_outcome["media"] == local_outcome["media"]
    assert len(dask_outcome["media"]) == 8
    # Every encoder here is deterministic across processes: the variant bytes match too.
    assert dask_outcome["variants"] == local_outcome["variants"]
    assert len({v[0] for v in dask_outcome["variants"]}) == 5

    renders = [task for task in stream.data if task["key"].startswith(KEY_PREFIX)]
    assert len(renders) == RENDERED
    assert {task["worker"] for task in renders} <= workers
    assert all(task["status"] == "OK" for task in renders)


def test_a_rerun_on_dask_does_no_pixel_work(
    catalog: Any, sample_dir: Path, cluster: LocalCluster
) -> None:
    backfill(str(sample_dir), "acme", dask_address=cluster.scheduler_address)
    with Client(cluster.scheduler_address) as client, get_task_stream(client) as stream:
        rerun = backfill(str(sample_dir), "acme", dask_address=cluster.scheduler_address)

    assert (rerun["unchanged"], rerun["ingested"], rerun["pixel_seconds"]) == (8, 0, 0.0)
    assert [task for task in stream.data if task["key"].startswith(KEY_PREFIX)] == []
