"""The sweeps benchmark's set-up gives every sweep work to do, on both catalog backends."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.bench_sweeps import SWEPT_WORKSPACE, orphan_sweep, prepare, purge, time_sweeps
from bench.postgres import PostgresUnavailableError, find_bin_dir, throwaway_cluster
from bench.seed import seed_catalog
from mediamill.settings import Settings

ROWS = 4_000


@pytest.fixture(params=["sqlite", "postgresql"])
def seeded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
        seed_catalog(url, ROWS, workspaces=5)
        yield url
        return
    try:
        find_bin_dir()
    except PostgresUnavailableError as error:
        pytest.fail(str(error))  # `make test` installs it; a missing service must not hide
    with throwaway_cluster() as cluster:
        seed_catalog(cluster.url, ROWS, workspaces=5)
        yield cluster.url


def _files(root: Path) -> set[str]:
    return {
        str(Path(directory, name).relative_to(root))
        for directory, _, names in os.walk(root)
        for name in names
    }


def test_prepare_fills_the_store_and_the_orphan_sweep_finds_its_work(
    seeded: str, tmp_path: Path
) -> None:
    root = tmp_path / "store"
    store = prepare(seeded, root)
    assert store.workspace == SWEPT_WORKSPACE
    assert store.workspace_media > 0
    assert store.missing >= 1
    assert store.strays >= 1
    files = _files(root)
    assert len(files) == store.objects + store.strays
    engine = sa.create_engine(seeded)
    try:
        with engine.connect() as connection:
            tenant_variants = connection.execute(
                sa.text(
                    "SELECT count(*) FROM variants v JOIN blobs b ON b.id = v.blob_id "
                    "JOIN workspaces w ON w.id = b.workspace_id WHERE w.slug = :slug"
                ),
                {"slug": SWEPT_WORKSPACE},
            ).scalar_one()
    finally:
        engine.dispose()
    # The tenant got the variants of its ready blobs, and the store holds them.
    assert tenant_variants > 0
    assert sum("/optimized" in f or "_optimized" in f for f in files) > 0
    # Strays are older than the grace period; everything else was written just now.
    old = [f for f in files if (root / f).stat().st_mtime < time.time() - 3600]
    assert len(old) == store.strays

    # A second prepare of the same catalog adds no variants twice.
    again = prepare(seeded, tmp_path / "again")
    assert again.objects == store.objects

    settings = Settings(home=tmp_path / "home", database_url=seeded, storage_url=store.url)
    work = orphan_sweep(settings, SWEPT_WORKSPACE)
    assert work["object.deleted done"] == store.strays
    assert work["blob.missing_objects done"] == store.missing
    assert len(_files(root)) == store.objects
    purge(settings, None)


def test_every_sweep_runs_timed_over_a_small_catalog(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    seed_catalog(url, ROWS, workspaces=5)
    store = prepare(url, tmp_path / "store")
    timings = time_sweeps(url, store, tmp_path / "home")
    assert [t.sweep for t in timings] == ["orphan sweep", "purge", "quota sweep", "catalog health"]
    assert [t.scope for t in timings] == [SWEPT_WORKSPACE, None, None, SWEPT_WORKSPACE]
    assert all(t.seconds > 0 for t in timings)
    assert timings[2].work["snapshots"] == 5
    assert timings[3].work["expectations"] > 0
