"""Types are decided from content alone."""

from __future__ import annotations

import time

import pytest

from mediamill.media import samples
from mediamill.media.errors import ValidationError
from mediamill.media.sniff import IMAGE_FORMATS, SNIFF_BYTES, sniff
from tests.media.helpers import hostile_non_images


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\x00" * 32


@pytest.mark.parametrize(
    ("head", "image_format", "mime", "extension"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg", "image/jpeg", "jpg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "png", "image/png", "png"),
        (b"GIF87a\x01\x00", "gif", "image/gif", "gif"),
        (b"GIF89a\x01\x00", "gif", "image/gif", "gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "webp", "image/webp", "webp"),
        (b"II*\x00\x08\x00\x00\x00", "tiff", "image/tiff", "tiff"),
        (b"MM\x00*\x00\x00\x00\x08", "tiff", "image/tiff", "tiff"),
        (_ftyp(b"avif", b"mif1", b"miaf"), "avif", "image/avif", "avif"),
        (_ftyp(b"avis", b"msf1"), "avif", "image/avif", "avif"),
        (_ftyp(b"mif1", b"avif"), "avif", "image/avif", "avif"),
        (_ftyp(b"heic", b"mif1"), "heic", "image/heic", "heic"),
        (_ftyp(b"mif1", b"heic"), "heic", "image/heic", "heic"),
        (_ftyp(b"heix"), "heic", "image/heic", "heic"),
    ],
)
def test_image_magic(head: bytes, image_format: str, mime: str, extension: str) -> None:
    sniffed = sniff(head)
    assert (sniffed.kind, sniffed.format, sniffed.mime, sniffed.extension) == (
        "image",
        image_format,
        mime,
        extension,
    )


@pytest.mark.parametrize(
    ("head", "kind", "media_format"),
    [
        (_ftyp(b"isom", b"iso2", b"avc1", b"mp41"), "video", "mp4"),
        (_ftyp(b"qt  "), "video", "mov"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "video", "webm"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska", "video", "mkv"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "video", "avi"),
        (b"%PDF-1.7\n", "document", "pdf"),
        (b"glTF\x02\x00\x00\x00", "model", "glb"),
    ],
)
def test_other_kinds_are_recognised_for_later_pipelines(
    head: bytes, kind: str, media_format: str
) -> None:
    sniffed = sniff(head)
    assert (sniffed.kind, sniffed.format) == (kind, media_format)


def test_real_samples_sniff_as_what_they_are() -> None:
    assert sniff(samples.photo_jpeg(32, 24)[:SNIFF_BYTES]).format == "jpeg"
    assert sniff(samples.alpha_png(8, 8)[:SNIFF_BYTES]).format == "png"
    assert sniff(samples.animated_gif(8, 8, 2)[:SNIFF_BYTES]).format == "gif"
    assert sniff(samples.animated(8, 8, 2, "webp")[:SNIFF_BYTES]).format == "webp"
    assert sniff(samples.encoded(samples.photo(16, 16, 1), "avif")[:SNIFF_BYTES]).format == "avif"
    assert sniff(samples.heic(16, 16)[:SNIFF_BYTES]).format == "heic"
    assert sniff(samples.encoded(samples.photo(16, 16, 1), "tiff")[:SNIFF_BYTES]).format == "tiff"
    assert sniff(samples.svg()[:SNIFF_BYTES]).format == "svg"


@pytest.mark.parametrize(
    "text",
    [
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"\xef\xbb\xbf<svg>",
        b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- made by hand -->\n<svg width="1">',
        b'<?xml version="1.0"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
        b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n<svg>',
        b'<!DOCTYPE svg [<!ENTITY a "b">]><svg>&a;</svg>',
        b"<svg:svg xmlns:svg='http://www.w3.org/2000/svg'/>",
        "<svg/>".encode("utf-16"),
        b"<!DOCTYPE svg [" + b"<!ENTITY a 'b'>" * 400 + b"]><svg/>",
    ],
)
def test_svg_by_parsing_its_text_prefix(text: bytes) -> None:
    sniffed = sniff(text[:SNIFF_BYTES])
    assert (sniffed.format, sniffed.mime) == ("svg", "image/svg+xml")


@pytest.mark.parametrize(
    "head",
    [
        *hostile_non_images().values(),
        b"<html><svg></svg></html>",
        b"<?xml version='1.0'?><note>svg</note>",
        b"BM\x00\x00",
        b"\x00\x00\x01\x00\x01\x00",
        b"8BPS\x00\x01",
        b"\x1f\x8b\x08\x00",
        b"PK\x03\x04",
        b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00",
        b"\xff\xfe\x00\x00garbage",
    ],
)
def test_anything_else_is_unsupported(head: bytes) -> None:
    with pytest.raises(ValidationError) as caught:
        sniff(head[:SNIFF_BYTES])
    assert caught.value.code == "unsupported_type"
    assert "JPEG" in str(caught.value)


def test_empty_is_its_own_code() -> None:
    with pytest.raises(ValidationError) as caught:
        sniff(b"")
    assert caught.value.code == "empty"


def test_the_native_vips_format_is_unsupported() -> None:
    with pytest.raises(ValidationError, match="not a supported type"):
        sniff(samples.vips_native()[:SNIFF_BYTES])


@pytest.mark.parametrize(
    "head",
    [
        b"<!---->" * 585 + b"x",
        b" " * SNIFF_BYTES,
        b"<!DOCTYPE a [" + b"]" * 4000,
        b"<?a?>" * 800 + b"x",
        b"<!--" + b"-" * 4000,
    ],
)
def test_hostile_text_prefixes_are_refused_quickly(head: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(ValidationError):
        sniff(head)
    assert time.perf_counter() - started < 0.05


def test_allowlist_is_the_documented_one() -> None:
    assert {"jpeg", "png", "gif", "webp", "avif", "heic", "tiff", "svg"} == IMAGE_FORMATS
