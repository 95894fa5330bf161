"""Limits are plain data with the documented defaults; the size check runs before any parser."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mediamill.media.errors import ValidationError
from mediamill.media.limits import ImageLimits, check_file_size


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


def test_check_file_size_refuses_empty_and_oversize_files(tmp_path: Path) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(b"")
    with pytest.raises(ValidationError) as empty:
        check_file_size(path, 10, "video")
    assert empty.value.code == "empty"
    path.write_bytes(b"x" * 11)
    with pytest.raises(ValidationError) as large:
        check_file_size(path, 10, "video")
    assert large.value.code == "too_large"
    assert "the video is 11 bytes, over the 10-byte cap" in str(large.value)
    path.write_bytes(b"x" * 10)
    assert check_file_size(path, 10, "video") == 10
