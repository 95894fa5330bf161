"""Video, 3D models and documents through the same backfill flow as images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from mediamill.catalog.models import Blob, Media, MediaStatus, MediaType
from mediamill.catalog.views import media_record
from mediamill.flows.ingest import backfill
from mediamill.media import mesh_samples, pdf_samples, video_samples
from mediamill.settings import get_settings
from mediamill.storage.factory import open_store

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture
def mixed_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "mixed"
    folder.mkdir()
    video_samples.clip(folder / "clip.mp4", width=320, height=240, seconds=1.5)
    video_samples.clip(folder / "clip.webm", width=256, height=144, seconds=1, container="webm")
    (folder / "box.glb").write_bytes(mesh_samples.textured_box_glb())
    (folder / "cube.stl").write_bytes(mesh_samples.unit_cube("stl"))
    (folder / "sheet.pdf").write_bytes(pdf_samples.brochure(pages=2))
    (folder / "no-position.glb").write_bytes(mesh_samples.glb_without_position())
    (folder / "cut.pdf").write_bytes(pdf_samples.truncated(0.5))
    target = video_samples.sentinel(tmp_path / "secret.txt")
    video_samples.playlist(folder / "playlist.mp4", target)
    return folder


def _records(catalog: Any) -> dict[str, dict[str, Any]]:
    store = open_store(get_settings())
    with catalog() as session:
        media = session.scalars(
            select(Media).options(
                selectinload(Media.workspace),
                selectinload(Media.blob).selectinload(Blob.variants),
            )
        ).all()
        return {m.original_filename: media_record(m, store.url) for m in media}


def _formats(record: dict[str, Any]) -> set[str]:
    return {f"{v['name']}.{v['format']}" for v in record["variants"]}


def test_every_media_type_is_ingested_with_its_variants_and_metadata(
    catalog: Any, mixed_dir: Path
) -> None:
    summary = backfill(str(mixed_dir), "acme")

    assert (summary["ingested"], summary["failed"]) == (5, 3), summary
    reasons = {f["source"]: f["code"] for f in summary["failures"]}  # type: ignore[union-attr]
    assert reasons == {
        "no-position.glb": "no_geometry",
        "cut.pdf": "corrupt",
        "playlist.mp4": "unsupported_type",
    }
    records = _records(catalog)

    for name in ("clip.mp4", "clip.webm"):
        video = records[name]
        assert (video["media_type"], video["status"]) == ("video", "ready")
        assert {"web.mp4", "optimized.jpeg", "thumb.webp", "tiny.jpeg"} <= _formats(video)
        assert {"duration", "fps", "video_codec", "audio_codec"} <= set(video["metadata"])
        assert video["placeholder"]
    assert records["clip.mp4"]["metadata"]["audio_codec"] == "aac"
    assert records["clip.mp4"]["width"] == 320

    for name in ("box.glb", "cube.stl"):
        model = records[name]
        assert (model["media_type"], model["status"]) == ("model", "ready")
        assert {"web.glb", "optimized.jpeg", "front-thumb.webp", "side-tiny.jpeg"} <= _formats(
            model
        )
        assert {"back-optimized.jpeg", "contact-sheet.jpeg"} <= _formats(model)
        assert {"vertices", "faces", "materials", "bounds"} <= set(model["metadata"])
    assert records["cube.stl"]["metadata"]["faces"] == 12

    document = records["sheet.pdf"]
    assert (document["media_type"], document["status"]) == ("document", "ready")
    assert document["metadata"]["pages"] == 2
    assert {"optimized.jpeg", "thumb.webp", "tiny.webp"} <= _formats(document)

    _check_published_types(records)
    _check_failures(catalog)


def _check_published_types(records: dict[str, dict[str, Any]]) -> None:
    """Stored web MP4s, GLBs and originals carry their own content types."""
    store = open_store(get_settings())
    web_mp4 = next(v for v in records["clip.mp4"]["variants"] if v["name"] == "web")
    glb = next(v for v in records["box.glb"]["variants"] if v["name"] == "web")
    assert store.head(web_mp4["key"]).content_type == "video/mp4"
    assert store.head(glb["key"]).content_type == "model/gltf-binary"
    assert store.get(glb["key"])[:4] == b"glTF"
    assert b"ftyp" in store.get(web_mp4["key"])[:16]
    original = records["sheet.pdf"]["original"]
    assert store.head(original["key"]).content_type == "application/pdf"


def test_a_rerun_of_mixed_media_is_a_no_op(catalog: Any, mixed_dir: Path) -> None:
    backfill(str(mixed_dir), "acme")
    rerun = backfill(str(mixed_dir), "acme")
    assert rerun["unchanged"] == 8
    assert (rerun["ingested"], rerun["pixel_seconds"]) == (0, 0.0)


def _check_failures(catalog: Any) -> None:
    """Failed media of each type keep their reason and their type."""
    with catalog() as session:
        failed = session.scalars(select(Media).where(Media.status == MediaStatus.failed)).all()
        assert {m.original_filename for m in failed} == {
            "no-position.glb",
            "cut.pdf",
            "playlist.mp4",
        }
        assert all(m.error_message for m in failed)
        types = {m.original_filename: m.media_type for m in failed}
    assert types["no-position.glb"] == MediaType.model
    assert types["cut.pdf"] == MediaType.document


def test_an_hls_ladder_is_published_with_references_that_resolve(
    catalog: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDIAMILL_VIDEO_HLS", "true")
    folder = tmp_path / "hls"
    folder.mkdir()
    video_samples.clip(folder / "clip.mp4", width=320, height=240, seconds=1)
    summary = backfill(str(folder), "acme")
    assert summary["ingested"] == 1, summary

    store = open_store(get_settings())
    (record,) = _records(catalog).values()
    hls = [v for v in record["variants"] if v["name"].startswith("hls")]
    master = next(v for v in hls if v["name"] == "hls")
    assert store.head(master["key"]).content_type == "application/vnd.apple.mpegurl"
    directory = master["key"].rsplit("/", 1)[0]
    stored = {v["key"] for v in hls}
    playlists = [v for v in hls if v["format"] == "m3u8"]
    assert len(playlists) >= 2  # the master and at least one rung
    for playlist in playlists:
        text = store.get(playlist["key"]).decode()
        assert text.startswith("#EXTM3U")
        references = [
            line.split('URI="')[1].split('"')[0] if 'URI="' in line else line
            for line in text.splitlines()
            if line and (not line.startswith("#") or 'URI="' in line)
        ]
        assert references
        for reference in references:
            assert f"{directory}/{reference}" in stored, (playlist["name"], reference)
