"""``mediamill backfill --dask``: the command renders on the cluster it is given."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from distributed import Client, LocalCluster, get_task_stream

from mediamill.media import samples
from mediamill.tasks.dask_pool import KEY_PREFIX
from tests.cli.conftest import Run


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    photo = samples.photo_jpeg(640, 480, seed=1)
    (uploads / "a.jpg").write_bytes(photo)
    (uploads / "a-copy.jpg").write_bytes(photo)
    (uploads / "b.png").write_bytes(samples.alpha_png(300, 200))
    (uploads / "truncated.jpg").write_bytes(samples.corrupt_jpeg())
    return uploads


@pytest.mark.usefixtures("prefect_api")
def test_backfill_with_dask_renders_on_the_cluster(
    cli: Run, folder: Path, cluster: LocalCluster
) -> None:
    address = cluster.scheduler_address
    with Client(address) as client, get_task_stream(client) as stream:
        result = cli("backfill", str(folder), "-w", "acme", "--dask", address, "--json", check=1)
    summary = json.loads(result.stdout)

    assert (summary["ingested"], summary["duplicates"], summary["failed"]) == (2, 1, 1)
    assert [(f["source"], f["code"]) for f in summary["failures"]] == [("truncated.jpg", "corrupt")]
    renders = [task for task in stream.data if task["key"].startswith(KEY_PREFIX)]
    assert len(renders) == 3


def test_dask_and_workers_together_are_refused(cli: Run, folder: Path) -> None:
    result = cli(
        "backfill", str(folder), "-w", "acme", "--dask", "tcp://127.0.0.1:8786", "--workers", "2",
        check=2,
    )  # fmt: skip
    assert "--workers" in result.stderr
