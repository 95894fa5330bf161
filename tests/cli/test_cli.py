"""The ``mediamill`` command as a user runs it: real subprocesses, real catalog and store."""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from mediamill.catalog.engine import make_engine, make_session_factory
from mediamill.catalog.models import Blob, Media, MediaStatus
from mediamill.cli.ingest import _files_to_render_first, _settled_records
from mediamill.media import samples
from mediamill.settings import get_settings
from tests.cli.conftest import MEDIAMILL, Run

MEDIA_FIELDS = {
    "id", "workspace", "media_type", "status", "error", "sha256", "size", "mime_type",
    "width", "height", "placeholder", "variants",
}  # fmt: skip
VARIANT_FIELDS = {"name", "format", "width", "height", "size", "key", "url"}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "uploads"
    folder.mkdir()
    made = {
        "a.jpg": samples.photo_jpeg(640, 480, seed=1),
        "b.png": samples.alpha_png(300, 200),
        "evil.jpg": samples.html_as_jpg(),
    }
    paths = {}
    for name, data in made.items():
        paths[name] = folder / name
        paths[name].write_bytes(data)
    paths["a-copy.jpg"] = folder / "a-copy.jpg"
    paths["a-copy.jpg"].write_bytes(made["a.jpg"])
    return paths


@contextmanager
def _catalog() -> Iterator[sessionmaker[Session]]:
    """Sessions on the catalog the commands use, outside any command."""
    engine = make_engine(get_settings().resolved_database_url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def _catalog_counts() -> tuple[int, int]:
    with _catalog() as sessions, sessions() as session:
        blobs = session.scalar(select(func.count()).select_from(Blob))
        ready = session.scalar(
            select(func.count()).select_from(Media).where(Media.status == MediaStatus.ready)
        )
        return int(blobs or 0), int(ready or 0)


@pytest.mark.usefixtures("prefect_api")
def test_ingest_json_reports_every_input_in_order_and_fails_the_exit_code(
    cli: Run, files: dict[str, Path]
) -> None:
    order = ["a.jpg", "evil.jpg", "b.png", "gone.jpg", "a-copy.jpg"]
    paths = [str(files[n]) if n in files else str(files["a.jpg"].with_name(n)) for n in order]
    result = cli("ingest", *paths, "-w", "acme", "--json", check=1)
    records = json.loads(result.stdout)

    assert [r["filename"] for r in records] == order
    assert [r["status"] for r in records] == ["ready", "failed", "ready", "failed", "ready"]
    for record in records:
        assert record.keys() >= MEDIA_FIELDS
        assert record["workspace"] == "acme"
    good, evil, alpha, gone, copy = records
    assert gone["error"]["code"] == "not_found"
    assert gone["id"] is None
    assert evil["error"]["code"] == "unsupported_type"
    assert evil["variants"] == []
    assert good["sha256"] == copy["sha256"]
    assert good["id"] != copy["id"]
    assert [v["key"] for v in good["variants"]] == [v["key"] for v in copy["variants"]]
    assert (good["width"], good["height"], good["mime_type"]) == (640, 480, "image/jpeg")
    assert good["placeholder"]
    for variant in good["variants"]:
        assert variant.keys() >= VARIANT_FIELDS
        assert variant["url"].startswith("file://")
        assert Path(variant["url"].removeprefix("file://")).stat().st_size == variant["size"]
    assert "jpeg" not in {v["format"] for v in alpha["variants"]}
    assert _catalog_counts() == (2, 3)


@pytest.mark.usefixtures("prefect_api")
def test_list_and_show_read_the_catalog(cli: Run, files: dict[str, Path]) -> None:
    cli("ingest", str(files["a.jpg"]), "-w", "acme", "--json")
    cli("ingest", str(files["b.png"]), "-w", "acme", "--json")
    cli("ingest", str(files["a.jpg"]), "-w", "other", "--json")

    listed = json.loads(cli("media", "list", "-w", "acme", "--json").stdout)
    assert [r["filename"] for r in listed] == ["b.png", "a.jpg"]
    assert json.loads(cli("media", "list", "-w", "acme", "--type", "video", "--json").stdout) == []

    shown = json.loads(cli("media", "show", listed[1]["id"], "--json").stdout)
    assert shown == listed[1]
    hidden = cli("media", "show", listed[1]["id"], "-w", "other", check=1)
    assert "no media" in hidden.stderr
    table = cli("media", "list", "-w", "acme").stdout
    assert "b.png" in table
    assert "a.jpg" in table


@pytest.mark.usefixtures("prefect_api")
def test_list_filters_by_type_and_show_prints_type_metadata(cli: Run, tmp_path: Path) -> None:
    from mediamill.media import pdf_samples, video_samples

    clip = video_samples.clip(tmp_path / "clip.mp4", seconds=1)
    sheet = tmp_path / "sheet.pdf"
    sheet.write_bytes(pdf_samples.brochure(pages=4))
    cli("ingest", str(clip), str(sheet), "-w", "acme", "--json")

    videos = json.loads(cli("media", "list", "-w", "acme", "--type", "video", "--json").stdout)
    documents = json.loads(
        cli("media", "list", "-w", "acme", "--type", "document", "--json").stdout
    )
    assert [r["filename"] for r in videos] == ["clip.mp4"]
    assert [r["filename"] for r in documents] == ["sheet.pdf"]
    assert videos[0]["metadata"]["video_codec"] == "h264"
    assert videos[0]["metadata"]["duration"] == pytest.approx(1.0, abs=0.1)
    assert documents[0]["metadata"]["pages"] == 4
    assert {"web"} <= {v["name"] for v in videos[0]["variants"]}

    shown = cli("media", "show", videos[0]["id"]).stdout
    assert "Metadata" in shown
    assert "video_codec" in shown
    assert "h264" in shown


@pytest.mark.usefixtures("prefect_api")
def test_backfill_json_then_rerun_is_a_no_op(cli: Run, files: dict[str, Path]) -> None:
    folder = files["a.jpg"].parent
    first = json.loads(cli("backfill", str(folder), "-w", "acme", "--json", check=1).stdout)
    again = json.loads(cli("backfill", str(folder), "-w", "acme", "--json", check=0).stdout)

    assert (first["ingested"], first["duplicates"], first["failed"]) == (2, 1, 1)
    assert again["unchanged"] == 4
    assert again["ingested"] == 0
    assert _catalog_counts() == (2, 3)


def test_a_new_folder_names_its_first_files_for_the_workers_a_manifest_nothing(
    catalog: sessionmaker[Session], files: dict[str, Path], tmp_path: Path
) -> None:
    """A manifest is left to the run, whose reading of it loads pandas; a rerun's answers
    are ``first_to_render``'s own test."""
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"path\n{files['a.jpg']}\n")
    settings = get_settings()
    folder = files["a.jpg"].parent
    for seed in range(6):  # ten files in all, more than the run's first batches hold
        (folder / f"more-{seed}.jpg").write_bytes(samples.photo_jpeg(64, 48, seed=seed))
    with catalog() as session:
        first = _files_to_render_first(session, settings, folder, "acme", workers=1)
        assert _files_to_render_first(session, settings, manifest, "acme", workers=1) is None
    # One file per worker, then batches of two and four: the run's first three, in its order.
    assert first == sorted(path.resolve() for path in folder.iterdir())[:7]


@pytest.mark.usefixtures("prefect_api")
def test_two_identical_uploads_at_once_end_with_one_blob(cli: Run, files: dict[str, Path]) -> None:
    command = [MEDIAMILL, "ingest", str(files["a.jpg"]), "-w", "acme", "--json"]
    racers = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [racer.communicate(timeout=300) for racer in racers]

    assert [racer.returncode for racer in racers] == [0, 0], outputs
    records = [json.loads(out)[0] for out, _ in outputs]
    assert {r["status"] for r in records} == {"ready"}
    assert records[0]["id"] != records[1]["id"]
    assert _catalog_counts() == (1, 2)


def test_config_check_passes_on_the_embedded_defaults(cli: Run) -> None:
    cli("db", "upgrade")
    result = cli("config", "check")
    assert "MEDIAMILL_STORAGE_URL" in result.stdout
    assert result.stderr == ""


def test_config_check_names_the_unmigrated_catalog(cli: Run) -> None:
    result = cli("config", "check", check=1)
    assert "MEDIAMILL_DATABASE_URL: migrations at none" in result.stderr
    assert "run `mediamill db upgrade`" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MEDIAMILL_STORAGE_URL", "ftp://example/bucket", "MEDIAMILL_STORAGE_URL"),
        ("MEDIAMILL_DATABASE_URL", "mysql://db/x", "MEDIAMILL_DATABASE_URL"),
        ("MEDIAMILL_CDN_BASE_URL", "cdn.example.com", "MEDIAMILL_CDN_BASE_URL"),
        ("MEDIAMILL_STORAGE_OPTIONS", "{not json", "MEDIAMILL_STORAGE_OPTIONS"),
    ],
)
def test_config_check_rejects_malformed_settings(
    cli: Run, variable: str, value: str, message: str
) -> None:
    result = cli("config", "check", check=2, env={variable: value})
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_config_check_reports_an_unwritable_store(cli: Run, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store root should be")
    cli("db", "upgrade")
    result = cli("config", "check", check=1, env={"MEDIAMILL_STORAGE_URL": blocker.as_uri()})
    assert "MEDIAMILL_STORAGE_URL: " in result.stderr
    assert "MEDIAMILL_DATABASE_URL" not in result.stderr


def _set_status(media_id: str, status: MediaStatus) -> None:
    with _catalog() as sessions, sessions.begin() as session:
        session.execute(update(Media).where(Media.id == uuid.UUID(media_id)).values(status=status))


@pytest.mark.usefixtures("prefect_api")
def test_ingest_reports_a_media_another_run_is_processing_once_it_settles(
    cli: Run, files: dict[str, Path]
) -> None:
    (record,) = json.loads(cli("ingest", str(files["a.jpg"]), "-w", "acme", "--json").stdout)
    _set_status(record["id"], MediaStatus.processing)  # as if another run held its blob
    settles = threading.Timer(0.5, _set_status, (record["id"], MediaStatus.ready))
    settles.start()
    try:
        (waited,) = _settled_records(get_settings(), [record["id"]], timeout=30)
    finally:
        settles.join()
    assert waited["status"] == "ready"

    _set_status(record["id"], MediaStatus.processing)  # and this time it never settles
    (given_up,) = _settled_records(get_settings(), [record["id"]], timeout=0.5)
    assert given_up["status"] == "processing"
