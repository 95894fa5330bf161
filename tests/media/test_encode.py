"""Encoders write the requested format with nothing but pixels."""

from __future__ import annotations

import pytest
import pyvips

from mediamill.media import samples
from mediamill.media.encode import encode
from mediamill.media.errors import ProcessingError
from mediamill.media.specs import OutputFormat
from tests.media.helpers import loader, metadata

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
