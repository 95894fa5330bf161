"""HEIC decodes through pillow-heif when this libvips has no HEVC decoder."""

from __future__ import annotations

import numpy as np
import pytest

from mediamill.media import samples
from mediamill.media.errors import ValidationError
from mediamill.media.heif import decode_heic, libvips_decodes_hevc


def test_capability_probe_answers() -> None:
    assert isinstance(libvips_decodes_hevc(), bool)


def test_decode_heic_gives_upright_srgb_pixels() -> None:
    image = decode_heic(samples.heic(64, 48, seed=2))
    assert (image.width, image.height, image.bands) == (64, 48, 3)
    assert image.interpretation == "srgb"
    expected = np.asarray(samples.photo(64, 48, 2).numpy(), dtype=float)
    assert abs(np.asarray(image.numpy(), dtype=float).mean() - expected.mean()) < 4


def test_broken_heic_is_corrupt() -> None:
    data = samples.heic(64, 48)
    with pytest.raises(ValidationError) as caught:
        decode_heic(data[: len(data) // 2])
    assert caught.value.code == "corrupt"
