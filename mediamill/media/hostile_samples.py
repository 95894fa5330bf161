"""The THREATS.md "Hostile uploads" table as one generated corpus, with the outcome each must reach.

Every row of the table that applies to an accepted type has cases here; the one that does
not ("zip / archive": archives are not accepted) has cases proving an archive is refused.
A case is an upload as an attacker would send it: a name (path segments, bidi overrides,
markup and overlong names included) and bytes made on the fly, deterministically, from the
generators in ``samples``, ``video_samples``, ``mesh_samples`` and ``pdf_samples`` or from
the few built here. Its expectation is the only safe end for that upload: ``failed`` with
one exact error code, or ``ready`` with checks its variants must pass (no GPS, no trailing
payload, no bytes of the sentinel file a playlist points at).

The corpus lives in the package, not in the tests, so a reliability report can replay it
against any deployment. Rows about transport ("stream with no length", "Content-Length
understates") concern URL downloads and are covered by the fetcher's tests, not here.

``RUN_SETTINGS`` are the caps a run of the corpus must use: the oversize and face-cap cases
are sized against them, so a run does not have to upload hundreds of megabytes.
"""

from __future__ import annotations

import base64
import hashlib
import io
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyvips

from mediamill.media import mesh_samples, pdf_samples, samples, video_samples
from mediamill.media.errors import VALIDATION_CODES

UPLOAD_CAP: Final = 3 * 1024 * 1024
"""``MEDIAMILL_MAX_UPLOAD_BYTES`` for a corpus run; every other case is well under it."""

FACE_CAP: Final = 2000
"""``MEDIAMILL_MAX_MODEL_FACES`` for a corpus run: a real mesh just over it stays small."""

RUN_SETTINGS: Final[Mapping[str, str]] = {
    "MEDIAMILL_MAX_UPLOAD_BYTES": str(UPLOAD_CAP),
    "MEDIAMILL_MAX_MODEL_FACES": str(FACE_CAP),
}
"""Environment a corpus run sets; the page cap keeps its default, which 10000 pages exceed."""

THREATS: Final = (
    "extension lies",
    "oversize",
    "pixel bomb",
    "frame bomb",
    "truncated / corrupt",
    "untrusted loaders",
    "SVG",
    "polyglot",
    "EXIF privacy",
    "ffmpeg file read",
    "malformed 3D",
    "PDF",
    "zip / archive",
)
"""The rows of THREATS.md "Hostile uploads", spelt as there."""

SENTINEL_TEXT: Final = video_samples.SENTINEL_TEXT
"""What the sentinel file holds: hostile inputs point at it, no stored byte may come from it."""

Variants = Mapping[str, bytes]
"""A ready upload's variants by ``name.format`` (``optimized.webp``, ``web.mp4``)."""

Check = Callable[[Variants], list[str]]
"""Problems found in a ready upload's variants; empty when they are safe."""

Maker = Callable[[Path], bytes]
"""Makes a case's bytes; the argument is the sentinel file, for inputs that point at it."""

_IMAGE_FORMATS: Final = frozenset({"jpeg", "png", "webp", "avif", "gif"})
_METADATA_FIELDS: Final = ("exif-data", "xmp-data", "iptc-data", "icc-profile-data")


@dataclass(frozen=True)
class HostileCase:
    """One upload, and how it must end.

    ``code`` is the exact error code of a ``failed`` end; ``None`` means it must be
    ``ready``, every ``checks`` entry must find nothing wrong with its variants, and no
    variant may hold any of ``absent``: the payload markers the upload itself carries
    (a ``<script``, a ZIP directory, an XMP packet), so their absence shows a re-encode.
    No variant of any case may hold the sentinel file's bytes.
    """

    threat: str
    name: str
    make: Maker
    code: str | None = None
    checks: tuple[Check, ...] = ()
    absent: tuple[bytes, ...] = ()
    what: str = ""

    def __post_init__(self) -> None:
        if self.threat not in THREATS and self.threat != CONTROL:
            raise ValueError(f"unknown threat {self.threat!r}")
        if self.code is not None and self.code not in VALIDATION_CODES:
            raise ValueError(f"{self.code!r} is not a validation error code")
        if self.code is not None and (self.checks or self.absent):
            raise ValueError("a case that must fail has no variants to check")

    @property
    def expected(self) -> str:
        """``ready`` or ``failed: <code>``, for tables and test ids."""
        return "ready" if self.code is None else f"failed: {self.code}"

    def problems(self, variants: Variants) -> list[str]:
        """Everything wrong with a ready case's variants (none at all is a problem too)."""
        if not variants:
            return ["no variants were published"]
        found = [
            f"{name} holds {needle!r}"
            for name, data in variants.items()
            for needle in (*self.absent, SENTINEL_TEXT[:32])
            if needle in data
        ]
        return found + [problem for check in self.checks for problem in check(variants)]


CONTROL: Final = "control"
"""The threat of ``CONTROLS``: ordinary uploads that must still come out ready."""


# -- checks on a ready upload's variants --------------------------------------------------


def no_metadata(variants: Variants) -> list[str]:
    """No image variant carries EXIF, XMP, IPTC or an ICC profile, as libvips reads them."""
    problems = []
    for name, data in _images(variants).items():
        fields = pyvips.Image.new_from_buffer(data, "").get_fields()
        found = [f for f in fields if f in _METADATA_FIELDS or f.startswith(("exif-", "xmp"))]
        if found:
            problems.append(f"{name} carries {', '.join(found)}")
    return problems


def portrait(variants: Variants) -> list[str]:
    """The optimized images are taller than wide: a 90-degree EXIF orientation was applied."""
    sizes = {
        name: _size(data) for name, data in _images(variants).items() if name.startswith("opt")
    }
    if not sizes:
        return ["no optimized image variant"]
    return [f"{name} is {w}x{h}, not upright" for name, (w, h) in sizes.items() if w >= h]


def keeps_alpha(variants: Variants) -> list[str]:
    """Transparency survives: PNG replaces JPEG, and every image variant has see-through pixels."""
    problems = [] if any(n.endswith(".png") for n in variants) else ["no PNG variant"]
    for name, data in _images(variants).items():
        image = pyvips.Image.new_from_buffer(data, "")
        if not image.hasalpha() or image[image.bands - 1].min() >= 255:
            problems.append(f"{name} lost its transparency")
    return problems


def shows_brochure_page_one(variants: Variants) -> list[str]:
    """The optimized preview is page 1 of ``pdf_samples.brochure``: its boxes, in their colours."""
    data = variants.get("optimized.webp")
    if data is None:
        return ["no optimized.webp preview"]
    image = pyvips.Image.new_from_buffer(data, "")
    problems = []
    for colour, rect in pdf_samples.BROCHURE_BOXES:
        across, down = rect.point(0.5, 0.5)
        x, y = int(across * image.width), int(down * image.height)
        seen = image.getpoint(x, y)[:3]
        if max(abs(a - b) for a, b in zip(seen, colour, strict=True)) > 40:
            problems.append(f"at ({x}, {y}) the preview shows {seen}, page 1 has {colour}")
    return problems


def has_variants(*names: str) -> Check:
    """Each of ``names`` (``name.format``) was published."""

    def check(variants: Variants) -> list[str]:
        return [f"{name} is missing" for name in names if name not in variants]

    return check


def _images(variants: Variants) -> dict[str, bytes]:
    return {n: d for n, d in variants.items() if n.rsplit(".", 1)[-1] in _IMAGE_FORMATS}


def _size(data: bytes) -> tuple[int, int]:
    image = pyvips.Image.new_from_buffer(data, "")
    return int(image.width), int(image.height)


CLEAN_IMAGE: Final[tuple[Check, ...]] = (
    no_metadata,
    has_variants("optimized.webp", "thumb.webp", "tiny.webp"),
)
"""What every ready image's variants must satisfy."""


# -- generators the sample modules do not have --------------------------------------------


def _jpeg(seed: int, width: int = 96, height: int = 64) -> bytes:
    return samples.photo_jpeg(width, height, seed=seed)


def _png(seed: int, width: int = 80, height: int = 60) -> bytes:
    return samples.encoded(samples.photo(width, height, seed), "png")


def jpeg_with_comment(payload: bytes, seed: int = 11) -> bytes:
    """A real JPEG with ``payload`` in a COM segment right after SOI."""
    data = _jpeg(seed)
    return data[:2] + _segment(0xFE, payload) + data[2:]


def jpeg_with_trailer(payload: bytes, seed: int = 12) -> bytes:
    """A real JPEG with ``payload`` appended after its EOI marker."""
    return _jpeg(seed) + payload


def padded_jpeg(size: int, seed: int = 13) -> bytes:
    """A real JPEG grown to exactly ``size`` bytes with COM segments of zeros."""
    data = _jpeg(seed)
    missing = size - len(data)
    if missing < 0:
        raise ValueError(f"the JPEG is already {len(data)} bytes")
    segments = b""
    while missing:
        body = min(missing - 4, 0xFFFF - 2)
        if 0 < missing - 4 - body < 4:  # never leave less than one empty segment's worth
            body -= 4
        if body < 0:
            raise ValueError(f"cannot pad by {missing} bytes")
        segments += _segment(0xFE, bytes(body))
        missing -= 4 + body
    return data[:2] + segments + data[2:]


def png_with_text(payload: bytes) -> bytes:
    """A transparent PNG carrying ``payload`` in a tEXt chunk."""
    data = samples.alpha_png(72, 48)
    end_of_ihdr = 8 + 8 + 13 + 4
    return data[:end_of_ihdr] + _chunk(b"tEXt", b"Comment\x00" + payload) + data[end_of_ihdr:]


def camera_segments() -> tuple[bytes, bytes]:
    """The EXIF (orientation 1, GPS IFD) and XMP payloads ``samples.with_metadata`` writes."""
    data = samples.photo_jpeg(16, 16, seed=14, gps=True, xmp=True)
    payloads: list[bytes] = []
    at = 2
    while len(payloads) < 2:
        marker, length = data[at + 1], struct.unpack_from(">H", data, at + 2)[0]
        if marker == 0xE1:
            payloads.append(data[at + 4 : at + 2 + length])
        at += 2 + length
    exif, xmp = payloads
    return exif, xmp


def png_with_private_metadata() -> bytes:
    """A PNG with the camera's EXIF (GPS IFD) in eXIf and its XMP packet in plain iTXt."""
    exif, xmp = camera_segments()
    tiff = exif.removeprefix(b"Exif\x00\x00")
    packet = xmp.removeprefix(samples.XMP_NAMESPACE)
    itxt = b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + packet
    data = _png(14, 160, 120)
    end_of_ihdr = 8 + 8 + 13 + 4
    return data[:end_of_ihdr] + _chunk(b"eXIf", tiff) + _chunk(b"iTXt", itxt) + data[end_of_ihdr:]


def webp_with_private_metadata() -> bytes:
    """A WebP that kept the camera's EXIF (GPS IFD included) and XMP packet."""
    source = samples.photo_jpeg(160, 120, seed=14, gps=True, xmp=True)
    image = pyvips.Image.jpegload_buffer(source)
    return bytes(image.webpsave_buffer(keep="exif,xmp"))


def gif_with_zip() -> bytes:
    """``samples.gif_with_zip`` with a fixed archive date, so the bytes never change."""
    archive = zip_archive({"evil.class": b"\xca\xfe\xba\xbe" + bytes(64)})
    return samples.animated_gif(48, 32, 1) + archive


def ojpeg_tiff() -> bytes:
    """A TIFF declaring old-style JPEG compression (6), a codec with a long record of CVEs."""
    data = bytearray(samples.encoded(samples.photo(32, 24, seed=15), "tiff"))
    ifd = struct.unpack_from("<I", data, 4)[0]
    for index in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * index
        if struct.unpack_from("<H", data, entry)[0] == 259:  # Compression
            struct.pack_into("<H", data, entry + 8, 6)
    return bytes(data)


def frame_bomb_webp(width: int = 4000, height: int = 4000, frames: int = 2000) -> bytes:
    """An animated WebP of ``frames`` one-pixel frames on a ``width`` x ``height`` canvas.

    A few tens of KB on disk; every frame decodes to the whole canvas.
    """
    pixel = bytes(pyvips.Image.black(1, 1).webpsave_buffer(lossless=True, keep="none"))
    at = pixel.index(b"VP8L")
    frame_chunk = pixel[at : at + 8 + struct.unpack_from("<I", pixel, at + 4)[0]]
    frame_chunk += b"\x00" * (len(frame_chunk) % 2)
    canvas = b"\x02\x00\x00\x00" + (width - 1).to_bytes(3, "little")
    canvas += (height - 1).to_bytes(3, "little")
    placement = bytes(6) + bytes(3) + bytes(3) + (100).to_bytes(3, "little") + b"\x00"
    body = b"WEBP" + _riff_chunk(b"VP8X", canvas) + _riff_chunk(b"ANIM", bytes(6))
    body += _riff_chunk(b"ANMF", placement + frame_chunk) * frames
    return b"RIFF" + struct.pack("<I", len(body)) + body


def svg_embedding(image: bytes, mime: str = "image/png") -> bytes:
    """A 10x10 SVG whose one image is ``image``, embedded as a data: URI."""
    uri = f"data:{mime};base64,{base64.b64encode(image).decode()}"
    return samples.svg(body=f'<image width="10" height="10" href="{uri}"/>')


def svg_use_bomb(levels: int = 8, fan: int = 10) -> bytes:
    """Billion laughs without entities: each group draws ``fan`` ``<use>`` copies of the last."""
    groups = "".join(
        f'<g id="g{level}">' + f'<use href="#g{level - 1}"/>' * fan + "</g>"
        for level in range(1, levels + 1)
    )
    body = f'<defs><rect id="g0" width="1" height="1"/>{groups}</defs><use href="#g{levels}"/>'
    return samples.svg(body=body)


def mvg_behind_jpeg_magic() -> bytes:
    """The ImageTragick MVG payload behind a JPEG signature, so it sniffs as a JPEG."""
    return b"\xff\xd8\xff\xe0" + samples.mvg()


def hls_playlist(target: Path) -> bytes:
    """``video_samples.playlist`` as bytes: one segment, ``file://`` ``target``."""
    return _written(lambda path: video_samples.playlist(path, target))


def ffconcat_script(target: Path) -> bytes:
    """``video_samples.ffconcat`` as bytes."""
    return _written(lambda path: video_samples.ffconcat(path, target))


def playlist_in_ftyp(target: Path) -> bytes:
    """An MP4 ``ftyp`` box followed by an HLS playlist: sniffs as MP4, is a playlist."""
    ftyp = struct.pack(">I4s4sI8s", 24, b"ftyp", b"isom", 0x200, b"isomiso2")
    return ftyp + hls_playlist(target)


def avi_with_playlist(target: Path) -> bytes:
    """An AVI whose subtitle stream is a GAB2 chunk holding an HLS playlist.

    This is the shape of the published FFmpeg file-read exploit: the AVI demuxer probes
    the embedded subtitle and an unhardened FFmpeg then opens the playlist's segments.
    """
    playlist = hls_playlist(target)
    avih = struct.pack("<14I", 1_000_000, 0, 0, 0x10, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0)
    # fccType, fccHandler, flags, priority, language, initial frames, scale, rate, start,
    # length, buffer size, quality, sample size, frame rectangle
    strh = struct.pack(
        "<4s4sIHHIIIIIIIIhhhh", b"txts", bytes(4), 0, 0, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0
    )
    name = "playlist".encode("utf-16-le") + b"\x00\x00"
    gab2 = b"GAB2\x00\x02\x00" + struct.pack("<I", len(name)) + name
    gab2 += b"\x04\x00" + struct.pack("<I", len(playlist)) + playlist
    header = _riff_list(
        b"hdrl", _riff_chunk(b"avih", avih) + _riff_list(b"strl", _riff_chunk(b"strh", strh))
    )
    movi = _riff_list(b"movi", _riff_chunk(b"00tx", gab2))
    body = b"AVI " + header + movi
    return b"RIFF" + struct.pack("<I", len(body)) + body


def mp4_reading_another_file(target: Path) -> bytes:
    """A real MP4 whose video track's data reference is an alias to ``target``."""
    with tempfile.TemporaryDirectory(prefix="mediamill-hostile-") as scratch:
        source = video_samples.clip(
            Path(scratch) / "source.mp4", width=96, height=64, seconds=0.5, audio=False
        )
        hostile = Path(scratch) / "hostile.mp4"
        return video_samples.external_reference(source, hostile, target).read_bytes()


def clip(seed: int = 0) -> bytes:
    """A short, valid MP4 clip; ``seed`` makes the bytes differ, so clips never dedupe."""
    with tempfile.TemporaryDirectory(prefix="mediamill-hostile-") as scratch:
        path = Path(scratch) / "clip.mp4"
        video_samples.clip(path, width=96 + 16 * seed, height=64, seconds=0.5, audio=False)
        return path.read_bytes()


def encrypted_pdf(user_password: str = "secret") -> bytes:  # noqa: S107 - a sample's password
    """A one-page PDF under the standard security handler (RC4, revision 2).

    Hand-written rather than made with a PDF library, so the package needs none: the
    owner and user keys and the page's stream are computed as the PDF 1.7 spec says.
    """
    owner = hashlib.md5(_pdf_pad("owner"), usedforsecurity=False).digest()[:5]
    o_entry = _rc4(owner, _pdf_pad(user_password))
    permissions = -4  # every permission granted: only the password stands in the way
    file_id = hashlib.md5(b"mediamill-encrypted-sample", usedforsecurity=False).digest()
    key = hashlib.md5(
        _pdf_pad(user_password) + o_entry + struct.pack("<i", permissions) + file_id,
        usedforsecurity=False,
    ).digest()[:5]
    u_entry = _rc4(key, _PDF_PADDING)
    content = b"1 0 0 rg 50 50 200 200 re f\n"
    object_key = hashlib.md5(
        key + (4).to_bytes(3, "little") + (0).to_bytes(2, "little"), usedforsecurity=False
    ).digest()[:10]
    stream = _rc4(object_key, content)
    bodies = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 300] /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P %d >>"
        % (o_entry.hex().encode(), u_entry.hex().encode(), permissions),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(bodies, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(bodies) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    identifier = file_id.hex().encode()
    out += b"trailer\n<< /Size %d /Root 1 0 R /Encrypt 5 0 R /ID [<%s><%s>] >>\n" % (
        len(bodies) + 1,
        identifier,
        identifier,
    )
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def zip_archive(members: Mapping[str, bytes]) -> bytes:
    """A ZIP archive of ``members``; names are written as given, ``../`` included."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            archive.writestr(info, data)
    return out.getvalue()


def nested_zip() -> bytes:
    """A ZIP holding a ZIP holding a file that escapes with ``../``, plus a real JPEG."""
    inner = zip_archive({"../../../../tmp/evil.sh": b"#!/bin/sh\nid\n"})
    return zip_archive({"inner.zip": inner, "photo.jpg": _jpeg(16)})


_PDF_PADDING: Final = bytes.fromhex(
    "28bf4e5e4e758a4164004e56fffa01082e2e00b6d0683e802f0ca9fe6453697a"
)


def _pdf_pad(password: str) -> bytes:
    return (password.encode("latin-1") + _PDF_PADDING)[:32]


def _rc4(key: bytes, data: bytes) -> bytes:
    state = list(range(256))
    j = 0
    for i in range(256):
        j = (j + state[i] + key[i % len(key)]) % 256
        state[i], state[j] = state[j], state[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + state[i]) % 256
        state[i], state[j] = state[j], state[i]
        out.append(byte ^ state[(state[i] + state[j]) % 256])
    return bytes(out)


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _riff_chunk(fourcc: bytes, data: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(data)) + data + b"\x00" * (len(data) % 2)


def _riff_list(kind: bytes, body: bytes) -> bytes:
    return b"LIST" + struct.pack("<I", len(body) + 4) + kind + body


def _written(write: Callable[[Path], Path]) -> bytes:
    with tempfile.TemporaryDirectory(prefix="mediamill-hostile-") as scratch:
        return write(Path(scratch) / "sample").read_bytes()


def _svg(body: str = "", root: str = "") -> Maker:
    def make(sentinel: Path) -> bytes:
        return samples.svg(body=body).replace(b"<svg ", f"<svg {root} ".encode(), 1)

    return make


def _fixed(data: Callable[[], bytes]) -> Maker:
    """A maker for inputs that do not point at the sentinel."""
    return lambda sentinel: data()


_SCRIPT: Final = (b"<script", b"alert(")


CORPUS: Final[list[HostileCase]] = [
    # extension lies: the type comes from the bytes; the name is only escaped, capped metadata
    HostileCase(
        "extension lies",
        "page.jpg",
        _fixed(samples.html_as_jpg),
        "unsupported_type",
        what="an HTML page with a script, named .jpg",
    ),
    HostileCase(
        "extension lies",
        "shell.jpg",
        _fixed(samples.php_as_jpg),
        "unsupported_type",
        what="a PHP web shell, named .jpg",
    ),
    HostileCase(
        "extension lies",
        "signature.png",
        _fixed(samples.png_signature_garbage),
        "corrupt",
        what="the PNG signature followed by random bytes",
    ),
    HostileCase(
        "extension lies",
        "a.jpg.php",
        _fixed(lambda: jpeg_with_comment(b"<?php system($_GET['c']); ?>")),
        checks=CLEAN_IMAGE,
        absent=(b"<?php",),
        what="a real JPEG carrying PHP, under a double extension",
    ),
    HostileCase(
        "extension lies",
        "../../x.png",
        _fixed(lambda: _png(21)),
        checks=CLEAN_IMAGE,
        what="a path that climbs out of the upload folder",
    ),
    HostileCase(
        "extension lies",
        "..\\..\\windows.webp",
        _fixed(lambda: samples.encoded(samples.photo(64, 48, 22), "webp")),
        checks=CLEAN_IMAGE,
        what="a Windows path that climbs out",
    ),
    HostileCase(
        "extension lies",
        "avatar\u202egpj.php",
        _fixed(lambda: _jpeg(23)),
        checks=CLEAN_IMAGE,
        what="a right-to-left override: shows as avatarphp.jpg",
    ),
    HostileCase(
        "extension lies",
        "ph\u200bo\u200dto\ufeff.jpg",
        _fixed(lambda: _jpeg(24)),
        checks=CLEAN_IMAGE,
        what="zero-width and byte-order-mark characters",
    ),
    HostileCase(
        "extension lies",
        ".htaccess",
        _fixed(lambda: _jpeg(25)),
        checks=CLEAN_IMAGE,
        what="a dot-file name a web server would act on",
    ),
    HostileCase(
        "extension lies",
        "<img src=x onerror=alert(1)>.jpg",
        _fixed(lambda: _jpeg(26)),
        checks=CLEAN_IMAGE,
        what="markup in the name, for whoever prints it",
    ),
    HostileCase(
        "extension lies",
        "é" * 296 + ".gif",
        _fixed(lambda: samples.animated_gif(40, 30, 3)),
        checks=CLEAN_IMAGE,
        what="a 300-character name",
    ),
    HostileCase(
        "extension lies", "empty.jpg", _fixed(lambda: b""), "empty", what="no bytes at all"
    ),
    # oversize: the cap is enforced while streaming, one byte over is refused
    HostileCase(
        "oversize",
        "over-cap.jpg",
        _fixed(lambda: padded_jpeg(UPLOAD_CAP + 1)),
        "too_large",
        what="a real JPEG one byte over the upload cap",
    ),
    HostileCase(
        "oversize",
        "at-cap.jpg",
        _fixed(lambda: padded_jpeg(UPLOAD_CAP)),
        checks=CLEAN_IMAGE,
        what="the same JPEG exactly at the cap",
    ),
    # pixel bomb: dimensions come from the header, before any decode
    HostileCase(
        "pixel bomb",
        "bomb.png",
        _fixed(samples.pixel_bomb_png),
        "too_many_pixels",
        what="14000x14000 one-colour PNG, ~800 MB decoded",
    ),
    HostileCase(
        "pixel bomb",
        "huge.jpg",
        _fixed(samples.huge_jpeg_header),
        "too_many_pixels",
        what="a JPEG header claiming 60000x60000",
    ),
    HostileCase(
        "pixel bomb",
        "huge.svg",
        _fixed(
            lambda: samples.svg(40, 20).replace(
                b'width="40" height="20"', b'width="200000" height="200000"'
            )
        ),
        "too_many_pixels",
        what="an SVG asking to be drawn 200000x200000",
    ),
    HostileCase(
        "pixel bomb",
        "embedded.svg",
        _fixed(lambda: svg_embedding(samples.pixel_bomb_png())),
        "too_many_pixels",
        what="a 10x10 SVG embedding the 14000x14000 PNG",
    ),
    # frame bomb: frames and width x height x frames are capped before decoding
    HostileCase(
        "frame bomb",
        "frames.gif",
        _fixed(samples.frame_bomb_gif),
        "too_many_frames",
        what="2000 frames on a 4000x4000 GIF canvas",
    ),
    HostileCase(
        "frame bomb",
        "frames.webp",
        _fixed(frame_bomb_webp),
        "too_many_frames",
        what="2000 frames on a 4000x4000 WebP canvas",
    ),
    # truncated / corrupt: libvips fails on error instead of decoding grey garbage
    HostileCase(
        "truncated / corrupt",
        "cut.jpg",
        _fixed(samples.corrupt_jpeg),
        "corrupt",
        what="a JPEG with its second half cut off",
    ),
    HostileCase(
        "truncated / corrupt",
        "crc.png",
        _fixed(samples.bad_crc_png),
        "corrupt",
        what="a PNG whose IDAT checksum is wrong",
    ),
    HostileCase(
        "truncated / corrupt",
        "cut.png",
        _fixed(lambda: _png(27)[:400]),
        "corrupt",
        what="a PNG cut inside its image data",
    ),
    # untrusted loaders: only the allowlisted loader of the sniffed format ever runs
    HostileCase(
        "untrusted loaders",
        "sky.fits.jpg",
        _fixed(samples.fits),
        "unsupported_type",
        what="a FITS image, named .jpg",
    ),
    HostileCase(
        "untrusted loaders",
        "ojpeg.tiff",
        _fixed(ojpeg_tiff),
        "corrupt",
        what="a TIFF using old-style JPEG compression, a codec libvips' libtiff lacks",
    ),
    HostileCase(
        "untrusted loaders",
        "tragick.jpg",
        _fixed(samples.mvg),
        "unsupported_type",
        what="an ImageTragick MVG payload, named .jpg",
    ),
    HostileCase(
        "untrusted loaders",
        "tragick-magic.jpg",
        _fixed(mvg_behind_jpeg_magic),
        "corrupt",
        what="the MVG payload behind a JPEG signature",
    ),
    HostileCase(
        "untrusted loaders",
        "netpbm.jpg",
        _fixed(samples.ppm),
        "unsupported_type",
        what="a PPM image, named .jpg",
    ),
    HostileCase(
        "untrusted loaders",
        "native.jpg",
        _fixed(samples.vips_native),
        "unsupported_type",
        what="a libvips .v file, named .jpg",
    ),
    HostileCase(
        "untrusted loaders",
        "matrix.jpg",
        _fixed(samples.matlab),
        "unsupported_type",
        what="a MATLAB file header, named .jpg",
    ),
    # SVG: vetted with defusedxml and re-serialised; anything that could run or fetch fails
    HostileCase(
        "SVG",
        "onload.svg",
        _svg(root='onload="alert(document.domain)"'),
        "unsafe_svg",
        what="<svg onload=...>",
    ),
    HostileCase(
        "SVG",
        "script.svg",
        _svg("<script>alert(document.cookie)</script>"),
        "unsafe_svg",
        what="a <script> element",
    ),
    HostileCase(
        "SVG",
        "href.svg",
        _svg('<image href="http://169.254.169.254/latest/meta-data/" width="9" height="9"/>'),
        "unsafe_svg",
        what="an image fetched from the metadata service",
    ),
    HostileCase(
        "SVG",
        "local.svg",
        lambda sentinel: samples.svg(
            body=f'<image xlink:href="file://{sentinel}" width="9" height="9"/>'
        ),
        "unsafe_svg",
        what="an image read from a local file",
    ),
    HostileCase(
        "SVG",
        "xxe.svg",
        lambda sentinel: samples.svg_xxe(str(sentinel)),
        "unsafe_svg",
        what="an external entity naming the sentinel file",
    ),
    HostileCase(
        "SVG",
        "laughs.svg",
        _fixed(samples.svg_billion_laughs),
        "unsafe_svg",
        what="billion laughs entity expansion",
    ),
    HostileCase(
        "SVG",
        "use-bomb.svg",
        _fixed(svg_use_bomb),
        "unsafe_svg",
        what="billion laughs through 8 levels of 10 <use> copies",
    ),
    HostileCase(
        "SVG",
        "import.svg",
        _svg("<style>@import url(https://example.com/x.css);</style>"),
        "unsafe_svg",
        what="a stylesheet import",
    ),
    HostileCase(
        "SVG",
        "foreign.svg",
        _svg(
            '<foreignObject width="9" height="9"><iframe xmlns='
            '"http://www.w3.org/1999/xhtml" src="javascript:alert(1)"/></foreignObject>'
        ),
        "unsafe_svg",
        what="HTML with a javascript: frame in a foreignObject",
    ),
    HostileCase(
        "SVG",
        "logo.png",
        _svg('<circle cx="20" cy="10" r="5" fill="#0000ff"/>'),
        checks=CLEAN_IMAGE,
        absent=(b"<svg",),
        what="a harmless SVG named .png: rasterised, never served as SVG",
    ),
    # polyglot: every variant is re-encoded, so nothing appended or embedded survives
    HostileCase(
        "polyglot",
        "gifar.gif",
        _fixed(gif_with_zip),
        checks=CLEAN_IMAGE,
        absent=(b"PK\x05\x06", b"PK\x03\x04"),
        what="a GIF with a ZIP archive appended",
    ),
    HostileCase(
        "polyglot",
        "after-eoi.jpg",
        _fixed(lambda: jpeg_with_trailer(b"<script>alert(2)</script>")),
        checks=CLEAN_IMAGE,
        absent=_SCRIPT,
        what="<script> after the JPEG EOI marker",
    ),
    HostileCase(
        "polyglot",
        "comment.jpg",
        _fixed(lambda: jpeg_with_comment(b"<script>alert(3)</script>")),
        checks=CLEAN_IMAGE,
        absent=_SCRIPT,
        what="<script> in a JPEG COM segment",
    ),
    HostileCase(
        "polyglot",
        "text-chunk.png",
        _fixed(lambda: png_with_text(b"<script>alert(4)</script>")),
        checks=(*CLEAN_IMAGE, keeps_alpha),
        absent=_SCRIPT,
        what="<script> in a transparent PNG's tEXt chunk",
    ),
    # EXIF privacy: no GPS or XMP in any variant, orientation applied before stripping
    HostileCase(
        "EXIF privacy",
        "gps.jpg",
        _fixed(lambda: samples.photo_jpeg(160, 120, seed=28, orientation=6, gps=True, xmp=True)),
        checks=(*CLEAN_IMAGE, portrait),
        absent=(samples.XMP_SENTINEL.encode(), b"http://ns.adobe.com/xap", b"Exif\x00\x00"),
        what="a JPEG with a GPS IFD, an XMP packet and orientation 6",
    ),
    HostileCase(
        "EXIF privacy",
        "gps.png",
        _fixed(png_with_private_metadata),
        checks=CLEAN_IMAGE,
        absent=(samples.XMP_SENTINEL.encode(), b"eXIf"),
        what="a PNG with eXIf (GPS) and XMP chunks",
    ),
    HostileCase(
        "EXIF privacy",
        "gps.webp",
        _fixed(webp_with_private_metadata),
        checks=CLEAN_IMAGE,
        absent=(samples.XMP_SENTINEL.encode(), b"EXIF", b"XMP "),
        what="a WebP with EXIF (GPS) and XMP chunks",
    ),
    # ffmpeg file read: sniffed container forced, file protocol only, playlists refused
    HostileCase(
        "ffmpeg file read",
        "playlist.m3u8",
        hls_playlist,
        "unsupported_type",
        what="an HLS playlist whose segment is the sentinel file",
    ),
    HostileCase(
        "ffmpeg file read",
        "list.ffconcat",
        ffconcat_script,
        "unsupported_type",
        what="an ffconcat script listing the sentinel file",
    ),
    HostileCase(
        "ffmpeg file read",
        "playlist.mp4",
        hls_playlist,
        "unsupported_type",
        what="the playlist renamed .mp4",
    ),
    HostileCase(
        "ffmpeg file read",
        "concat.mp4",
        ffconcat_script,
        "unsupported_type",
        what="the ffconcat script renamed .mp4",
    ),
    HostileCase(
        "ffmpeg file read",
        "subtitles.avi",
        avi_with_playlist,
        "unsupported_type",
        what="an AVI with the playlist in a GAB2 subtitle chunk",
    ),
    HostileCase(
        "ffmpeg file read",
        "ftyp-playlist.mp4",
        playlist_in_ftyp,
        "corrupt",
        what="the playlist behind an MP4 ftyp box: sniffs as MP4",
    ),
    HostileCase(
        "ffmpeg file read",
        "reference.mp4",
        mp4_reading_another_file,
        "corrupt",
        what="an MP4 whose pictures live in the sentinel file",
    ),
    HostileCase(
        "ffmpeg file read",
        "concat:secret.txt|clip.mp4",
        _fixed(lambda: clip(1)),
        checks=(has_variants("web.mp4", "optimized.webp"),),
        what="a real clip whose name is an FFmpeg protocol URL",
    ),
    # malformed 3D: header counts checked, parsed in a sandbox, references never opened
    HostileCase(
        "malformed 3D",
        "no-position.glb",
        _fixed(mesh_samples.glb_without_position),
        "no_geometry",
        what="a GLB primitive without POSITION",
    ),
    HostileCase(
        "malformed 3D",
        "stride.glb",
        _fixed(mesh_samples.glb_bad_stride),
        "corrupt",
        what="a byteStride smaller than one vertex",
    ),
    HostileCase(
        "malformed 3D",
        "past-end.glb",
        _fixed(mesh_samples.glb_view_past_end),
        "corrupt",
        what="a bufferView and buffer claiming 1 GB past the file's end",
    ),
    HostileCase(
        "malformed 3D",
        "minus-one.obj",
        _fixed(lambda: mesh_samples.obj_face_index(-1)),
        "corrupt",
        what="an OBJ face index -1 before any vertex",
    ),
    HostileCase(
        "malformed 3D",
        "billion.obj",
        _fixed(lambda: mesh_samples.obj_face_index(10**9)),
        "corrupt",
        what="an OBJ face index 10^9",
    ),
    HostileCase(
        "malformed 3D",
        "dense.stl",
        _fixed(lambda: mesh_samples.random_triangles_stl(FACE_CAP + 1, seed=3)),
        "too_many_faces",
        what="a real mesh one face over the cap",
    ),
    HostileCase(
        "malformed 3D",
        "claims.glb",
        _fixed(mesh_samples.glb_claiming),
        "too_many_faces",
        what="a triangle GLB whose accessor claims 50M faces",
    ),
    HostileCase(
        "malformed 3D",
        "external.gltf",
        lambda sentinel: mesh_samples.gltf_external_buffer(f"file://{sentinel}"),
        "unsafe_media",
        what="a glTF whose buffer is the sentinel file",
    ),
    HostileCase(
        "malformed 3D",
        "mtllib.obj",
        lambda sentinel: mesh_samples.obj_with_mtllib(str(sentinel)),
        checks=(has_variants("web.glb", "optimized.webp"),),
        what="an OBJ whose material library is the sentinel file",
    ),
    # PDF: PDFium in a sandbox without a form environment; page 1 only; page cap
    HostileCase(
        "PDF", "locked.pdf", _fixed(encrypted_pdf), "encrypted", what="a PDF that needs a password"
    ),
    HostileCase(
        "PDF",
        "cut.pdf",
        _fixed(pdf_samples.truncated),
        "corrupt",
        what="a PDF cut before its cross-reference table",
    ),
    HostileCase(
        "PDF",
        "script.pdf",
        _fixed(pdf_samples.javascript_on_open),
        checks=(*CLEAN_IMAGE, shows_brochure_page_one),
        absent=(b"/S /JavaScript",),
        what="an OpenAction script that would hang a viewer running it",
    ),
    HostileCase(
        "PDF",
        "pages.pdf",
        _fixed(lambda: pdf_samples.many_pages(10_000)),
        "too_many_pages",
        what="10000 pages",
    ),
    # zip / archive: archives are not an accepted type, whatever they hold or are named
    HostileCase(
        "zip / archive",
        "photos.zip",
        _fixed(nested_zip),
        "unsupported_type",
        what="a nested ZIP with a ../ entry",
    ),
    HostileCase(
        "zip / archive",
        "archive.jpg",
        _fixed(lambda: zip_archive({"../escape.jpg": _jpeg(29)})),
        "unsupported_type",
        what="a ZIP named .jpg",
    ),
]
"""Every hostile upload, in THREATS.md order."""


CONTROLS: Final[list[HostileCase]] = [
    HostileCase(
        CONTROL,
        "photo.jpg",
        _fixed(lambda: samples.photo_jpeg(320, 240, seed=31)),
        checks=(*CLEAN_IMAGE, has_variants("optimized.jpeg", "optimized.avif")),
    ),
    HostileCase(
        CONTROL,
        "alpha.png",
        _fixed(lambda: samples.alpha_png(120, 80)),
        checks=(*CLEAN_IMAGE, keeps_alpha),
    ),
    HostileCase(
        CONTROL,
        "clip.mp4",
        _fixed(lambda: clip(0)),
        checks=(has_variants("web.mp4", "optimized.webp"),),
    ),
    HostileCase(
        CONTROL,
        "brochure.pdf",
        _fixed(lambda: pdf_samples.brochure(pages=2)),
        checks=(*CLEAN_IMAGE, shows_brochure_page_one),
    ),
]
"""Ordinary uploads that share a run with the corpus and must come out ready."""
