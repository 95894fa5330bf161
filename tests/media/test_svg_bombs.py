"""SVG bombs that need no entity: embedded rasters and <use> expansion are capped before librsvg.

Both used to reach librsvg. A 10x10 SVG embedding a 14000x14000 PNG (about 30 KB of base64)
rendered "ready" after decoding the PNG at full size: 13 s and 1.7 GB of worker memory,
under a pixel cap meant to stop exactly that. Eight nested groups of ten ``<use>``
references (under 1 KB) kept a worker busy for 11 s before librsvg gave up with
"SVG rendering failed".
"""

from __future__ import annotations

import base64

import pytest

from mediamill.media import samples
from mediamill.media.errors import ValidationError
from mediamill.media.hostile_samples import svg_use_bomb
from mediamill.media.images import render_image
from mediamill.media.limits import ImageLimits
from mediamill.media.specs import DEFAULT_IMAGE_SPECS
from mediamill.media.svg import MAX_ELEMENTS, sanitize_svg


def _data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _embedding(*images: bytes, mime: str = "image/png") -> bytes:
    body = "".join(
        f'<image width="10" height="10" href="{_data_uri(image, mime)}"/>' for image in images
    )
    return samples.svg(body=body)


def _refused(data: bytes, limits: ImageLimits | None = None) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        sanitize_svg(data, limits)
    return caught.value


def test_an_embedded_pixel_bomb_is_refused_before_librsvg_decodes_it() -> None:
    data = _embedding(samples.pixel_bomb_png(14_000))
    assert len(data) < 40_000
    assert _refused(data).code == "too_many_pixels"
    with pytest.raises(ValidationError) as caught:
        render_image(data, DEFAULT_IMAGE_SPECS, ImageLimits())
    assert caught.value.code == "too_many_pixels"


def test_an_embedded_jpeg_is_held_to_the_side_cap() -> None:
    refused = _refused(_embedding(samples.huge_jpeg_header(), mime="image/jpeg"))
    assert refused.code == "too_many_pixels"
    assert "60000x60000" in refused.message


def test_the_size_of_a_jpeg_is_read_past_its_exif_and_xmp_segments() -> None:
    photo = samples.photo_jpeg(64, 48, seed=1, orientation=6, gps=True, xmp=True)
    data = _embedding(photo, mime="image/jpeg")
    assert sanitize_svg(data, ImageLimits(max_pixels=64 * 48))
    assert _refused(data, ImageLimits(max_pixels=64 * 48 - 1)).code == "too_many_pixels"


def test_every_embedded_image_counts_towards_one_cap() -> None:
    tile = samples.encoded(samples.photo(100, 100, seed=2), "png")
    limits = ImageLimits(max_pixels=25_000)
    assert sanitize_svg(_embedding(tile, tile), limits)
    assert _refused(_embedding(tile, tile, tile), limits).code == "too_many_pixels"


def test_an_image_embedded_through_css_is_counted_too() -> None:
    bomb = _data_uri(samples.pixel_bomb_png(14_000))
    body = f"<rect width='9' height='9' style='fill: url(\"{bomb}\")'/>"
    assert _refused(samples.svg(body=body)).code == "too_many_pixels"


def test_the_caps_the_image_loader_passes_are_the_ones_applied() -> None:
    tile = samples.encoded(samples.photo(100, 100, seed=3), "png")
    data = _embedding(tile)
    render_image(data, DEFAULT_IMAGE_SPECS, ImageLimits())
    with pytest.raises(ValidationError) as caught:
        render_image(data, DEFAULT_IMAGE_SPECS, ImageLimits(max_pixels=9_999))
    assert caught.value.code == "too_many_pixels"


def test_an_embedded_png_without_a_header_is_unsafe() -> None:
    assert _refused(_embedding(b"\x89PNG\r\n\x1a\n" + bytes(8))).code == "unsafe_svg"


def test_nested_use_expansion_is_refused_at_once() -> None:
    refused = _refused(svg_use_bomb(8))
    assert refused.code == "unsafe_svg"
    assert str(MAX_ELEMENTS) in refused.message
    with pytest.raises(ValidationError) as caught:
        render_image(svg_use_bomb(8), DEFAULT_IMAGE_SPECS, ImageLimits())
    assert caught.value.code == "unsafe_svg"


def test_use_expansion_under_the_cap_still_renders() -> None:
    rendition = render_image(svg_use_bomb(4), DEFAULT_IMAGE_SPECS, ImageLimits())
    assert rendition.variants


def test_one_wide_level_of_uses_is_counted_like_nested_ones() -> None:
    assert _refused(svg_use_bomb(3, fan=200)).code == "unsafe_svg"


@pytest.mark.parametrize(
    "body",
    [
        '<g id="a"><use href="#a"/></g>',
        '<g id="a"><use href="#b"/></g><g id="b"><use xlink:href="#a"/></g>',
        '<use id="self" href="#self"/>',
    ],
    ids=["into-its-own-group", "two-groups", "itself"],
)
def test_use_loops_are_unsafe(body: str) -> None:
    assert _refused(samples.svg(body=body)).code == "unsafe_svg"


def test_a_use_of_a_missing_id_is_left_to_librsvg() -> None:
    assert sanitize_svg(samples.svg(body='<use href="#nowhere"/>'))
