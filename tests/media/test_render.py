"""render_image: one shared decode, upright, sRGB, stripped, in every spec'd format."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest
import pyvips

from mediamill.media import samples
from mediamill.media.errors import ValidationError
from mediamill.media.images import render_image
from mediamill.media.limits import ImageLimits
from mediamill.media.specs import DEFAULT_IMAGE_SPECS, OutputFormat, VariantSpec, variant_keys
from mediamill.media.thumbhash import thumbhash_average_rgba
from tests.media.helpers import decode, loader, metadata, pixels

LOADER_OF = {
    "jpeg": "jpegload_buffer",
    "webp": "webpload_buffer",
    "avif": "heifload_buffer",
    "png": "pngload_buffer",
}


@pytest.fixture(scope="module")
def photo() -> bytes:
    return samples.photo_jpeg(1600, 1200, seed=3)


def test_default_specs_make_every_variant(photo: bytes, limits: ImageLimits) -> None:
    rendition = render_image(photo, DEFAULT_IMAGE_SPECS, limits)
    made = {(v.name, v.format): v for v in rendition.variants}
    assert set(made) == {
        ("optimized", "jpeg"),
        ("optimized", "webp"),
        ("optimized", "avif"),
        ("thumb", "jpeg"),
        ("thumb", "webp"),
        ("tiny", "jpeg"),
        ("tiny", "webp"),
    }
    sizes = {"optimized": (1200, 900), "thumb": (300, 300), "tiny": (150, 150)}
    versions = {spec.name: spec.version for spec in DEFAULT_IMAGE_SPECS}
    for (name, image_format), variant in made.items():
        image = decode(variant.data)
        assert (variant.width, variant.height) == sizes[name]
        assert (image.width, image.height) == sizes[name]
        assert loader(variant.data) == LOADER_OF[image_format]
        assert variant.mime == f"image/{image_format}"
        assert variant.spec_version == versions[name]
        library = "Pillow" if image_format in ("jpeg", "webp") else "libvips"
        assert re.fullmatch(rf"{library} \d+\.\d+\.\d+", variant.encoder)
    assert rendition.info.width == 1600
    assert rendition.info.has_alpha is False
    assert len(base64.b64decode(rendition.placeholder)) >= 5


def test_optimized_jpeg_is_progressive_and_thumbs_are_not(
    photo: bytes, limits: ImageLimits
) -> None:
    rendition = render_image(photo, DEFAULT_IMAGE_SPECS, limits)
    jpegs = {v.name: v.data for v in rendition.variants if v.format == "jpeg"}
    assert b"\xff\xc2" in jpegs["optimized"]
    assert b"\xff\xc2" not in jpegs["tiny"]


def test_never_upscales(limits: ImageLimits) -> None:
    rendition = render_image(samples.photo_jpeg(800, 600), DEFAULT_IMAGE_SPECS, limits)
    sizes = {(v.name, v.width, v.height) for v in rendition.variants}
    assert sizes == {("optimized", 800, 600), ("thumb", 300, 300), ("tiny", 150, 150)}


def test_small_sources_keep_the_crop_aspect(limits: ImageLimits) -> None:
    rendition = render_image(samples.photo_jpeg(200, 100), DEFAULT_IMAGE_SPECS, limits)
    sizes = {v.name: (v.width, v.height) for v in rendition.variants}
    assert sizes == {"optimized": (200, 100), "thumb": (100, 100), "tiny": (100, 100)}


def _quadrant_error(data: bytes) -> int:
    """Largest channel error at the centre of each quadrant against ``samples.quadrants``."""
    actual = pixels(data)
    expected = samples.quadrants(actual.shape[1], actual.shape[0])
    h, w = actual.shape[:2]
    ys, xs = [h // 4, h // 4, 3 * h // 4, 3 * h // 4], [w // 4, 3 * w // 4, w // 4, 3 * w // 4]
    return int(np.abs(actual[ys, xs, :3].astype(int) - expected[ys, xs]).max())


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(
    orientation: int, limits: ImageLimits, png_spec: tuple[VariantSpec, ...]
) -> None:
    rendition = render_image(samples.oriented_jpeg(60, 40, orientation), png_spec, limits)
    (variant,) = rendition.variants
    assert (variant.width, variant.height) == (60, 40)
    assert _quadrant_error(variant.data) <= 8
    assert metadata(variant.data) == []


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_orientation_with_shrink_on_load(orientation: int, limits: ImageLimits) -> None:
    png = OutputFormat("png", quality=100)
    spec = (VariantSpec("small", 120, 120, "inside", (png,), (png,)),)
    rendition = render_image(samples.oriented_jpeg(960, 640, orientation), spec, limits)
    (variant,) = rendition.variants
    assert (variant.width, variant.height) == (120, 80)
    assert _quadrant_error(variant.data) <= 8


def test_gps_xmp_and_exif_are_absent_from_every_output(limits: ImageLimits) -> None:
    source = samples.photo_jpeg(640, 480, seed=4, orientation=6, gps=True, xmp=True)
    header = decode(source).get_fields()
    assert "exif-ifd3-GPSLatitude" in header
    assert "xmp-data" in header
    assert samples.XMP_SENTINEL.encode() in source
    rendition = render_image(source, DEFAULT_IMAGE_SPECS, limits)
    assert (rendition.info.width, rendition.info.height) == (480, 640)
    for variant in rendition.variants:
        assert metadata(variant.data) == [], variant.name
        assert b"Exif\x00\x00" not in variant.data
        assert b"http://ns.adobe.com/xap" not in variant.data
        assert samples.XMP_SENTINEL.encode() not in variant.data


def test_embedded_icc_profile_is_applied_then_dropped(
    limits: ImageLimits, png_spec: tuple[VariantSpec, ...]
) -> None:
    red = pyvips.Image.black(32, 32).new_from_image([255, 0, 0]).cast("uchar")
    p3 = red.copy(interpretation="srgb").icc_transform("p3", input_profile="srgb")
    source = bytes(p3.jpegsave_buffer(Q=98))
    assert decode(source).get_typeof("icc-profile-data")
    assert tuple(decode(source).getpoint(8, 8))[:2] != (255.0, 0.0)
    (variant,) = render_image(source, png_spec, limits).variants
    assert metadata(variant.data) == []
    assert pixels(variant.data)[8, 8].tolist() == pytest.approx([255, 0, 0], abs=4)


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        (samples.gif_with_zip(), b"PK\x05\x06"),
        (samples.gif_with_zip(), b"PK\x03\x04"),
        (samples.jpeg_with_script(), b"<script"),
    ],
    ids=["gif+zip-eocd", "gif+zip-header", "jpeg+script"],
)
def test_polyglot_payloads_never_reach_outputs(
    source: bytes, needle: bytes, limits: ImageLimits
) -> None:
    assert needle in source
    rendition = render_image(source, DEFAULT_IMAGE_SPECS, limits)
    assert rendition.variants
    for variant in rendition.variants:
        assert needle not in variant.data


def test_alpha_is_kept_and_never_flattened_to_jpeg(limits: ImageLimits) -> None:
    rendition = render_image(samples.alpha_png(200, 100), DEFAULT_IMAGE_SPECS, limits)
    assert rendition.info.has_alpha is True
    formats = {(v.name, v.format) for v in rendition.variants}
    assert formats == {
        ("optimized", "png"),
        ("optimized", "webp"),
        ("optimized", "avif"),
        ("thumb", "png"),
        ("thumb", "webp"),
        ("tiny", "png"),
        ("tiny", "webp"),
    }
    for variant in rendition.variants:
        assert variant.format != "jpeg"
        image = pixels(variant.data)
        assert image.shape[2] == 4, (variant.name, variant.format)
        assert image[0, 0, 3] < 10
        centre = image[image.shape[0] // 2, image.shape[1] // 2]
        assert centre[3] > 245
        assert centre[:3].tolist() == pytest.approx([220, 20, 20], abs=12)


def test_opaque_alpha_is_dropped_so_jpeg_is_made(limits: ImageLimits) -> None:
    opaque = samples.photo(64, 48, 5).bandjoin(255).copy(interpretation="srgb")
    source = samples.encoded(opaque, "png")
    rendition = render_image(source, DEFAULT_IMAGE_SPECS, limits)
    assert rendition.info.has_alpha is False
    assert ("optimized", "jpeg") in {(v.name, v.format) for v in rendition.variants}
    assert {v.format for v in rendition.variants} == {"jpeg", "webp", "avif"}


@pytest.mark.parametrize("image_format", ["gif", "webp"])
def test_animations_become_a_still_of_the_first_frame(
    image_format: str, limits: ImageLimits, png_spec: tuple[VariantSpec, ...]
) -> None:
    rendition = render_image(samples.animated(48, 32, 5, image_format), png_spec, limits)
    assert rendition.info.frames == 5
    (variant,) = rendition.variants
    image = pixels(variant.data)
    assert image.shape[:2] == (32, 48)
    assert image[28, 40, :3].tolist() == pytest.approx([255, 0, 0], abs=12)


def test_cmyk_jpeg_becomes_srgb(limits: ImageLimits, png_spec: tuple[VariantSpec, ...]) -> None:
    (variant,) = render_image(samples.cmyk_jpeg(40, 30), png_spec, limits).variants
    image = pixels(variant.data)
    assert image.shape == (30, 40, 3)
    left, right = image[15, 1].astype(int), image[15, 38].astype(int)
    assert left.min() > 190
    assert right[0] < 60
    assert right[2] > 150


def test_sixteen_bit_png_becomes_eight_bit(
    limits: ImageLimits, png_spec: tuple[VariantSpec, ...]
) -> None:
    (variant,) = render_image(samples.png16(64, 48), png_spec, limits).variants
    image = decode(variant.data)
    assert (image.format, image.bands) == ("uchar", 3)
    array = pixels(variant.data)
    assert array[0, 0].tolist() == pytest.approx([0, 0, 117], abs=2)
    assert array[47, 63].tolist() == pytest.approx([255, 255, 117], abs=2)


def test_greyscale_becomes_srgb(limits: ImageLimits, png_spec: tuple[VariantSpec, ...]) -> None:
    (variant,) = render_image(samples.grey_png(30, 20), png_spec, limits).variants
    array = pixels(variant.data)
    assert array.shape == (20, 30, 3)
    assert array[5, 29].tolist() == [255, 255, 255]


def test_svg_is_rasterised(limits: ImageLimits, png_spec: tuple[VariantSpec, ...]) -> None:
    rendition = render_image(samples.svg(40, 20), png_spec, limits)
    assert rendition.info.format == "svg"
    (variant,) = rendition.variants
    assert loader(variant.data) == "pngload_buffer"
    array = pixels(variant.data)
    assert array[10, 5, :3].tolist() == [255, 0, 0]
    assert array[10, 35, :3].tolist() == [0, 255, 0]


@pytest.mark.parametrize("image_format", ["avif", "tiff", "webp", "png"])
def test_other_formats_render(
    image_format: str, limits: ImageLimits, png_spec: tuple[VariantSpec, ...]
) -> None:
    source_pixels = samples.photo(64, 48, 6)
    expected = np.asarray(source_pixels.numpy(), dtype=float)
    rendition = render_image(samples.encoded(source_pixels, image_format), png_spec, limits)
    assert rendition.info.format == image_format
    (variant,) = rendition.variants
    assert (variant.width, variant.height) == (64, 48)
    assert abs(pixels(variant.data).astype(float).mean() - expected.mean()) < 3


def test_heic_renders(limits: ImageLimits, png_spec: tuple[VariantSpec, ...]) -> None:
    expected = np.asarray(samples.photo(64, 48, 0).numpy(), dtype=float)
    rendition = render_image(samples.heic(64, 48), png_spec, limits)
    assert rendition.info.format == "heic"
    (variant,) = rendition.variants
    assert abs(pixels(variant.data).astype(float).mean() - expected.mean()) < 4


@pytest.mark.parametrize("image_format", ["jpeg", "png", "webp", "avif", "tiff", "gif", "heic"])
def test_truncated_files_are_corrupt(image_format: str, limits: ImageLimits) -> None:
    if image_format == "jpeg":
        data = samples.photo_jpeg(200, 150, seed=3)
    elif image_format == "heic":
        data = samples.heic(200, 150)
    else:
        data = samples.encoded(samples.photo(200, 150, 3), image_format)
    with pytest.raises(ValidationError) as caught:
        render_image(data[: len(data) * 3 // 4], DEFAULT_IMAGE_SPECS, limits)
    assert caught.value.code == "corrupt"


@pytest.mark.parametrize(
    "data", [samples.corrupt_jpeg(), samples.bad_crc_png()], ids=["cut-jpeg", "bad-crc-png"]
)
def test_corrupt_samples_fail_at_decode(data: bytes, limits: ImageLimits) -> None:
    with pytest.raises(ValidationError) as caught:
        render_image(data, DEFAULT_IMAGE_SPECS, limits)
    assert caught.value.code == "corrupt"


def test_only_makes_just_the_requested_outputs(photo: bytes, limits: ImageLimits) -> None:
    thumb = DEFAULT_IMAGE_SPECS[1]
    rendition = render_image(
        photo, DEFAULT_IMAGE_SPECS, limits, only={("thumb", "webp", thumb.version)}
    )
    assert [(v.name, v.format) for v in rendition.variants] == [("thumb", "webp")]
    stale = render_image(photo, DEFAULT_IMAGE_SPECS, limits, only={("thumb", "webp", "old")})
    assert stale.variants == ()
    assert stale.placeholder


def test_a_crop_shrunk_from_a_larger_crop_matches_one_cut_from_the_decode(
    photo: bytes, limits: ImageLimits
) -> None:
    """With the thumb made too, the tiny square is shrunk from it; alone, from the decode."""
    tiny = DEFAULT_IMAGE_SPECS[2]
    lossless = (OutputFormat("png", quality=100),)
    specs = tuple(
        VariantSpec(spec.name, spec.width, spec.height, spec.fit, lossless, lossless)
        for spec in DEFAULT_IMAGE_SPECS
    )
    together = render_image(photo, specs, limits)
    alone = render_image(photo, specs, limits, only={("tiny", "png", specs[2].version)})
    from_thumb = pixels(next(v.data for v in together.variants if v.name == "tiny"))
    from_decode = pixels(alone.variants[0].data)
    assert from_thumb.shape == from_decode.shape == (tiny.height, tiny.width, 3)
    difference = np.abs(from_thumb.astype(int) - from_decode.astype(int))
    assert difference.mean() < 2.0
    assert not np.array_equal(from_thumb, from_decode)


def test_a_changed_spec_regenerates_only_what_is_missing(photo: bytes, limits: ImageLimits) -> None:
    have = variant_keys(DEFAULT_IMAGE_SPECS, has_alpha=False)
    optimized, thumb, tiny = DEFAULT_IMAGE_SPECS
    new_thumb = VariantSpec("thumb", 320, 320, "cover", thumb.formats, thumb.alpha_formats)
    specs = (optimized, new_thumb, tiny)
    missing = variant_keys(specs, has_alpha=False) - have
    rendition = render_image(photo, specs, limits, only=missing)
    assert {(v.name, v.format, v.spec_version) for v in rendition.variants} == missing
    assert {(v.width, v.height) for v in rendition.variants} == {(320, 320)}


def test_path_and_bytes_give_identical_outputs(photo: bytes, tmp_path: Path) -> None:
    path = tmp_path / "upload"
    path.write_bytes(photo)
    limits = ImageLimits()
    from_path = render_image(path, DEFAULT_IMAGE_SPECS[1:], limits)
    from_bytes = render_image(photo, DEFAULT_IMAGE_SPECS[1:], limits)
    assert from_path == from_bytes


def test_placeholder_carries_the_average_colour(
    limits: ImageLimits, png_spec: tuple[VariantSpec, ...]
) -> None:
    flat = pyvips.Image.black(300, 200).new_from_image([30, 120, 200]).cast("uchar")
    source = bytes(flat.copy(interpretation="srgb").jpegsave_buffer(Q=95))
    rendition = render_image(source, png_spec, limits)
    r, g, b, a = thumbhash_average_rgba(base64.b64decode(rendition.placeholder))
    assert (r * 255, g * 255, b * 255) == pytest.approx((30, 120, 200), abs=8)
    assert a == 1.0


def test_duplicate_spec_names_are_refused(photo: bytes, limits: ImageLimits) -> None:
    with pytest.raises(ValueError, match="unique"):
        render_image(photo, DEFAULT_IMAGE_SPECS + DEFAULT_IMAGE_SPECS[:1], limits)


def test_limits_apply_to_render_too(limits: ImageLimits) -> None:
    with pytest.raises(ValidationError) as caught:
        render_image(samples.pixel_bomb_png(), DEFAULT_IMAGE_SPECS, limits)
    assert caught.value.code == "too_many_pixels"
    with pytest.raises(ValidationError) as caught:
        render_image(samples.html_as_jpg(), DEFAULT_IMAGE_SPECS, limits)
    assert caught.value.code == "unsupported_type"
