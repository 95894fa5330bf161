"""Caps on what an upload may cost, passed in by callers so this layer reads no settings."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from mediamill.media.errors import ValidationError

MIB = 1024 * 1024


@dataclass(frozen=True)
class ImageLimits:
    """Caps checked from the header before any pixel is decoded."""

    max_bytes: int = 200 * MIB
    max_pixels: int = 120_000_000
    max_side: int = 30_000
    max_animation_pixels: int = 500_000_000
    max_frames: int = 1000
    max_svg_bytes: int = 5 * MIB

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"ImageLimits.{field.name} must be a positive int, got {value!r}")


def check_file_size(path: Path, max_bytes: int, what: str) -> int:
    """The file's size, refused when empty or over the cap before any parser opens it."""
    size = path.stat().st_size
    if size == 0:
        raise ValidationError("empty", "the upload is empty")
    if size > max_bytes:
        raise ValidationError(
            "too_large", f"the {what} is {size} bytes, over the {max_bytes}-byte cap"
        )
    return size
