"""What a video render makes and may cost: light data the orchestrator reads too.

Kept apart from ``video`` so that planning which variants a video needs never loads PyAV,
FFmpeg or libvips. Specs are data: validated on construction and hashed into a version.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from functools import cached_property
from typing import Any, Final

from mediamill.media.rendition import VariantId
from mediamill.media.specs import VariantSpec, variant_keys

MIB: Final = 1024 * 1024

VIDEO_RENDERER_VERSION: Final = "1"
"""Part of every video spec version; bump it when the commands change their output."""

X264_PRESETS: Final = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class VideoLimits:
    """Caps on what a video upload may cost, checked from the header before any encode.

    ``timeout_seconds`` bounds every ``ffmpeg`` run (an encode of the longest allowed clip
    must fit), ``probe_seconds`` the sandboxed probe, ``memory_bytes`` the resident memory
    of either.
    """

    max_bytes: int = 1024 * MIB
    max_seconds: float = 600.0
    max_side: int = 4096
    max_pixels: int = 4096 * 2304
    timeout_seconds: float = 300.0
    probe_seconds: float = 30.0
    memory_bytes: int = 2048 * MIB

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            kind = int if field.type == "int" else int | float
            if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
                raise ValueError(f"VideoLimits.{field.name} must be positive, got {value!r}")


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise ValueError(f"variant name {name!r} must match {_NAME.pattern}")


def _spec_version(kind: str, spec: Any) -> str:
    canonical = json.dumps(
        {"renderer": VIDEO_RENDERER_VERSION, "kind": kind, "spec": asdict(spec)},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _check_crf(crf: int) -> None:
    if not 0 <= crf <= 51:
        raise ValueError(f"crf must be 0..51, got {crf}")


def _check_encoding(preset: str, audio_kbps: int, max_fps: int) -> None:
    if preset not in X264_PRESETS:
        raise ValueError(f"preset must be one of {', '.join(X264_PRESETS)}, got {preset!r}")
    if not 32 <= audio_kbps <= 512:
        raise ValueError(f"audio_kbps must be 32..512, got {audio_kbps}")
    if not 1 <= max_fps <= 240:
        raise ValueError(f"max_fps must be 1..240, got {max_fps}")


@dataclass(frozen=True)
class WebVideoSpec:
    """The progressive MP4 every video gets: H.264 High, yuv420p, AAC, moov first.

    It fits inside ``max_width`` x ``max_height`` (a portrait source fits the same box
    turned upright), never upscaled, with even sides; ``crf``/``preset`` are x264's.
    """

    name: str = "web"
    max_width: int = 1920
    max_height: int = 1080
    crf: int = 23
    preset: str = "medium"
    audio_kbps: int = 128
    max_fps: int = 60

    def __post_init__(self) -> None:
        _check_name(self.name)
        for side in (self.max_width, self.max_height):
            if not (2 <= side <= 4096 and side % 2 == 0):
                raise ValueError(f"web video sides must be even and 2..4096, got {side}")
        _check_crf(self.crf)
        _check_encoding(self.preset, self.audio_kbps, self.max_fps)

    @cached_property
    def version(self) -> str:
        """Short stable hash of the spec and renderer, so a changed recipe gets new keys."""
        return _spec_version("web", self)

    @property
    def variant_id(self) -> VariantId:
        """The one (name, format, version) this spec makes."""
        return (self.name, "mp4", self.version)


@dataclass(frozen=True)
class HlsRung:
    """One rendition of the ladder: its short side (360 = 640x360 or 360x640) and rate cap."""

    height: int
    max_kbps: int
    crf: int = 23

    def __post_init__(self) -> None:
        if not (144 <= self.height <= 2160 and self.height % 2 == 0):
            raise ValueError(f"rung height must be even and 144..2160, got {self.height}")
        if not 100 <= self.max_kbps <= 100_000:
            raise ValueError(f"rung max_kbps must be 100..100000, got {self.max_kbps}")
        _check_crf(self.crf)

    @property
    def box(self) -> tuple[int, int]:
        """The 16:9 landscape box this rung fits sources into."""
        return even(self.height * 16 / 9), self.height


@dataclass(frozen=True)
class HlsSpec:
    """An adaptive-streaming ladder: one fMP4 file per rung, addressed by byte ranges.

    Its objects are the master playlist ``name`` and, per rung, the playlist
    ``{name}-{height}`` and its media ``{name}-{height}-media``: the same for every source,
    so what a render makes is known before the video is opened. A rung taller than the
    source is never upscaled: it comes out at the size of the rung below it, is not
    encoded twice (its media is that rung's bytes) and the master lists each size once.
    """

    rungs: tuple[HlsRung, ...] = (
        HlsRung(360, max_kbps=1000),
        HlsRung(720, max_kbps=3500),
        HlsRung(1080, max_kbps=7000),
    )
    name: str = "hls"
    segment_seconds: int = 6
    preset: str = "medium"
    audio_kbps: int = 128
    max_fps: int = 60

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not self.rungs:
            raise ValueError("an HLS ladder needs at least one rung")
        heights = [rung.height for rung in self.rungs]
        if heights != sorted(set(heights)):
            raise ValueError("HLS rungs must be in increasing height order, without repeats")
        if not 1 <= self.segment_seconds <= 60:
            raise ValueError(f"segment_seconds must be 1..60, got {self.segment_seconds}")
        _check_encoding(self.preset, self.audio_kbps, self.max_fps)

    @cached_property
    def version(self) -> str:
        """Short stable hash of the ladder and renderer, shared by all its objects."""
        return _spec_version("hls", self)

    def sizes(self, width: int, height: int) -> tuple[tuple[int, int], ...]:
        """Each rung's output size for a displayed ``width`` x ``height`` source, in order."""
        return tuple(fit_even(width, height, *rung.box) for rung in self.rungs)

    @property
    def variant_ids(self) -> frozenset[VariantId]:
        """Every (name, format, version) the ladder makes, whatever the source."""
        ids = {(self.name, "m3u8", self.version)}
        for rung in self.rungs:
            ids.add((self.rung_name(rung), "m3u8", self.version))
            ids.add((self.media_name(rung), "mp4", self.version))
        return frozenset(ids)

    def rung_name(self, rung: HlsRung) -> str:
        """The variant name of a rung's playlist."""
        return f"{self.name}-{rung.height}"

    def media_name(self, rung: HlsRung) -> str:
        """The variant name of a rung's media file."""
        return f"{self.name}-{rung.height}-media"


DEFAULT_WEB_VIDEO: Final = WebVideoSpec()
DEFAULT_HLS: Final = HlsSpec()


def planned_video_variants(
    image_specs: Sequence[VariantSpec],
    web: WebVideoSpec = DEFAULT_WEB_VIDEO,
    hls: HlsSpec | None = None,
) -> frozenset[VariantId]:
    """Every (name, format, version) a full render makes, to diff against what is stored.

    Posters are made without alpha, so they get the specs' plain formats.
    """
    ids = set(variant_keys(image_specs, has_alpha=False)) | {web.variant_id}
    if hls is not None:
        ids |= hls.variant_ids
    return frozenset(ids)


def even(value: float) -> int:
    """The even integer at or just below ``value``, at least 2 (H.264 wants even sides)."""
    return max(2, int(value + 1e-6) // 2 * 2)


def fit_even(width: int, height: int, box_width: int, box_height: int) -> tuple[int, int]:
    """Fit inside the box turned to the source's orientation; never upscale; even sides."""
    if height > width:
        box_width, box_height = box_height, box_width
    scale = min(1.0, box_width / width, box_height / height)
    return even(width * scale), even(height * scale)
