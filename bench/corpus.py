"""Generated benchmark inputs, cached between runs (they take a minute to make)."""

from __future__ import annotations

import functools
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

CACHE = Path(__file__).resolve().parent / ".cache"


@functools.cache
def _scene(width: int, height: int) -> Any:
    """The procedural scene, rendered once per process: it costs seconds at 12 MP."""
    from mediamill.media import samples

    return samples.photo(width, height, seed=0).copy_memory()


def _one_photo(args: tuple[Path, int, int, int]) -> None:
    import pyvips

    path, width, height, seed = args
    if path.exists():
        return
    # One shared scene, made distinct per file by a coloured patch: distinct SHA-256, same cost.
    base = _scene(width, height)
    colour = [seed % 256, (seed * 7) % 256, (seed * 13) % 256]
    patch = pyvips.Image.black(96, 96, bands=3).linear([1, 1, 1], colour)
    image = base.insert(patch.cast("uchar"), 32 + (seed * 53) % (width - 160), 32)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(image.jpegsave_buffer(Q=90))
    tmp.rename(path)


def jpeg_folder(count: int, width: int = 4000, height: int = 3000) -> Path:
    """``count`` distinct ``width`` x ``height`` JPEGs in a cached folder."""
    folder = CACHE / f"jpeg-{width}x{height}-{count}"
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(folder / f"photo-{i:04d}.jpg", width, height, i) for i in range(count)]
    missing = [job for job in jobs if not job[0].exists()]
    if missing:
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            list(pool.map(_one_photo, missing))
    return folder


def big_jpeg(megapixels: int = 100) -> Path:
    """One large JPEG (about ``megapixels`` million pixels, 4:3)."""
    height = int((megapixels * 1_000_000 * 3 / 4) ** 0.5)
    width = height * 4 // 3
    path = CACHE / f"big-{width}x{height}.jpg"
    CACHE.mkdir(parents=True, exist_ok=True)
    _one_photo((path, width, height, 1))
    return path
