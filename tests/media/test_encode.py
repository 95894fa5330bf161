"""Encoders write the requested format with nothing but pixels."""

from __future__ import annotations

import numpy as np
import pytest
import pyvips

from mediamill.media import samples
from mediamill.media.encode import encode, encoder_of
from mediamill.media.errors import ProcessingError
from mediamill.media.specs import OutputFormat
from tests.media.helpers import decode, loader, metadata, pixels

TAGGED = samples.photo_jpeg(48, 32, orientation=6, gps=True, xmp=True)


@pytest.mark.parametrize(
    ("output", "expected_loader"),
    [
        (OutputFormat("jpeg", quality=85, progressive=True), "jpegload_buffer"),
        (OutputFormat("webp", quality=80), "webpload_buffer"),
        (OutputFormat("webp", quality=100, lossless=True), "webpload_buffer"),
        (OutputFormat("avif", quality=50, effort=0), "heifload_buffer"),
        (OutputFormat("png", quality=100, effort=1), "pngload_buffer"),
    ],
)
def test_formats_and_no_metadata(output: OutputFormat, expected_loader: str) -> None:
    image = pyvips.Image.new_from_buffer(TAGGED, "")
    assert image.get_typeof("exif-data")
    data = encode(image, output)
    assert loader(data) == expected_loader
    assert metadata(data) == []


def test_jpeg_refuses_alpha() -> None:
    image = pyvips.Image.new_from_buffer(samples.alpha_png(8, 8), "")
    with pytest.raises(ProcessingError, match="alpha"):
        encode(image, OutputFormat("jpeg", quality=85))


def test_encoder_failures_are_processing_errors() -> None:
    complex_image = pyvips.Image.black(8, 8).cast("complex")
    with pytest.raises(ProcessingError, match="avif"):
        encode(complex_image, OutputFormat("avif", quality=50))


@pytest.mark.parametrize(
    ("output", "library"),
    [
        (OutputFormat("jpeg", quality=85), "Pillow"),
        (OutputFormat("webp", quality=80), "Pillow"),
        (OutputFormat("avif", quality=50), "libvips"),
        (OutputFormat("png", quality=100), "libvips"),
    ],
)
def test_encoder_of_names_the_library_that_encodes(output: OutputFormat, library: str) -> None:
    assert encoder_of(output).split()[0] == library


@pytest.mark.parametrize(("quality", "subsampling"), [(85, "4:2:0"), (90, "4:4:4")])
def test_jpeg_chroma_subsampling_follows_libvips_rule(quality: int, subsampling: str) -> None:
    image = pyvips.Image.new_from_buffer(samples.photo_jpeg(64, 48, seed=2), "")
    data = encode(image, OutputFormat("jpeg", quality=quality))
    assert decode(data).get("jpeg-chroma-subsample") == subsampling


def test_progressive_flag_reaches_the_jpeg() -> None:
    image = pyvips.Image.new_from_buffer(samples.photo_jpeg(64, 48, seed=2), "")
    progressive = encode(image, OutputFormat("jpeg", quality=85, progressive=True))
    baseline = encode(image, OutputFormat("jpeg", quality=85))
    assert decode(progressive).get("interlaced") == 1
    assert "interlaced" not in decode(baseline).get_fields()


def test_webp_matches_libvips_byte_for_byte() -> None:
    """Same libwebp settings as libvips' webpsave: only the build differs, not the output."""
    image = pyvips.Image.new_from_buffer(samples.photo_jpeg(120, 90, seed=4), "").copy_memory()
    ours = encode(image, OutputFormat("webp", quality=80, effort=4))
    assert ours == image.webpsave_buffer(Q=80, effort=4, keep="none")


@pytest.mark.parametrize("bands", [1, 2])
def test_grey_sources_encode_as_webp(bands: int) -> None:
    grey = pyvips.Image.black(16, 8) + 128
    image = (grey if bands == 1 else grey.bandjoin(200)).cast("uchar")
    data = encode(image, OutputFormat("webp", quality=80))
    decoded = pixels(data)
    assert decoded.shape[:2] == (8, 16)
    assert abs(int(decoded[..., 0].mean()) - 128) <= 2
    if bands == 2:
        assert decoded.shape[2] == 4
        assert set(np.unique(decoded[..., 3]).tolist()) == {200}


def test_alpha_survives_webp() -> None:
    image = pyvips.Image.new_from_buffer(samples.alpha_png(32, 32), "")
    data = encode(image, OutputFormat("webp", quality=90, lossless=True))
    assert decode(data).hasalpha()
    ours, source = pixels(data), np.asarray(image.numpy(), dtype=np.uint8)
    assert np.array_equal(ours[..., 3], source[..., 3])
    # Lossless WebP keeps every visible pixel; under full transparency it may drop colour.
    visible = source[..., 3] > 0
    assert visible.any()
    assert np.array_equal(ours[visible], source[visible])


def test_pillow_formats_refuse_pixels_that_are_not_8_bit() -> None:
    wide = pyvips.Image.black(8, 8).cast("ushort")
    with pytest.raises(ProcessingError, match="8-bit"):
        encode(wide, OutputFormat("webp", quality=80))
