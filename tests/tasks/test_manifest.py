"""Manifest validation: whole-manifest refusals, per-row problems, and a backfill that skips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mediamill.tasks.manifest import (
    ARTIFACT_KEY,
    MAX_ALT_CHARS,
    MAX_PATH_CHARS,
    MAX_USER_CHARS,
    load_manifest,
    validate_manifest,
)
from mediamill.tasks.sources import EntityRef, SourceError, discover

ROWS = [
    # line 2 onwards, as (path, entity, alt, user)
    ("a.jpg", "product:1", "Red shoe", "ann"),  # 2: good
    ("", "product:1", "", ""),  # 3: no path
    ("./a.jpg", "product:2", "", ""),  # 4: the file line 2 lists
    ("b.jpg", "Product:1", "", ""),  # 5: entity type must be lowercase
    ("c.jpg", "", "x" * (MAX_ALT_CHARS + 1), ""),  # 6
    ("d.jpg", "", "", "u" * (MAX_USER_CHARS + 1)),  # 7
    ("e\x01.jpg", "", "", ""),  # 8
    ("f" * (MAX_PATH_CHARS + 1), "", "", ""),  # 9
    ("g.jpg", " collection:summer-2026 ", "", ""),  # 10: good, once stripped
    ("h.jpg", "", "", ""),  # 11: good, no entity
]


def _frame(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["path", "entity", "alt", "user"])


def test_good_rows_pass_and_each_bad_row_is_named_with_its_reason(tmp_path: Path) -> None:
    validation = validate_manifest(_frame(ROWS), tmp_path)

    assert not validation.valid
    assert validation.problems == {
        3: ("path is empty",),
        4: ("path repeats line 2",),
        5: (
            "entity 'Product:1' must look like TYPE:ID, e.g. product:42 "
            "(type: lowercase letters, digits, _; id: letters, digits, _ or -)",
        ),
        6: (f"alt is longer than {MAX_ALT_CHARS} characters",),
        7: (f"user is longer than {MAX_USER_CHARS} characters",),
        8: ("path contains control characters",),
        9: (f"path is longer than {MAX_PATH_CHARS} characters",),
    }
    assert list(validation.accepted()["line"]) == [2, 10, 11]
    assert list(validation.accepted()["entity"]) == ["product:1", "collection:summer-2026", None]
    rejected = validation.rejected()
    assert list(rejected["line"]) == [3, 4, 5, 6, 7, 8, 9]
    assert rejected.set_index("line").loc[4, "problems"] == "path repeats line 2"


def test_the_summary_has_one_row_per_expectation_with_counts_and_samples(tmp_path: Path) -> None:
    summary = validate_manifest(_frame(ROWS), tmp_path).summary()

    assert list(summary.columns[:6]) == [
        "expectation",
        "table",
        "column",
        "success",
        "checked",
        "unexpected",
    ]
    by_name = summary.set_index("expectation")
    assert len(by_name) == 7
    assert by_name.loc["path is listed once (the first row wins)", "unexpected"] == 1
    assert by_name.loc["entity, when given, is TYPE:ID", "checked"] == 5  # rows that have one
    sample = by_name.loc["entity, when given, is TYPE:ID", "sample"]
    assert sample == ["line=5: entity='Product:1'"]
    assert bool(by_name.loc["path is not empty", "success"]) is False


def test_a_clean_manifest_is_valid(tmp_path: Path) -> None:
    validation = validate_manifest(_frame([ROWS[0], ROWS[-1]]), tmp_path)

    assert validation.valid
    assert validation.summary()["success"].all()
    assert validation.rejected().empty


def test_a_header_only_manifest_is_valid_and_empty(tmp_path: Path) -> None:
    assert validate_manifest(pd.DataFrame(columns=["path"]), tmp_path).rows.empty


def test_a_manifest_without_a_path_column_is_refused_whole(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no 'path' column"):
        validate_manifest(pd.DataFrame({"file": ["a.jpg"]}), tmp_path)


def test_an_unknown_column_is_refused_whole_rather_than_ignored(tmp_path: Path) -> None:
    # A misspelt `entity` would otherwise ingest everything unattached, for good.
    frame = pd.DataFrame({"path": ["a.jpg"], "entitiy": ["product:1"]})
    with pytest.raises(SourceError, match="'entitiy'"):
        validate_manifest(frame, tmp_path)


def test_headers_are_matched_loosely_and_cells_read_any_way_work(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(" Path ,ENTITY,alt\na.jpg,,\nb.jpg,product:7,Blue\n")

    # pandas' defaults: blank cells become NaN, not "".
    validation = validate_manifest(pd.read_csv(manifest), tmp_path)

    assert validation.valid
    assert list(validation.rows["entity"]) == [None, "product:7"]
    assert list(validation.rows["user"]) == [None, None]


def test_a_spreadsheet_byte_order_mark_does_not_hide_the_path_column(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_bytes("path,alt\na.jpg,Café\n".encode("utf-8-sig"))

    frame = load_manifest(manifest)

    assert validate_manifest(frame, tmp_path).rows.loc[0, "alt"] == "Café"


def test_a_backfill_reads_bad_rows_as_problems_and_good_rows_as_files(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"x")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,entity,alt,user\na.jpg,,Red,\nsub/../a.jpg,product:2,,\n,,,\n")

    good, repeat, empty = discover(manifest, entity=EntityRef("collection", "all"), uploader="bo")

    assert (good.path, good.entity, good.uploader, good.problem) == (
        (tmp_path / "a.jpg").resolve(),
        EntityRef("collection", "all"),
        "bo",
        None,
    )
    assert repeat.problem == "manifest line 3: path repeats line 2"
    assert repeat.path is None
    assert repeat.filename == "a.jpg"
    # A bad row never shares a good row's backfill identity, even for the same file.
    assert repeat.source_key != good.source_key
    assert empty.filename == "m.csv:4"
    assert empty.problem == "manifest line 4: path is empty"


def test_an_unreadable_manifest_is_a_source_error(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_bytes(b'path\n"unterminated\n')
    with pytest.raises(SourceError, match="cannot read manifest"):
        load_manifest(manifest)


@pytest.mark.usefixtures("prefect_api")
def test_a_manifest_backfill_ingests_good_rows_and_reports_bad_ones(
    home: Path, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )
    from sqlalchemy import func, select

    from mediamill.catalog import migrate
    from mediamill.catalog.engine import make_engine
    from mediamill.catalog.models import Blob, Media
    from mediamill.flows.ingest import backfill
    from mediamill.media import samples
    from mediamill.settings import get_settings

    engine = make_engine(get_settings().resolved_database_url)
    migrate.upgrade(engine)
    for name, seed in (("shoe.jpg", 1), ("bag.jpg", 2), ("hat.jpg", 3)):
        (tmp_path / name).write_bytes(samples.photo_jpeg(200, 150, seed=seed))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "path,entity\n"
        "shoe.jpg,product:1\n"
        "bag.jpg,product:2\n"
        "hat.jpg,not an entity\n"  # the file exists, but the row is wrong: never read
        "shoe.jpg,product:3\n"
    )

    state = backfill(str(manifest), "acme", return_state=True)
    summary: dict[str, Any] = state.result()

    assert (summary["total"], summary["ingested"], summary["failed"]) == (4, 2, 2)
    assert [(f["source"], f["code"]) for f in summary["failures"]] == [
        ("hat.jpg", "invalid_source"),
        ("shoe.jpg", "invalid_source"),
    ]
    assert "manifest line 5: path repeats line 2" in summary["failures"][1]["message"]
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Blob)) == 2
        media = connection.scalar(select(func.count()).select_from(Media))

    rerun: dict[str, Any] = backfill(str(manifest), "acme")

    # Bad rows keep their own identity (the manifest line), so a rerun neither repeats
    # them nor mistakes the repeated shoe.jpg row for the good one.
    assert (rerun["unchanged"], rerun["ingested"], rerun["failed"]) == (4, 0, 0)
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Media)) == media
    engine.dispose()
    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[ARTIFACT_KEY]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]),
            )
        )
    rows = json.loads(str(artifact.data))
    failed = {row["expectation"] for row in rows if not row["success"]}
    assert failed == {"path is listed once (the first row wins)", "entity, when given, is TYPE:ID"}
