"""Generated sample uploads, benign and hostile, for the demo, tests and benchmarks."""

from __future__ import annotations

import io
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pillow_heif
import pyvips
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

ORIENTATION_TAG: Final = 0x0112
GPS_IFD_TAG: Final = 0x8825
XMP_SENTINEL: Final = "mediamill-xmp-sentinel"
XMP_NAMESPACE: Final = b"http://ns.adobe.com/xap/1.0/\x00"
QUADRANT_COLOURS: Final = ((230, 30, 30), (30, 200, 40), (40, 60, 220), (250, 250, 250))
"""Top-left, top-right, bottom-left, bottom-right colours of ``quadrants``."""


def photo(width: int, height: int, seed: int) -> pyvips.Image:
    """A lazy photo-like sRGB image: gradients, shaded shapes, texture at three scales, grain."""
    rng = np.random.default_rng(seed)
    xy = pyvips.Image.xyz(width, height)
    x, y = xy[0], xy[1]
    side = max(width, height)
    broad = pyvips.Image.perlin(width, height, cell_size=max(8, side // 5), seed=seed)
    detail = pyvips.Image.perlin(width, height, cell_size=max(4, side // 50), seed=seed + 1)
    fine = pyvips.Image.perlin(width, height, cell_size=max(2, side // 500), seed=seed + 3)
    grain = pyvips.Image.gaussnoise(width, height, sigma=5, mean=0, seed=seed + 2)
    texture = broad * 35 + detail * 14 + fine * 10 + grain
    sky = rng.uniform(90, 190, 3)
    ground = rng.uniform(30, 120, 3)
    t = y / height
    image = (t * (ground[0] - sky[0]) + sky[0] + texture).bandjoin(
        [t * (ground[c] - sky[c]) + sky[c] + texture * (1 - 0.2 * c) for c in (1, 2)]
    )
    for _ in range(7):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry = rng.uniform(0.04, 0.25) * width, rng.uniform(0.04, 0.25) * height
        dx, dy = (x - cx) / rx, (y - cy) / ry
        light = (dx * -0.5 + dy * -0.6) * 35
        colour = list(rng.uniform(50, 180, 3))
        shape = light + detail * 20 + fine * 12 + grain + colour
        image = (dx**2 + dy**2 < 1).ifthenelse(shape, image)
    return image.cast("uchar").copy(interpretation="srgb")


def photo_jpeg(
    width: int,
    height: int,
    seed: int = 0,
    orientation: int = 1,
    gps: bool = False,
    xmp: bool = False,
    *,
    quality: int = 90,
) -> bytes:
    """A photo-like JPEG, optionally with an EXIF orientation, a GPS IFD and an XMP packet."""
    data = bytes(photo(width, height, seed).jpegsave_buffer(Q=quality, keep="none"))
    return with_metadata(data, orientation=orientation, gps=gps, xmp=xmp)


def with_metadata(
    jpeg: bytes, *, orientation: int = 1, gps: bool = False, xmp: bool = False
) -> bytes:
    """Insert EXIF (orientation, GPS) and XMP segments right after a JPEG's SOI marker."""
    segments = b""
    if orientation != 1 or gps:
        exif = Image.Exif()
        exif[ORIENTATION_TAG] = orientation
        if gps:
            gps_ifd = exif.get_ifd(GPS_IFD_TAG)
            gps_ifd[1] = "N"
            gps_ifd[2] = (IFDRational(52, 1), IFDRational(22, 1), IFDRational(1234, 100))
            gps_ifd[3] = "E"
            gps_ifd[4] = (IFDRational(4, 1), IFDRational(53, 1), IFDRational(4321, 100))
        segments += _segment(0xE1, exif.tobytes())
    if xmp:
        segments += _segment(0xE1, XMP_NAMESPACE + _xmp_packet())
    return jpeg[:2] + segments + jpeg[2:]


def _xmp_packet() -> bytes:
    return (
        '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" '
        'exif:GPSLatitude="52,22.2N" exif:GPSLongitude="4,53.7E" '
        f'exif:UserComment="{XMP_SENTINEL}"/>'
        '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def quadrants(width: int, height: int) -> npt.NDArray[np.uint8]:
    """An upright (height, width, 3) image of four colours, to check orientation by pixel."""
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    top, left = height // 2, width // 2
    pixels[:top, :left], pixels[:top, left:] = QUADRANT_COLOURS[0], QUADRANT_COLOURS[1]
    pixels[top:, :left], pixels[top:, left:] = QUADRANT_COLOURS[2], QUADRANT_COLOURS[3]
    return pixels


def stored_for_orientation(
    upright: npt.NDArray[np.uint8], orientation: int
) -> npt.NDArray[np.uint8]:
    """The pixels a camera stores so that applying EXIF ``orientation`` shows ``upright``."""
    undo = {
        1: lambda a: a,
        2: np.fliplr,
        3: lambda a: np.rot90(a, 2),
        4: np.flipud,
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, 1),
        7: lambda a: np.rot90(a.swapaxes(0, 1), 2),
        8: lambda a: np.rot90(a, -1),
    }[orientation]
    return np.ascontiguousarray(undo(upright))


def oriented_jpeg(width: int, height: int, orientation: int) -> bytes:
    """A JPEG that shows ``quadrants(width, height)`` once its EXIF orientation is applied."""
    stored = stored_for_orientation(quadrants(width, height), orientation)
    data = bytes(pyvips.Image.new_from_array(stored).jpegsave_buffer(Q=95, keep="none"))
    return with_metadata(data, orientation=orientation)


def alpha_png(width: int, height: int) -> bytes:
    """An RGBA PNG: an opaque red disc on a fully transparent background."""
    xy = pyvips.Image.xyz(width, height)
    radius = min(width, height) / 2
    inside = ((xy[0] - width / 2) ** 2 + (xy[1] - height / 2) ** 2) < radius**2
    alpha = inside.ifthenelse(255, 0)
    image = pyvips.Image.black(width, height).new_from_image([220, 20, 20]).bandjoin(alpha)
    return bytes(image.cast("uchar").copy(interpretation="srgb").pngsave_buffer(keep="none"))


def png16(width: int, height: int) -> bytes:
    """A 16-bit RGB PNG gradient."""
    xy = pyvips.Image.xyz(width, height)
    red = xy[0] * (65535 / max(1, width - 1))
    green = xy[1] * (65535 / max(1, height - 1))
    image = red.bandjoin([green, 30000]).cast("ushort").copy(interpretation="rgb16")
    return bytes(image.pngsave_buffer(bitdepth=16, keep="none"))


def grey_png(width: int, height: int) -> bytes:
    """A single-channel greyscale PNG."""
    image = (pyvips.Image.xyz(width, height)[0] * (255 / max(1, width - 1))).cast("uchar")
    return bytes(image.copy(interpretation="b-w").pngsave_buffer(keep="none"))


def cmyk_jpeg(width: int, height: int) -> bytes:
    """A CMYK JPEG (Adobe APP14), as print workflows export them."""
    pixels = np.zeros((height, width, 4), dtype=np.uint8)
    pixels[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    pixels[..., 1] = 40
    out = io.BytesIO()
    Image.fromarray(pixels, mode="CMYK").save(out, format="JPEG", quality=90)
    return out.getvalue()


def encoded(image: pyvips.Image, image_format: str) -> bytes:
    """``image`` saved as png, webp, avif, tiff or gif, with no metadata."""
    saver = {
        "png": "pngsave_buffer",
        "webp": "webpsave_buffer",
        "avif": "heifsave_buffer",
        "tiff": "tiffsave_buffer",
        "gif": "gifsave_buffer",
    }[image_format]
    options = {"compression": "av1"} if image_format == "avif" else {}
    return bytes(getattr(image, saver)(keep="none", **options))


def heic(width: int, height: int, seed: int = 0) -> bytes:
    """A HEIC (HEVC) photo encoded with pillow-heif."""
    pixels = np.asarray(photo(width, height, seed).numpy(), dtype=np.uint8)
    out = io.BytesIO()
    pillow_heif.from_pillow(Image.fromarray(pixels)).save(out, quality=85)
    return out.getvalue()


def animated(width: int, height: int, frames: int, image_format: str = "gif") -> bytes:
    """An animated GIF or WebP; frame i is a flat colour with a square, frame 0 pure red."""
    colours = [(255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 255, 0)]
    pages = []
    for i in range(frames):
        colour = colours[i % len(colours)]
        page = pyvips.Image.black(width, height).new_from_image(list(colour))
        side = max(1, min(width, height) // 4)
        page = page.draw_rect([255, 255, 255], (i * 3) % max(1, width - side), 0, side, side)
        pages.append(page.cast("uchar"))
    strip = pyvips.Image.arrayjoin(pages, across=1).copy(interpretation="srgb")
    strip.set_type(pyvips.GValue.gint_type, "page-height", height)
    strip.set_type(pyvips.GValue.array_int_type, "delay", [100] * frames)
    return encoded(strip, image_format)


def animated_gif(width: int, height: int, frames: int) -> bytes:
    """An animated GIF whose first frame is red."""
    return animated(width, height, frames, "gif")


def frame_bomb_gif(width: int = 4000, height: int = 4000, frames: int = 2000) -> bytes:
    """A few-KB GIF whose header promises ``frames`` full-canvas frames (each holds one pixel)."""
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00" * 2
    control = b"\x21\xf9\x04\x00\x01\x00\x00\x00"
    descriptor = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
    one_pixel = b"\x02\x02\x44\x01\x00"
    return screen + (control + descriptor + one_pixel) * frames + b"\x3b"


def pixel_bomb_png(side: int = 14_000) -> bytes:
    """A valid one-colour 1-bit PNG, ``side`` pixels square: a few KB, hundreds of MB decoded."""
    row = b"\x00" * (1 + (side + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND")


def _chunk(kind: bytes, payload: bytes = b"") -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def huge_jpeg_header(width: int = 60_000, height: int = 60_000) -> bytes:
    """A small real JPEG whose SOF marker is patched to claim ``width`` x ``height``."""
    data = bytearray(photo_jpeg(16, 16, seed=1))
    at = next(i for i in range(2, len(data) - 1) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC2))
    struct.pack_into(">HH", data, at + 5, height, width)
    return bytes(data)


def corrupt_jpeg() -> bytes:
    """A JPEG with its second half cut off."""
    data = photo_jpeg(256, 192, seed=2)
    return data[: len(data) // 2]


def bad_crc_png() -> bytes:
    """A PNG whose IDAT checksum is wrong."""
    data = bytearray(encoded(photo(64, 48, seed=3), "png"))
    at = data.index(b"IDAT")
    length = struct.unpack(">I", data[at - 4 : at])[0]
    data[at + 4 + length] ^= 0xFF
    return bytes(data)


def png_signature_garbage() -> bytes:
    """The PNG signature followed by random bytes."""
    return b"\x89PNG\r\n\x1a\n" + np.random.default_rng(4).bytes(2048)


def html_as_jpg() -> bytes:
    """An HTML page with a script, as uploaded under a .jpg name."""
    return b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"


def php_as_jpg() -> bytes:
    """A PHP web shell, as uploaded under a .jpg name."""
    return b"<?php system($_GET['cmd']); ?>"


def gif_with_zip() -> bytes:
    """A GIF with a ZIP archive appended (a GIFAR-style polyglot)."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("evil.class", b"\xca\xfe\xba\xbe" + b"\x00" * 64)
    return animated_gif(48, 32, 1) + archive.getvalue()


def jpeg_with_script() -> bytes:
    """A JPEG carrying ``<script>`` in a COM segment and again after its EOI marker."""
    data = photo_jpeg(96, 64, seed=5)
    comment = _segment(0xFE, b"<script>alert(1)</script>")
    return data[:2] + comment + data[2:] + b"<script>alert(2)</script>"


def fits() -> bytes:
    """A minimal FITS image, a format libvips must not be allowed to open."""
    cards = [
        "SIMPLE  =                    T",
        "BITPIX  =                    8",
        "NAXIS   =                    2",
        "NAXIS1  =                    4",
        "NAXIS2  =                    4",
        "END",
    ]
    header = "".join(card.ljust(80) for card in cards).ljust(2880).encode()
    return header + bytes(16).ljust(2880, b"\x00")


def ppm() -> bytes:
    """A binary PPM (netpbm) image."""
    return b"P6\n4 4\n255\n" + bytes(range(48))


def matlab() -> bytes:
    """The header of a MATLAB 5 .mat file."""
    return b"MATLAB 5.0 MAT-file, Platform: GLNXA64".ljust(116) + bytes(8) + b"\x00\x01IM"


def csv_matrix() -> bytes:
    """A CSV body libvips' csvload would turn into an image."""
    return b"1,2,3\n4,5,6\n7,8,9\n"


def vips_native() -> bytes:
    """A libvips native .v file."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sample.v"
        pyvips.Image.black(4, 4).vipssave(str(path))
        return path.read_bytes()


def mvg() -> bytes:
    """An ImageTragick-style MVG payload."""
    return (
        b"push graphic-context\nviewbox 0 0 640 480\n"
        b"fill 'url(https://example.com/image.jpg\"|ls \"-la)'\npop graphic-context\n"
    )


def svg(width: int = 40, height: int = 20, body: str = "") -> bytes:
    """A small SVG: red left half, green right half, plus ``body``."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<rect width="{width // 2}" height="{height}" fill="#ff0000"/>'
        f'<rect x="{width // 2}" width="{width - width // 2}" height="{height}" fill="#00ff00"/>'
        f"{body}</svg>"
    ).encode()


def svg_billion_laughs() -> bytes:
    """The classic entity-expansion bomb, inside an SVG."""
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    return (
        f'<?xml version="1.0"?><!DOCTYPE svg [{entities}]>'
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        "<text>&lol9;</text></svg>"
    ).encode()


def svg_xxe(path: str = "/etc/passwd") -> bytes:
    """An SVG that tries to pull a local file in through an external entity."""
    return (
        f'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY xxe SYSTEM "file://{path}">]>'
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        "<text>&xxe;</text></svg>"
    ).encode()
