"""Types are decided from content alone."""

from __future__ import annotations

import random
import time

import pytest

from mediamill.media import mesh_samples, samples
from mediamill.media.errors import ValidationError
from mediamill.media.sniff import IMAGE_FORMATS, MODEL_FORMATS, SNIFF_BYTES, sniff
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


# 3D models: decided by content like everything else; a binary STL needs the total size.

MODEL_MIMES = {
    "glb": "model/gltf-binary",
    "gltf": "model/gltf+json",
    "obj": "model/obj",
    "stl": "model/stl",
    "ply": "model/x-ply",
}


def _sniff_whole(data: bytes) -> str:
    sniffed = sniff(data[:SNIFF_BYTES], size=len(data))
    assert sniffed.kind == "model"
    assert (sniffed.mime, sniffed.extension) == (MODEL_MIMES[sniffed.format], sniffed.format)
    return sniffed.format


@pytest.mark.parametrize("encoding", mesh_samples.CUBE_FORMATS)
def test_every_model_encoding_is_recognised(encoding: str) -> None:
    assert _sniff_whole(mesh_samples.unit_cube(encoding)) == encoding.split("_")[0]


def test_textured_and_coloured_models_are_recognised() -> None:
    assert _sniff_whole(mesh_samples.textured_box_glb()) == "glb"
    assert _sniff_whole(mesh_samples.textured_box_gltf()) == "gltf"
    assert _sniff_whole(mesh_samples.vertex_coloured_ply()) == "ply"
    assert set(MODEL_MIMES) == MODEL_FORMATS


def test_a_binary_stl_needs_its_size_to_be_recognised() -> None:
    data = mesh_samples.unit_cube("stl")
    with pytest.raises(ValidationError) as caught:
        sniff(data[:SNIFF_BYTES])
    assert caught.value.code == "unsupported_type"
    for wrong in (len(data) - 1, len(data) + 50, len(data) * 2):
        with pytest.raises(ValidationError):
            sniff(data[:SNIFF_BYTES], size=wrong)


def test_a_binary_stl_whose_header_says_solid_is_binary() -> None:
    data = b"solid exported by a CAD tool".ljust(80, b" ") + mesh_samples.unit_cube("stl")[80:]
    assert sniff(data[:SNIFF_BYTES], size=len(data)).format == "stl"


def test_the_size_keyword_changes_nothing_for_other_types() -> None:
    jpeg = samples.photo_jpeg(32, 24)
    assert sniff(jpeg[:SNIFF_BYTES], size=len(jpeg)).format == "jpeg"
    glb = mesh_samples.unit_cube("glb")
    assert sniff(glb[:SNIFF_BYTES], size=len(glb)).format == "glb"


@pytest.mark.parametrize(
    ("head", "model_format"),
    [
        (b"solid cube\n  facet normal 0 0 1\n", "stl"),
        (b"\r\n solid\r\nfacet  normal 0 0 1\r\n", "stl"),
        (b"solid empty\nendsolid empty\n", "stl"),
        (b"ply\nformat ascii 1.0\nelement vertex 3\n", "ply"),
        (b"ply\r\ncomment made by hand\r\nformat binary_big_endian 1.0\r\n", "ply"),
        (b'{"asset": {"version": "2.0"}, "scene": 0}', "gltf"),
        (
            b'\xef\xbb\xbf {\n "scenes": [],\n "asset" : {"generator": "x", "version": "2.0"}}',
            "gltf",
        ),
        (b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", "obj"),
        (b"# Blender\r\nmtllib chair.mtl\r\no Chair\r\nv 1.0 -2e-3 3\r\nvt 0.5 1\r\n", "obj"),
        (b"g body\nusemtl red\ns off\nv 1 2 3 0.5 0.5 0.5\nvn 0 0 1\nf 1/1/1 2//1 -1/3\n", "obj"),
        (b"v 0 nan 0\nv 1 inf 0\n", "obj"),
        (b"v 1 2 3\nv 4 5 6\nv 7 8", "obj"),
    ],
)
def test_model_text_formats_by_their_content(head: bytes, model_format: str) -> None:
    sniffed = sniff(head)
    assert (sniffed.kind, sniffed.format) == ("model", model_format)


@pytest.mark.parametrize(
    "head",
    [
        b"name,x,y,z\nchair,1,2,3\n",
        b"1 2 3\n4 5 6\n",
        b"v 1 2\n",
        b"v one two three\n",
        b"v 1 2 3\nhello world\n",
        b"# Heading\n\n## Another heading\n",
        b"# comment only\ng group\no object\n",
        b"<html><body>v 1 2 3</body></html>",
        b"solid state drives are fast\nand quiet\n",
        b"solid\nfacet\n",
        b"ply\nthis is not a header\n",
        b"plywood,12mm\n",
        b'{"name": "chair", "version": "2.0"}',
        b'{"asset": "2.0"}',
        b'{"asset": {"generator": "x"}}',
        b'[{"asset": {"version": "2.0"}}]',
        b"<svg xmlns='http://www.w3.org/2000/svg'><text>v 1 2 3</text></svg>",
        b"f 1 2 3\n",
        b"v 0 0 0\nf 1 2 x\n",
    ],
)
def test_text_that_is_not_a_model_is_never_taken_for_one(head: bytes) -> None:
    if head.startswith(b"<svg"):
        assert sniff(head, size=len(head)).kind == "image"
        return
    with pytest.raises(ValidationError) as caught:
        sniff(head, size=len(head))
    assert caught.value.code == "unsupported_type"


def test_random_text_and_bytes_are_not_models() -> None:
    rng = random.Random(7)
    words = ["chair", "v", "f", "1", "2.5", "solid", "ply", "#", "x", "\n", ",", "<", "{"]
    for _ in range(300):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 60))).encode()
        data = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 400)))
        for head in (text, data):
            try:
                sniffed = sniff(head, size=len(head))
            except ValidationError:
                continue
            if sniffed.kind == "model":
                assert sniffed.format == "obj", head
                assert b"v " in head or b"v\t" in head, head


def test_a_gltf_whose_asset_comes_after_the_sniffed_prefix_is_not_recognised() -> None:
    late = b'{"accessors": [' + b'{"count": 3}, ' * 400 + b'{}], "asset": {"version": "2.0"}}'
    with pytest.raises(ValidationError):
        sniff(late[:SNIFF_BYTES], size=len(late))


def test_a_long_obj_prefix_is_judged_quickly() -> None:
    head = (b"v 0.123456 1.234567 2.345678\n" * 200)[:SNIFF_BYTES]
    started = time.perf_counter()
    assert sniff(head).format == "obj"
    assert time.perf_counter() - started < 0.05
