"""ThumbHash bytes match the reference JavaScript encoder bit for bit."""

from __future__ import annotations

import base64

import numpy as np
import numpy.typing as npt
import pytest

from mediamill.media.thumbhash import (
    rgba_to_thumbhash,
    thumbhash_average_rgba,
    thumbhash_base64,
)


def _gradient(width: int, height: int, alpha: bool = False) -> npt.NDArray[np.uint8]:
    y, x = np.mgrid[0:height, 0:width]
    red = x * 255 // max(1, width - 1)
    green = y * 255 // max(1, height - 1)
    blue = (x + y) * 255 // max(1, width + height - 2)
    opacity = red if alpha else np.full_like(x, 255)
    return np.stack([red, green, blue, opacity], -1).astype(np.uint8)


@pytest.mark.parametrize(
    ("rgba", "expected"),
    [
        (_gradient(100, 75), "HwgODZqAh4eBh4d4eHh4eI9wCPh3"),
        (_gradient(60, 100), "H/gNFBqBB3iIiIeHd4iAfwj4eA=="),
        (_gradient(100, 100, alpha=True), "JViKBQw3s4ewh3h3iNZ7P/t0gIeHiHh4iA=="),
        (_gradient(100, 50, alpha=True), "5VeGC4w3wZewiHhMsDj7dICHeIh4iIg="),
        (_gradient(1, 1), "AAgCBwAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        (np.zeros((10, 10, 4), np.uint8), "AAiCBQAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="),
    ],
)
def test_matches_reference_encoder(rgba: npt.NDArray[np.uint8], expected: str) -> None:
    assert thumbhash_base64(rgba) == expected


def test_random_image_matches_reference_encoder() -> None:
    rgba = np.random.default_rng(3).integers(0, 256, (37, 91, 4), dtype=np.uint8)
    assert thumbhash_base64(rgba) == "4AeCAoAH+bpLJtdXpZBjz4ZohkhF9XU="


def test_average_colour_survives_encoding() -> None:
    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[...] = (200, 40, 90, 255)
    r, g, b, a = thumbhash_average_rgba(rgba_to_thumbhash(rgba))
    assert (r * 255, g * 255, b * 255) == pytest.approx((200, 40, 90), abs=6)
    assert a == 1.0


def test_alpha_is_encoded() -> None:
    rgba = _gradient(50, 50, alpha=True)
    data = base64.b64decode(thumbhash_base64(rgba))
    assert data[2] >> 7 == 1
    assert thumbhash_average_rgba(data)[3] < 1.0


@pytest.mark.parametrize("shape", [(101, 10, 4), (10, 101, 4), (10, 10, 3), (0, 10, 4)])
def test_refuses_wrong_shapes(shape: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError, match=r"RGBA|fit in"):
        rgba_to_thumbhash(np.zeros(shape, np.uint8))
