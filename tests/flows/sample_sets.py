"""The mixed folder several backfill tests run: photos, a copy, alpha, a GIF, two bad files."""

from __future__ import annotations

from pathlib import Path

from mediamill.media import samples


def write_mixed_set(folder: Path, width: int = 800, height: int = 600) -> Path:
    """Three photos, an exact copy of one, a PNG with alpha, a GIF, a truncated JPEG and HTML."""
    folder.mkdir(parents=True, exist_ok=True)
    for seed in range(3):
        (folder / f"photo-{seed}.jpg").write_bytes(samples.photo_jpeg(width, height, seed=seed))
    (folder / "photo-0-copy.jpg").write_bytes((folder / "photo-0.jpg").read_bytes())
    (folder / "alpha.png").write_bytes(samples.alpha_png(200, 100))
    (folder / "anim.gif").write_bytes(samples.animated_gif(120, 90, frames=5))
    (folder / "truncated.jpg").write_bytes(samples.corrupt_jpeg())
    (folder / "page.jpg").write_bytes(samples.html_as_jpg())
    return folder
