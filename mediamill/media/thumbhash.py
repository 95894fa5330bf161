"""ThumbHash placeholders (Evan Wallace's format) in numpy, a few ms for a 100x100 image."""

from __future__ import annotations

import base64
import math
from typing import Final

import numpy as np
import numpy.typing as npt

MAX_SIDE: Final = 100


def _round(value: float) -> int:
    """Round half up, as the reference encoder's Math.round does."""
    return math.floor(value + 0.5)


def _basis(size: int, frequency: int) -> npt.NDArray[np.float64]:
    return np.array([math.cos(math.pi / size * frequency * (i + 0.5)) for i in range(size)])


def _encode_channel(
    channel: npt.NDArray[np.float64], nx: int, ny: int
) -> tuple[float, list[float], float]:
    """DCT terms summed in the reference encoder's order, so hashes match it bit for bit."""
    height, width = channel.shape
    dc = 0.0
    ac: list[float] = []
    for cy in range(ny):
        fy = _basis(height, cy)[:, None]
        cx = 0
        while cx * ny < nx * (ny - cy):
            terms = (channel * _basis(width, cx)[None, :]) * fy
            value = float(np.cumsum(terms.ravel())[-1]) / (width * height)
            if cx or cy:
                ac.append(value)
            else:
                dc = value
            cx += 1
    scale = max((abs(v) for v in ac), default=0.0)
    if scale:
        ac = [0.5 + 0.5 / scale * v for v in ac]
    return dc, ac, scale


def rgba_to_thumbhash(rgba: npt.NDArray[np.uint8]) -> bytes:
    """Encode an (height, width, 4) uint8 RGBA array of at most 100x100 as ThumbHash bytes."""
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"expected an (h, w, 4) RGBA array, got shape {rgba.shape}")
    height, width = rgba.shape[:2]
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ValueError(f"{width}x{height} doesn't fit in {MAX_SIDE}x{MAX_SIDE}")
    raw = rgba.astype(np.float64)
    alpha = raw[..., 3] / 255
    weighted = alpha[..., None] / 255 * raw[..., :3]
    total_alpha = float(np.cumsum(alpha.ravel())[-1])
    average = np.zeros(3)
    if total_alpha:
        average = np.cumsum(weighted.reshape(-1, 3), axis=0)[-1] / total_alpha
    has_alpha = total_alpha < width * height
    l_limit = 5 if has_alpha else 7
    lx = max(1, _round(l_limit * width / max(width, height)))
    ly = max(1, _round(l_limit * height / max(width, height)))

    rgb = average * (1 - alpha[..., None]) + weighted
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    l_dc, l_ac, l_scale = _encode_channel((r + g + b) / 3, max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = _encode_channel((r + g) / 2 - b, 3, 3)
    q_dc, q_ac, q_scale = _encode_channel(r - g, 3, 3)

    landscape = width > height
    header24 = (
        _round(63 * l_dc)
        | (_round(31.5 + 31.5 * p_dc) << 6)
        | (_round(31.5 + 31.5 * q_dc) << 12)
        | (_round(31 * l_scale) << 18)
        | (int(has_alpha) << 23)
    )
    header16 = (
        (ly if landscape else lx)
        | (_round(63 * p_scale) << 3)
        | (_round(63 * q_scale) << 9)
        | (int(landscape) << 15)
    )
    out = [header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8]
    factors = [l_ac, p_ac, q_ac]
    if has_alpha:
        a_dc, a_ac, a_scale = _encode_channel(alpha, 5, 5)
        out.append(_round(15 * a_dc) | (_round(15 * a_scale) << 4))
        factors.append(a_ac)
    nibbles = [_round(15 * f) for ac in factors for f in ac]
    nibbles += [0] * (len(nibbles) % 2)
    out += [low | (high << 4) for low, high in zip(nibbles[::2], nibbles[1::2], strict=True)]
    return bytes(out)


def thumbhash_base64(rgba: npt.NDArray[np.uint8]) -> str:
    """The ThumbHash as standard base64, the form clients decode and HTML carries."""
    return base64.b64encode(rgba_to_thumbhash(rgba)).decode("ascii")


def thumbhash_average_rgba(thumbhash: bytes) -> tuple[float, float, float, float]:
    """The average colour stored in a ThumbHash, each channel 0..1 (e.g. for a background)."""
    header = thumbhash[0] | (thumbhash[1] << 8) | (thumbhash[2] << 16)
    lum = (header & 63) / 63
    p = ((header >> 6) & 63) / 31.5 - 1
    q = ((header >> 12) & 63) / 31.5 - 1
    has_alpha = bool(header >> 23)
    alpha = (thumbhash[5] & 15) / 15 if has_alpha else 1.0
    b = lum - 2 / 3 * p
    r = (3 * lum - b + q) / 2
    g = r - q
    return (
        max(0.0, min(1.0, r)),
        max(0.0, min(1.0, g)),
        max(0.0, min(1.0, b)),
        alpha,
    )
