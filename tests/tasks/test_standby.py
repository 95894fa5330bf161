"""Pixel workers started before Prefect loads: who takes them, and who closes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mediamill.catalog import repository as repo
from mediamill.flows.ingest import backfill
from mediamill.media import samples
from mediamill.settings import get_settings
from mediamill.tasks import standby
from mediamill.tasks.context import PipelineContext
from mediamill.tasks.pixels import PixelLimits, PixelPool
from mediamill.tasks.sources import discover, file_source

LIMITS = PixelLimits(seconds=60.0, memory_bytes=None)


@pytest.fixture
def closed(monkeypatch: pytest.MonkeyPatch) -> list[PixelPool]:
    """Every pixel pool closed during the test, in order."""
    seen: list[PixelPool] = []
    original = PixelPool.close

    def recording(pool: PixelPool) -> None:
        seen.append(pool)
        original(pool)

    monkeypatch.setattr(PixelPool, "close", recording)
    return seen


def test_a_run_of_the_same_size_and_limits_takes_the_waiting_pool(closed: list[PixelPool]) -> None:
    with standby.standby(1, LIMITS):
        pool = standby.take(1, LIMITS)
        assert isinstance(pool, PixelPool)
        assert standby.take(1, LIMITS) is None  # taken once
    assert closed == []  # its run closes it, not the block
    pool.close()


def test_a_run_of_another_size_or_limits_starts_its_own(closed: list[PixelPool]) -> None:
    with standby.standby(1, LIMITS):
        assert standby.take(2, LIMITS) is None
        assert standby.take(1, PixelLimits(seconds=30.0, memory_bytes=None)) is None
    assert len(closed) == 1  # nobody took it: closed as the block ended
    assert standby.take(1, LIMITS) is None


def test_a_pipeline_context_opened_in_the_block_takes_the_pool(
    catalog: Any, closed: list[PixelPool]
) -> None:
    settings = get_settings()
    with standby.standby(1, PixelLimits.from_settings(settings)):
        ctx = PipelineContext.open(settings, workers=1)
        taken = ctx.pool
        ctx.close()
    assert closed == [taken]  # closed by the run, and only once


@pytest.mark.usefixtures("prefect_api")
def test_pixel_work_is_expected_and_named_until_every_source_finished(
    catalog: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in (1, 2):
        (folder / f"{seed}.jpg").write_bytes(samples.photo_jpeg(64, 48, seed=seed))
    sources = discover(folder)
    with catalog() as session:
        assert standby.expects_pixel_work(session, None, sources)  # no workspace yet
        assert not standby.expects_pixel_work(session, None, [])
        # A new folder names its first files for the workers, in the run's order.
        first = standby.first_to_render(session, None, sources, workers=1)
        assert first == [source.path for source in sources]

    backfill(str(folder), "acme")
    (folder / "3.jpg").write_bytes(samples.photo_jpeg(64, 48, seed=3))
    with catalog() as session:
        workspace = repo.find_workspace(session, "acme")
        assert workspace is not None
        assert not standby.expects_pixel_work(session, workspace.id, sources)
        assert standby.first_to_render(session, workspace.id, sources, workers=1) is None
        assert standby.expects_pixel_work(session, workspace.id, discover(folder))
        # Some files are done: work to do, but which comes first is left to the run.
        assert standby.first_to_render(session, workspace.id, discover(folder), workers=1) == []
        # A source with no backfill identity (an upload) is always new work.
        upload = file_source(folder / "1.jpg")
        assert standby.expects_pixel_work(session, workspace.id, [upload])
