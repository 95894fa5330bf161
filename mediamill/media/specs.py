"""Variant specs as data: validated on construction and hashed into a version for storage keys."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, Final, Literal, get_args

RENDERER_VERSION: Final = "1"
"""Part of every spec version; bump it when the renderer changes its output for the same spec."""

EncodedFormat = Literal["jpeg", "webp", "avif", "png"]
Fit = Literal["inside", "cover"]

MIME_TYPES: Final[dict[str, str]] = {
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "avif": "image/avif",
    "png": "image/png",
}
EXTENSIONS: Final[dict[str, str]] = {"jpeg": "jpg", "webp": "webp", "avif": "avif", "png": "png"}
ALPHA_CAPABLE: Final = frozenset({"webp", "avif", "png"})
MAX_VARIANT_SIDE: Final = 8192
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class OutputFormat:
    """One encoding of a variant; ``effort`` is libvips CPU effort (PNG: zlib level) or default."""

    format: EncodedFormat
    quality: int
    effort: int | None = None
    progressive: bool = False
    lossless: bool = False

    def __post_init__(self) -> None:
        if self.format not in get_args(EncodedFormat):
            raise ValueError(f"unknown output format {self.format!r}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"quality must be 1..100, got {self.quality}")
        if self.effort is not None and not 0 <= self.effort <= 9:
            raise ValueError(f"effort must be 0..9, got {self.effort}")

    @property
    def mime(self) -> str:
        """The Content-Type of this encoding."""
        return MIME_TYPES[self.format]

    @property
    def extension(self) -> str:
        """The file extension (no dot) storage keys use for this encoding."""
        return EXTENSIONS[self.format]


@dataclass(frozen=True)
class VariantSpec:
    """A named size and its encodings, with separate ones for sources that have alpha."""

    name: str
    width: int
    height: int
    fit: Fit
    formats: tuple[OutputFormat, ...]
    alpha_formats: tuple[OutputFormat, ...]

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"variant name {self.name!r} must match {_NAME.pattern}")
        if not (0 < self.width <= MAX_VARIANT_SIDE and 0 < self.height <= MAX_VARIANT_SIDE):
            raise ValueError(f"variant size must be 1..{MAX_VARIANT_SIDE} on each side")
        if self.fit not in get_args(Fit):
            raise ValueError(f"fit must be inside or cover, got {self.fit!r}")
        for label, outputs in (("formats", self.formats), ("alpha_formats", self.alpha_formats)):
            names = [o.format for o in outputs]
            if not names:
                raise ValueError(f"{label} of {self.name!r} is empty")
            if len(set(names)) != len(names):
                raise ValueError(f"{label} of {self.name!r} repeats a format")
        if any(o.format not in ALPHA_CAPABLE for o in self.alpha_formats):
            raise ValueError(f"alpha_formats of {self.name!r} must be png, webp or avif")

    @cached_property
    def version(self) -> str:
        """Short stable hash of the spec and renderer, so a changed recipe gets new keys."""
        canonical = json.dumps(
            {"renderer": RENDERER_VERSION, "spec": asdict(self)},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def outputs(self, has_alpha: bool) -> tuple[OutputFormat, ...]:
        """The encodings made for a source with or without alpha."""
        return self.alpha_formats if has_alpha else self.formats

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data, the inverse of ``from_dict``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VariantSpec:
        """Parse and validate a spec from plain data (e.g. a config file)."""
        return cls(
            name=data["name"],
            width=data["width"],
            height=data["height"],
            fit=data["fit"],
            formats=tuple(OutputFormat(**f) for f in data["formats"]),
            alpha_formats=tuple(OutputFormat(**f) for f in data["alpha_formats"]),
        )


def variant_keys(specs: Sequence[VariantSpec], has_alpha: bool) -> frozenset[tuple[str, str, str]]:
    """Every (name, format, version) a full render makes, to diff against what is stored."""
    return frozenset(
        (spec.name, out.format, spec.version) for spec in specs for out in spec.outputs(has_alpha)
    )


_JPEG = OutputFormat("jpeg", quality=85, progressive=True)
_JPEG_SMALL = OutputFormat("jpeg", quality=85)
_WEBP = OutputFormat("webp", quality=80, effort=4)
_AVIF = OutputFormat("avif", quality=50, effort=1)
_PNG = OutputFormat("png", quality=100, effort=6)

DEFAULT_IMAGE_SPECS: Final[tuple[VariantSpec, ...]] = (
    VariantSpec("optimized", 1200, 1200, "inside", (_JPEG, _WEBP, _AVIF), (_PNG, _WEBP, _AVIF)),
    VariantSpec("thumb", 300, 300, "cover", (_JPEG_SMALL, _WEBP), (_PNG, _WEBP)),
    VariantSpec("tiny", 150, 150, "cover", (_JPEG_SMALL, _WEBP), (_PNG, _WEBP)),
)
