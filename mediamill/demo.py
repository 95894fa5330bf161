"""``mediamill demo``: sample media through the whole pipeline on the embedded defaults."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mediamill.settings import Settings

BackfillRunner = Callable[..., dict[str, Any]]


def _video_sample() -> bytes:
    """A short clip with sound, made by ffmpeg from its test sources."""
    from mediamill.media import video_samples

    with tempfile.TemporaryDirectory(prefix="mediamill-demo-") as scratch:
        path = video_samples.clip(Path(scratch) / "clip.mp4", width=640, height=360, seconds=3)
        return path.read_bytes()


def write_samples(folder: Path, photos: int) -> list[Path]:
    """Deterministic samples, so a second demo run shows a no-op rerun."""
    from mediamill.media import mesh_samples, pdf_samples, samples

    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {}
    for number in range(photos):
        files[f"photo-{number:03d}.jpg"] = samples.photo_jpeg(1600, 1200, seed=number)
    files["rotated-with-gps.jpg"] = samples.photo_jpeg(
        1200, 900, seed=1000, orientation=6, gps=True, xmp=True
    )
    files["logo-with-alpha.png"] = samples.alpha_png(640, 480)
    files["spinner.gif"] = samples.animated_gif(320, 240, frames=12)
    files["product-clip.mp4"] = _video_sample()
    files["textured-box.glb"] = mesh_samples.textured_box_glb()
    files["spec-sheet.pdf"] = pdf_samples.brochure()
    files["photo-000-copy.jpg"] = files["photo-000.jpg"]
    files["truncated.jpg"] = samples.corrupt_jpeg()
    files["invoice.jpg"] = samples.html_as_jpg()
    written = []
    for name, data in files.items():
        path = folder / name
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
        written.append(path)
    return written


def run_demo(
    settings: Settings,
    console: Console,
    *,
    photos: int,
    workspace: str,
    backfill: BackfillRunner,
) -> None:
    from mediamill.catalog import repository as repo
    from mediamill.catalog.engine import make_engine, make_session_factory
    from mediamill.catalog.views import media_record
    from mediamill.deployments.local_server import running_server
    from mediamill.gallery import write_gallery
    from mediamill.storage.factory import open_store

    folder = settings.home / "demo" / "samples"
    with console.status("Generating sample media"):
        samples = write_samples(folder, photos)
    console.print(f"Generated {len(samples)} sample files in {folder}")
    summary = backfill(settings, folder, workspace, "demo", None, None, None, True)

    table = Table(title=f"Backfill of {folder.name} into workspace {workspace}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in ("total", "ingested", "duplicates", "unchanged", "failed", "seconds", "throughput"):
        value = summary[key]
        table.add_row(key, f"{value:.2f}" if isinstance(value, float) else str(value))
    console.print(table)
    if summary["failures"]:
        failures = Table(title="Failed on purpose: hostile and broken samples")
        for column in ("source", "code", "message"):
            failures.add_column(column, overflow="fold")
        for row in summary["failures"]:
            failures.add_row(row["source"], row["code"], row["message"])
        console.print(failures)

    store = open_store(settings)
    engine = make_engine(settings.resolved_database_url)
    try:
        with make_session_factory(engine)() as session:
            found = repo.find_workspace(session, workspace)
            rows = repo.recent_media(session, found.id, limit=1000) if found else []
            records = [media_record(m, store.url) for m in rows]
    finally:
        engine.dispose()
    gallery = write_gallery(settings.home / "gallery.html", workspace, records)
    console.print(f"Gallery: {gallery.as_uri()}")
    server = running_server(settings)
    if server is not None:
        console.print(
            f"Prefect UI with the run, its tasks and artifacts: {server.ui_url} "
            "(stop it with `mediamill server stop`)"
        )
    console.print(f"Try: mediamill media list --workspace {workspace}")
