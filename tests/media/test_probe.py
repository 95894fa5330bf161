"""probe_image reads the header only and enforces limits before any pixel is decoded."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediamill.media import samples
from mediamill.media.errors import ValidationError
from mediamill.media.images import probe_image
from mediamill.media.limits import ImageLimits
from tests.media.helpers import hostile_non_images


def _code(data: bytes | Path, limits: ImageLimits) -> str:
    with pytest.raises(ValidationError) as caught:
        probe_image(data, limits)
    return caught.value.code


@pytest.mark.parametrize(
    ("data", "image_format", "mime", "size", "alpha", "frames"),
    [
        (samples.photo_jpeg(64, 48), "jpeg", "image/jpeg", (64, 48), False, 1),
        (samples.alpha_png(40, 30), "png", "image/png", (40, 30), True, 1),
        (samples.animated_gif(40, 30, 3), "gif", "image/gif", (40, 30), True, 3),
        (samples.animated(40, 30, 4, "webp"), "webp", "image/webp", (40, 30), False, 4),
        (
            samples.encoded(samples.photo(40, 30, 1), "avif"),
            "avif",
            "image/avif",
            (40, 30),
            False,
            1,
        ),
        (samples.heic(40, 30), "heic", "image/heic", (40, 30), False, 1),
        (
            samples.encoded(samples.photo(40, 30, 1), "tiff"),
            "tiff",
            "image/tiff",
            (40, 30),
            False,
            1,
        ),
        (samples.svg(40, 20), "svg", "image/svg+xml", (40, 20), True, 1),
    ],
    ids=["jpeg", "png", "gif", "webp", "avif", "heic", "tiff", "svg"],
)
def test_reads_the_header_of_every_allowed_format(
    data: bytes,
    image_format: str,
    mime: str,
    size: tuple[int, int],
    alpha: bool,
    frames: int,
    limits: ImageLimits,
) -> None:
    info = probe_image(data, limits)
    assert (info.format, info.mime) == (image_format, mime)
    assert (info.width, info.height) == size
    assert info.has_alpha is alpha
    assert info.frames == frames
    assert info.orientation == 1


@pytest.mark.parametrize("orientation", range(1, 9))
def test_dimensions_are_as_displayed(orientation: int, limits: ImageLimits) -> None:
    info = probe_image(samples.oriented_jpeg(60, 40, orientation), limits)
    assert info.orientation == orientation
    assert (info.width, info.height) == (60, 40)


def test_paths_and_bytes_agree(tmp_path: Path, limits: ImageLimits) -> None:
    data = samples.photo_jpeg(64, 48, orientation=6)
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    assert probe_image(path, limits) == probe_image(data, limits)


def test_one_byte_over_the_size_cap_is_too_large(tmp_path: Path) -> None:
    data = samples.photo_jpeg(64, 48)
    assert probe_image(data, ImageLimits(max_bytes=len(data))).width == 64
    assert _code(data, ImageLimits(max_bytes=len(data) - 1)) == "too_large"
    path = tmp_path / "upload.jpg"
    path.write_bytes(data)
    assert _code(path, ImageLimits(max_bytes=len(data) - 1)) == "too_large"


def test_svg_has_its_own_size_cap() -> None:
    data = samples.svg(body="<g/>" * 100)
    assert _code(data, ImageLimits(max_svg_bytes=len(data) - 1)) == "too_large"


def test_pixel_bomb_png_is_refused_from_its_header(limits: ImageLimits) -> None:
    bomb = samples.pixel_bomb_png()
    assert len(bomb) < 700_000
    with pytest.raises(ValidationError) as caught:
        probe_image(bomb, limits)
    assert caught.value.code == "too_many_pixels"
    assert "14000x14000" in str(caught.value)


def test_huge_jpeg_header_is_refused(limits: ImageLimits) -> None:
    assert _code(samples.huge_jpeg_header(), limits) == "too_many_pixels"


def test_side_cap_applies_even_under_the_pixel_cap() -> None:
    data = samples.photo_jpeg(400, 10)
    assert _code(data, ImageLimits(max_side=399)) == "too_many_pixels"


def test_frame_count_bomb_is_refused(limits: ImageLimits) -> None:
    with pytest.raises(ValidationError) as caught:
        probe_image(samples.frame_bomb_gif(4000, 4000, 2000), limits)
    assert caught.value.code == "too_many_frames"
    assert "2000 frames" in str(caught.value)


def test_frame_area_bomb_is_refused(limits: ImageLimits) -> None:
    with pytest.raises(ValidationError) as caught:
        probe_image(samples.frame_bomb_gif(4000, 4000, 100), limits)
    assert caught.value.code == "too_many_frames"
    assert "animation" in str(caught.value)


def test_animated_webp_is_capped_too() -> None:
    data = samples.animated(200, 200, 30, "webp")
    assert _code(data, ImageLimits(max_frames=29)) == "too_many_frames"
    assert _code(data, ImageLimits(max_animation_pixels=200 * 200 * 29)) == "too_many_frames"


NON_IMAGES = {**hostile_non_images(), "vips": samples.vips_native(), "pdf": b"%PDF-1.7\n"}


@pytest.mark.parametrize("data", list(NON_IMAGES.values()), ids=list(NON_IMAGES))
def test_non_images_are_unsupported(data: bytes, limits: ImageLimits) -> None:
    assert _code(data, limits) == "unsupported_type"


def test_png_signature_followed_by_garbage_is_corrupt(limits: ImageLimits) -> None:
    assert _code(samples.png_signature_garbage(), limits) == "corrupt"


def test_empty_upload(limits: ImageLimits, tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert _code(b"", limits) == "empty"
    assert _code(path, limits) == "empty"
