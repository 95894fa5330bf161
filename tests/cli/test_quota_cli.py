"""Quotas from the command line: ``quota set``, ``usage``, and parallel uploads racing a quota."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mediamill.catalog.engine import make_engine, make_session_factory
from mediamill.catalog.models import Blob
from mediamill.catalog.quota import QUOTA_EXCEEDED
from mediamill.media import samples
from mediamill.settings import get_settings
from tests.cli.conftest import MEDIAMILL, Run

RACERS = 4


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    """Photos of nearly the same size (within 8%), so a quota can fit exactly some of them."""
    folder = tmp_path / "uploads"
    folder.mkdir()
    paths = []
    for seed in range(RACERS):
        path = folder / f"photo-{seed}.jpg"
        path.write_bytes(samples.photo_jpeg(320, 240, seed=seed))
        paths.append(path)
    return paths


def _blob_count() -> int:
    engine = make_engine(get_settings().resolved_database_url)
    try:
        with make_session_factory(engine)() as session:
            return int(session.scalar(select(func.count()).select_from(Blob)) or 0)
    finally:
        engine.dispose()


def test_quota_set_accepts_sizes_and_none_and_refuses_nonsense(cli: Run) -> None:
    assert "5.00 GB (5,000,000,000 bytes)" in cli("quota", "set", "acme", "5GB").stdout
    assert "(524,288,000 bytes)" in cli("quota", "set", "acme", "500MiB").stdout
    usage = json.loads(cli("usage", "-w", "acme", "--json").stdout)
    assert (usage["quota_bytes"], usage["quota_state"], usage["media"]) == (500 * 2**20, "ok", 0)

    assert "unlimited" in cli("quota", "set", "acme", "none").stdout
    usage = json.loads(cli("usage", "-w", "acme", "--json").stdout)
    assert (usage["quota_bytes"], usage["quota_state"]) == (None, "unlimited")

    refused = cli("quota", "set", "acme", "5XB", check=2)
    assert "not a size" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert "no workspace 'nobody'" in cli("usage", "-w", "nobody", check=1).stderr


@pytest.mark.usefixtures("prefect_api")
def test_usage_json_counts_duplicates_as_owned_and_once_as_stored(
    cli: Run, photos: list[Path]
) -> None:
    cli("quota", "set", "acme", "10MB")
    copy = photos[0].with_name("copy.jpg")
    copy.write_bytes(photos[0].read_bytes())
    cli("ingest", str(photos[0]), str(copy), "-w", "acme", "-u", "ann", "--json")
    cli("ingest", str(photos[1]), "-w", "acme", "-u", "bob", "--json")
    first, second = (path.stat().st_size for path in photos[:2])

    usage = json.loads(cli("usage", "-w", "acme", "--by-user", "--json").stdout)

    assert (usage["workspace"], usage["quota_bytes"], usage["quota_state"]) == (
        "acme",
        10_000_000,
        "ok",
    )
    assert (usage["media"], usage["images"], usage["blobs"], usage["failed"]) == (3, 3, 2, 0)
    assert usage["logical_original_bytes"] == 2 * first + second
    assert usage["physical_original_bytes"] == first + second
    assert usage["physical_variant_bytes"] > 0
    assert usage["logical_variant_bytes"] > usage["physical_variant_bytes"]
    assert usage["physical_bytes"] == (
        usage["physical_original_bytes"] + usage["physical_variant_bytes"]
    )
    assert [(u["user"], u["media"], u["blobs"]) for u in usage["users"]] == [
        ("ann", 2, 1),
        ("bob", 1, 1),
    ]
    table = cli("usage", "-w", "acme", "--by-user").stdout
    assert "Usage of acme" in table
    assert "10.00 MB" in table
    assert "Usage by uploader" in table


@pytest.mark.usefixtures("prefect_api")
def test_parallel_uploads_that_together_exceed_the_quota_cannot_all_succeed(
    cli: Run, photos: list[Path]
) -> None:
    sizes = [path.stat().st_size for path in photos]
    # Any two fit, no three do: exactly two uploads may win, whichever they are.
    quota = 2 * max(sizes) + max(sizes) // 2
    assert 3 * min(sizes) > quota
    cli("quota", "set", "acme", str(quota))
    racers = [
        subprocess.Popen(
            [MEDIAMILL, "ingest", str(path), "-w", "acme", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in photos
    ]
    outputs = [racer.communicate(timeout=300) for racer in racers]

    records = [json.loads(out)[0] for out, _ in outputs]
    ready = [r for r in records if r["status"] == "ready"]
    refused = [r for r in records if r["status"] == "failed"]
    assert len(ready) == 2, outputs
    assert sum(r["size"] for r in ready) <= quota
    assert [r["error"]["code"] for r in refused] == [QUOTA_EXCEEDED] * (RACERS - 2)
    assert all("quota" in r["error"]["message"] for r in refused)
    codes = [racer.returncode for racer in racers]
    assert sorted(codes) == [0, 0, 1, 1]
    assert _blob_count() == 2  # a refused upload claims no blob

    usage = json.loads(cli("usage", "-w", "acme", "--json").stdout)
    assert usage["physical_original_bytes"] == sum(r["size"] for r in ready)
    assert (usage["media"], usage["failed"]) == (2, RACERS - 2)
