"""Encoders for variant formats; every output is re-encoded pixels with no metadata at all."""

from __future__ import annotations

from typing import Any, Final

import pyvips

from mediamill.media.errors import ProcessingError
from mediamill.media.specs import OutputFormat
from mediamill.media.vips import describe

DEFAULT_WEBP_EFFORT: Final = 4
DEFAULT_AVIF_EFFORT: Final = 1
DEFAULT_PNG_COMPRESSION: Final = 6
MAX_WEBP_EFFORT: Final = 6


def encode(image: pyvips.Image, output: OutputFormat) -> bytes:
    """Encode an sRGB 8-bit image as ``output`` with all metadata (EXIF, XMP, ICC) dropped."""
    if output.format == "jpeg" and image.hasalpha():
        raise ProcessingError("JPEG cannot carry alpha; use alpha_formats for this source")
    saver, options = _saver(output)
    try:
        return bytes(getattr(image, saver)(keep="none", **options))
    except pyvips.Error as exc:
        raise ProcessingError(f"{output.format} encoding failed: {describe(exc)}") from exc


def _saver(output: OutputFormat) -> tuple[str, dict[str, Any]]:
    """The libvips saver and its options for one output format."""
    if output.format == "jpeg":
        return "jpegsave_buffer", {
            "Q": output.quality,
            "optimize_coding": True,
            "interlace": output.progressive,
        }
    if output.format == "webp":
        effort = DEFAULT_WEBP_EFFORT if output.effort is None else output.effort
        return "webpsave_buffer", {
            "Q": output.quality,
            "lossless": output.lossless,
            "effort": min(effort, MAX_WEBP_EFFORT),
        }
    if output.format == "avif":
        return "heifsave_buffer", {
            "compression": "av1",
            "Q": output.quality,
            "lossless": output.lossless,
            "effort": DEFAULT_AVIF_EFFORT if output.effort is None else output.effort,
            "bitdepth": 8,
        }
    return "pngsave_buffer", {
        "compression": DEFAULT_PNG_COMPRESSION if output.effort is None else output.effort,
        "interlace": output.progressive,
    }
