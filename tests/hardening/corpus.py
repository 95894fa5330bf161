"""Generated samples of every type the sniffer names, shared by the properties and the fuzzer.

Each sample carries the format ``sniff`` must give it (``None``: sniff must refuse it), so
the same list checks the sniffer in the property tests and seeds the fuzzer's corpus.
Nothing here is read from disk: every byte is made by the project's own sample generators.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cache

from mediamill.media import mesh_samples, pdf_samples, samples


@dataclass(frozen=True)
class Sample:
    """``data`` and the format ``sniff(data[:SNIFF_BYTES], size=len(data))`` must name."""

    name: str
    format: str | None
    data: bytes


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    """An ISO-BMFF head: an ftyp box naming the brands, then an empty mdat box."""
    body = major + b"\x00\x00\x02\x00" + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\x00\x00\x00\x08mdat"


def _ebml(doc_type: bytes) -> bytes:
    """A Matroska/WebM EBML header naming ``doc_type``."""
    field = b"\x42\x82" + bytes([0x80 | len(doc_type)]) + doc_type
    return b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(field)]) + field + b"\x18\x53\x80\x67"


@cache
def image_samples() -> tuple[Sample, ...]:
    """Small real images in every allowlisted format, and the hostile ones from THREATS.md."""
    photo = samples.photo(24, 16, seed=1)
    return (
        Sample("photo.jpg", "jpeg", samples.photo_jpeg(32, 24)),
        Sample("oriented.jpg", "jpeg", samples.oriented_jpeg(16, 8, 6)),
        Sample("cmyk.jpg", "jpeg", samples.cmyk_jpeg(16, 16)),
        Sample("alpha.png", "png", samples.alpha_png(12, 12)),
        Sample("png16.png", "png", samples.png16(8, 8)),
        Sample("grey.png", "png", samples.grey_png(8, 8)),
        Sample("animated.gif", "gif", samples.animated_gif(8, 8, 3)),
        Sample("animated.webp", "webp", samples.animated(8, 8, 2, "webp")),
        Sample("photo.avif", "avif", samples.encoded(photo, "avif")),
        Sample("photo.heic", "heic", samples.heic(16, 16)),
        Sample("photo.tiff", "tiff", samples.encoded(photo, "tiff")),
        Sample("drawing.svg", "svg", samples.svg()),
        Sample("huge-header.jpg", "jpeg", samples.huge_jpeg_header()),
        Sample("frame-bomb.gif", "gif", samples.frame_bomb_gif(4000, 4000, 300)),
        Sample("corrupt.jpg", "jpeg", samples.corrupt_jpeg()),
        Sample("bad-crc.png", "png", samples.bad_crc_png()),
        Sample("png-garbage.png", "png", samples.png_signature_garbage()),
        Sample("gif-with-zip.gif", "gif", samples.gif_with_zip()),
        Sample("jpeg-with-script.jpg", "jpeg", samples.jpeg_with_script()),
        Sample("billion-laughs.svg", "svg", samples.svg_billion_laughs()),
        Sample("xxe.svg", "svg", samples.svg_xxe()),
        Sample("script.svg", "svg", samples.svg(body="<script>alert(1)</script>")),
        Sample("html.jpg", None, samples.html_as_jpg()),
        Sample("php.jpg", None, samples.php_as_jpg()),
        Sample("fits.jpg", None, samples.fits()),
        Sample("ppm.jpg", None, samples.ppm()),
        Sample("matlab.jpg", None, samples.matlab()),
        Sample("mvg.jpg", None, samples.mvg()),
    )


@cache
def model_samples() -> tuple[Sample, ...]:
    """Models in every format we read, well-formed and malformed."""
    cubes = tuple(
        Sample(f"cube.{name}", name.partition("_")[0], mesh_samples.unit_cube(name))
        for name in mesh_samples.CUBE_FORMATS
    )
    return (
        *cubes,
        Sample("textured.glb", "glb", mesh_samples.textured_box_glb()),
        Sample("textured.gltf", "gltf", mesh_samples.textured_box_gltf()),
        Sample("coloured.ply", "ply", mesh_samples.vertex_coloured_ply()),
        Sample("no-position.glb", "glb", mesh_samples.glb_without_position()),
        Sample("bad-stride.glb", "glb", mesh_samples.glb_bad_stride()),
        Sample("view-past-end.glb", "glb", mesh_samples.glb_view_past_end()),
        Sample("claiming.glb", "glb", mesh_samples.glb_claiming()),
        Sample("draco.glb", "glb", mesh_samples.glb_requiring()),
        Sample("cycle.glb", "glb", mesh_samples.glb_node_cycle()),
        Sample("instanced.glb", "glb", mesh_samples.glb_instanced(3)),
        Sample("texture.glb", "glb", mesh_samples.glb_with_texture(mesh_samples.texture_bytes(8))),
        Sample("external.gltf", "gltf", mesh_samples.gltf_external_buffer("/etc/passwd")),
        Sample("external-image.gltf", "gltf", mesh_samples.gltf_external_image("/etc/passwd")),
        Sample("minus-one.obj", "obj", mesh_samples.obj_face_index(-1)),
        Sample("zero.obj", "obj", mesh_samples.obj_face_index(0)),
        Sample("mtllib.obj", "obj", mesh_samples.obj_with_mtllib("/etc/passwd")),
        Sample("nan.obj", "obj", mesh_samples.obj_non_finite()),
        Sample("defects.obj", "obj", mesh_samples.obj_with_defects()),
        # Its count disagrees with its length, so it is neither a binary nor an ASCII STL.
        Sample("claiming.stl", None, mesh_samples.stl_claiming()),
        Sample("triangles.stl", "stl", mesh_samples.random_triangles_stl(20)),
        Sample("claiming.ply", "ply", mesh_samples.ply_claiming()),
        Sample("texture-file.ply", "ply", mesh_samples.ply_with_texture_file("/etc/passwd")),
        *(Sample(f"empty.{f}", f, mesh_samples.empty(f)) for f in ("glb", "gltf", "stl", "ply")),
    )


@cache
def other_samples() -> tuple[Sample, ...]:
    """PDFs and video container heads: the sniffer names them, other pipelines decode them."""
    return (
        Sample("page.pdf", "pdf", pdf_samples.page_of_size(200, 100)),
        Sample("pages.pdf", "pdf", pdf_samples.many_pages(3)),
        Sample("no-pages.pdf", "pdf", pdf_samples.no_pages()),
        Sample("garbage.pdf", "pdf", pdf_samples.garbage(2000)),
        Sample("clip.mp4", "mp4", _ftyp(b"isom", b"iso2", b"avc1", b"mp41")),
        Sample("clip.mov", "mov", _ftyp(b"qt  ", b"qt  ")),
        Sample("clip.3gp", "3gp", _ftyp(b"3gp4", b"isom")),
        Sample("clip.webm", "webm", _ebml(b"webm")),
        Sample("clip.mkv", "mkv", _ebml(b"matroska")),
        Sample("clip.avi", "avi", b"RIFF" + struct.pack("<I", 4) + b"AVI LIST"),
    )


def all_samples() -> tuple[Sample, ...]:
    """Every sample above, images first."""
    return image_samples() + model_samples() + other_samples()
