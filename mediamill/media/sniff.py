"""Decide what an upload is from its first bytes, never from its name or declared type."""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from mediamill.media.errors import ValidationError

MediaKind = Literal["image", "video", "model", "document"]

SNIFF_BYTES: Final = 4096
"""How many leading bytes callers must pass to ``sniff`` (fewer only if the file is shorter)."""

IMAGE_FORMATS: Final = frozenset({"jpeg", "png", "gif", "webp", "avif", "heic", "tiff", "svg"})
MODEL_FORMATS: Final = frozenset({"glb", "gltf", "obj", "stl", "ply"})
ACCEPTED_VIDEO_FORMATS: Final = frozenset({"mp4", "mov", "webm", "mkv"})
"""Sniffed video containers the pipeline renders; 3GP and AVI are named, then refused."""


@dataclass(frozen=True)
class Sniffed:
    """What the content is; ``extension`` has no leading dot."""

    kind: MediaKind
    format: str
    mime: str
    extension: str


_TYPES: Final[dict[str, Sniffed]] = {
    s.format: s
    for s in (
        Sniffed("image", "jpeg", "image/jpeg", "jpg"),
        Sniffed("image", "png", "image/png", "png"),
        Sniffed("image", "gif", "image/gif", "gif"),
        Sniffed("image", "webp", "image/webp", "webp"),
        Sniffed("image", "avif", "image/avif", "avif"),
        Sniffed("image", "heic", "image/heic", "heic"),
        Sniffed("image", "tiff", "image/tiff", "tiff"),
        Sniffed("image", "svg", "image/svg+xml", "svg"),
        Sniffed("video", "mp4", "video/mp4", "mp4"),
        Sniffed("video", "mov", "video/quicktime", "mov"),
        Sniffed("video", "3gp", "video/3gpp", "3gp"),
        Sniffed("video", "webm", "video/webm", "webm"),
        Sniffed("video", "mkv", "video/x-matroska", "mkv"),
        Sniffed("video", "avi", "video/x-msvideo", "avi"),
        Sniffed("model", "glb", "model/gltf-binary", "glb"),
        Sniffed("model", "gltf", "model/gltf+json", "gltf"),
        Sniffed("model", "obj", "model/obj", "obj"),
        Sniffed("model", "stl", "model/stl", "stl"),
        Sniffed("model", "ply", "model/x-ply", "ply"),
        Sniffed("document", "pdf", "application/pdf", "pdf"),
    )
}

_MAGIC: Final[tuple[tuple[bytes, str], ...]] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),
    (b"MM\x00+", "tiff"),
    (b"%PDF-", "pdf"),
    (b"glTF", "glb"),
)

_BRANDS: Final[dict[bytes, str]] = {
    **dict.fromkeys((b"avif", b"avis"), "avif"),
    **dict.fromkeys((b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"), "heic"),
    **dict.fromkeys(
        (b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"dash"),
        "mp4",
    ),
    b"qt  ": "mov",
    **dict.fromkeys((b"3gp4", b"3gp5", b"3gp6", b"3g2a"), "3gp"),
}
_GENERIC_HEIF_BRANDS: Final = frozenset({b"mif1", b"msf1", b"miaf"})
_MAX_FTYP_BYTES: Final = 256

_COMMENT = r"<!--(?:(?!--).)*-->"
_PI = r"<\?[^>]*\?>"
_DOCTYPE = r"<!DOCTYPE\s[^\[>]*(?:\[(?:[^\]]|\](?!\s*>))*\]\s*)?>"
_SVG_ROOT: Final = re.compile(
    rf"\A(?:{_COMMENT}|{_PI}|{_DOCTYPE}|\s)*<(?:[A-Za-z_][\w.-]*:)?svg[\s>/]", re.DOTALL
)
_SVG_DOCTYPE: Final = re.compile(rf"\A(?:{_COMMENT}|{_PI}|\s)*<!DOCTYPE\s+svg[\s\[>]", re.DOTALL)

_STL_HEADER_BYTES: Final = 84
_STL_TRIANGLE_BYTES: Final = 50
_PLY: Final = re.compile(
    rb"\Aply\r?\n(?:(?:comment|obj_info)(?:[ \t][^\r\n]*)?\r?\n)*"
    rb"format[ \t]+(?:ascii|binary_little_endian|binary_big_endian)[ \t]+1\.0[ \t]*\r?\n"
)
_ASCII_STL: Final = re.compile(
    rb"\A[ \t\r\n]*solid(?:[ \t][^\r\n]*)?\r?\n[ \t\r\n]*(?:facet[ \t]+normal[ \t]|endsolid)"
)
_GLTF_START: Final = re.compile(rb"\A(?:\xef\xbb\xbf)?[ \t\r\n]*\{")
_GLTF_ASSET: Final = re.compile(
    rb'"asset"[ \t\r\n]*:[ \t\r\n]*\{[^{}]*"version"[ \t\r\n]*:[ \t\r\n]*"[0-9]+\.[0-9]+"'
)
_OBJ_INDEX: Final = re.compile(rb"-?[0-9]+(?:/-?[0-9]*)?(?:/-?[0-9]+)?")


def sniff(head: bytes, *, size: int | None = None) -> Sniffed:
    """Name the type of the content whose first ``SNIFF_BYTES`` bytes are ``head``.

    ``size`` is the upload's total length when the caller knows it: a binary STL has no
    magic number, only a triangle count that must agree with the length, so without
    ``size`` it is not recognised.
    """
    if not head:
        raise ValidationError("empty", "the upload is empty")
    found = (
        _binary_format(head)
        or _binary_stl_format(head, size)
        or _svg_format(head)
        or _model_text_format(head, size)
    )
    if found is None:
        raise ValidationError(
            "unsupported_type",
            "the content is not a supported type; accepted are images ("
            + ", ".join(sorted(f.upper() for f in IMAGE_FORMATS))
            + "), videos ("
            + ", ".join(sorted(f.upper() for f in ACCEPTED_VIDEO_FORMATS))
            + "), 3D models ("
            + ", ".join(sorted(f.upper() for f in MODEL_FORMATS))
            + ") and PDF documents",
        )
    return _TYPES[found]


def _binary_format(head: bytes) -> str | None:
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"AVI "):
        return "webp" if head[8:12] == b"WEBP" else "avi"
    if head[4:8] == b"ftyp":
        return _isobmff_format(head)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm" if b"webm" in head[:64] else "mkv"
    return None


def _isobmff_format(head: bytes) -> str | None:
    box_size = int.from_bytes(head[:4], "big")
    box = head[8 : max(16, min(box_size, len(head), _MAX_FTYP_BYTES))]
    brands = [box[:4]] + [box[i : i + 4] for i in range(8, len(box) - 3, 4)]
    for brand in brands:
        if brand in _BRANDS:
            return _BRANDS[brand]
    if any(brand in _GENERIC_HEIF_BRANDS for brand in brands):
        return "heic"
    return None


def _binary_stl_format(head: bytes, size: int | None) -> str | None:
    """80-byte header, uint32 triangle count, 50 bytes per triangle: the length must agree."""
    if size is None or len(head) < _STL_HEADER_BYTES:
        return None
    triangles = int.from_bytes(head[80:84], "little")
    return "stl" if size == _STL_HEADER_BYTES + _STL_TRIANGLE_BYTES * triangles else None


def _model_text_format(head: bytes, size: int | None) -> str | None:
    """PLY, ASCII STL, glTF JSON or OBJ, judged on bytes: their bodies need not be UTF-8."""
    if _PLY.match(head):
        return "ply"
    if _ASCII_STL.match(head):
        return "stl"
    if _GLTF_START.match(head) and _GLTF_ASSET.search(head):
        return "gltf"
    complete = size is not None and size <= len(head)
    if _is_obj(head, complete):
        return "obj"
    return None


def _is_obj(head: bytes, complete: bool) -> bool:
    """Every line is an OBJ statement with well-formed arguments, and some line is a vertex.

    The last line is ignored unless it is known to be whole, since ``head`` may cut it.
    """
    lines = head.split(b"\n")
    if not complete and not head.endswith(b"\n"):
        lines.pop()
    vertices = 0
    for line in lines:
        words = line.split()
        if not words or words[0].startswith(b"#"):
            continue
        check = _OBJ_STATEMENTS.get(words[0])
        if check is None or not check(words[1:]):
            return False
        vertices += words[0] == b"v"
    return vertices > 0


def _floats(low: int, high: int) -> Callable[[list[bytes]], bool]:
    def check(words: list[bytes]) -> bool:
        if not low <= len(words) <= high:
            return False
        try:
            for word in words:
                float(word)
        except ValueError:
            return False
        return True

    return check


def _indices(low: int) -> Callable[[list[bytes]], bool]:
    def check(words: list[bytes]) -> bool:
        return len(words) >= low and all(_OBJ_INDEX.fullmatch(word) for word in words)

    return check


def _anything(words: list[bytes]) -> bool:
    return True


def _some(words: list[bytes]) -> bool:
    return bool(words)


_OBJ_STATEMENTS: Final[dict[bytes, Callable[[list[bytes]], bool]]] = {
    b"v": _floats(3, 7),
    b"vt": _floats(1, 3),
    b"vn": _floats(3, 3),
    b"vp": _floats(1, 3),
    b"f": _indices(3),
    b"l": _indices(2),
    b"p": _indices(1),
    b"o": _anything,
    b"g": _anything,
    b"s": _some,
    b"mtllib": _some,
    b"usemtl": _some,
}


def _svg_format(head: bytes) -> str | None:
    text = _decode_text(head)
    if text is None:
        return None
    if _SVG_ROOT.match(text) or _SVG_DOCTYPE.match(text):
        return "svg"
    return None


def _decode_text(head: bytes) -> str | None:
    """Decode a text prefix, tolerating a multi-byte character cut at the end."""
    encoding = "utf-8"
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    try:
        return codecs.getincrementaldecoder(encoding)().decode(head, final=False)
    except UnicodeDecodeError:
        return None
