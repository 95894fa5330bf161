"""The generated samples are what their names claim, so the other tests mean something."""

from __future__ import annotations

import io
import struct

import pytest
import pyvips
from PIL import Image

from mediamill.media import samples
from tests.media.helpers import decode


def test_photo_is_deterministic_and_photo_like() -> None:
    first = samples.photo_jpeg(320, 240, seed=9)
    assert first == samples.photo_jpeg(320, 240, seed=9)
    assert first != samples.photo_jpeg(320, 240, seed=10)
    stats = decode(first).stats()
    assert stats(3, 0)[0] > 60
    assert 40 < stats(4, 0)[0] < 215


def test_photo_metadata_is_really_there() -> None:
    data = samples.photo_jpeg(64, 48, orientation=6, gps=True, xmp=True)
    with Image.open(io.BytesIO(data)) as image:
        exif = image.getexif()
        assert exif[samples.ORIENTATION_TAG] == 6
        gps = exif.get_ifd(samples.GPS_IFD_TAG)
        assert gps[1] == "N"
        assert float(gps[2][0]) == 52.0
        assert image.size == (64, 48)
    assert samples.XMP_SENTINEL.encode() in data


@pytest.mark.parametrize("orientation", range(1, 9))
def test_stored_pixels_undo_what_pillow_applies(orientation: int) -> None:
    from PIL import ImageOps

    upright = samples.quadrants(6, 4)
    stored = samples.stored_for_orientation(upright, orientation)
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[samples.ORIENTATION_TAG] = orientation
    buffer = io.BytesIO()
    image.save(buffer, "PNG", exif=exif)
    with Image.open(io.BytesIO(buffer.getvalue())) as reopened:
        shown = ImageOps.exif_transpose(reopened)
        assert shown is not None
        assert shown.tobytes() == upright.tobytes()


def test_pixel_bomb_is_small_valid_and_huge() -> None:
    bomb = samples.pixel_bomb_png()
    assert len(bomb) < 700_000
    width, height = struct.unpack(">II", bomb[16:24])
    assert (width, height) == (14_000, 14_000)
    assert bomb.endswith(b"IEND\xaeB`\x82")


def test_huge_jpeg_claims_sixty_thousand_pixels() -> None:
    header = pyvips.Image.new_from_buffer(samples.huge_jpeg_header(), "")
    assert (header.width, header.height) == (60_000, 60_000)


def test_frame_bomb_claims_its_frames() -> None:
    header = pyvips.Image.new_from_buffer(samples.frame_bomb_gif(500, 400, 50), "")
    assert (header.width, header.height, header.get("n-pages")) == (500, 400, 50)
    assert len(samples.frame_bomb_gif()) < 100_000


def test_hostile_samples_carry_their_payloads() -> None:
    assert b"PK\x05\x06" in samples.gif_with_zip()
    script = samples.jpeg_with_script()
    assert script.count(b"<script") == 2
    assert not samples.corrupt_jpeg().endswith(b"\xff\xd9")
    assert b"<!ENTITY" in samples.svg_billion_laughs()
    assert b"SYSTEM" in samples.svg_xxe()


def test_animation_has_distinct_frames() -> None:
    for image_format in ("gif", "webp"):
        image = pyvips.Image.new_from_buffer(samples.animated(24, 16, 3, image_format), "", n=-1)
        assert image.get("n-pages") == 3
        first, second = (
            image.crop(0, 15, 1, 1).getpoint(0, 0),
            image.crop(0, 31, 1, 1).getpoint(0, 0),
        )
        assert first[:3] != second[:3]


def test_cmyk_and_sixteen_bit_samples() -> None:
    assert decode(samples.cmyk_jpeg(8, 8)).interpretation == "cmyk"
    assert decode(samples.png16(8, 8)).format == "ushort"
    assert decode(samples.heic(16, 16)).get("vips-loader") == "heifload_buffer"
