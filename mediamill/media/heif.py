"""HEIC decoding through pillow-heif, for libvips builds whose libheif has no HEVC decoder."""

from __future__ import annotations

import io
from functools import cache

import numpy as np
import pillow_heif
import pyvips
from PIL import Image

from mediamill.media.errors import ValidationError


@cache
def libvips_decodes_hevc() -> bool:
    """Whether this libvips can decode HEVC, tried once on a tiny HEIC that pillow-heif makes."""
    try:
        sample = io.BytesIO()
        pillow_heif.from_pillow(Image.new("RGB", (16, 16), (200, 30, 30))).save(sample)
    except (RuntimeError, ValueError, OSError):
        return False
    try:
        pyvips.Image.heifload_buffer(sample.getvalue()).avg()
    except pyvips.Error:
        return False
    return True


def decode_heic(data: bytes) -> pyvips.Image:
    """Decode the primary image upright (libheif applies irot/imir) as an 8-bit libvips image."""
    try:
        heif = pillow_heif.open_heif(data, convert_hdr_to_8bit=True)
        pixels = np.asarray(heif)
    except (RuntimeError, ValueError, OSError, SyntaxError) as exc:
        raise ValidationError("corrupt", f"cannot decode the HEIC image: {exc}") from exc
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    image = pyvips.Image.new_from_array(np.ascontiguousarray(pixels, dtype=np.uint8))
    image = image.copy(interpretation="b-w" if image.bands < 3 else "srgb")
    profile = heif.info.get("icc_profile")
    if profile:
        image.set_type(pyvips.GValue.blob_type, "icc-profile-data", bytes(profile))
    return image
