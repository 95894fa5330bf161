"""Limits are plain data with the documented defaults."""

from __future__ import annotations

import dataclasses

import pytest

from mediamill.media.limits import ImageLimits


def test_defaults() -> None:
    limits = ImageLimits()
    assert limits.max_bytes == 200 * 1024 * 1024
    assert limits.max_pixels == 120_000_000
    assert limits.max_side == 30_000
    assert limits.max_animation_pixels == 500_000_000
    assert limits.max_frames == 1000


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ImageLimits().max_bytes = 1  # type: ignore[misc]


@pytest.mark.parametrize("value", [0, -1, True, 1.5])
def test_refuses_non_positive_ints(value: object) -> None:
    with pytest.raises(ValueError, match="max_pixels"):
        ImageLimits(max_pixels=value)  # type: ignore[arg-type]
