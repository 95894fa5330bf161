"""Generated PDFs, benign and hostile, for the demo and the document tests.

Every sample is written byte by byte here, so a test knows exactly what each file holds: where
page 1 draws which colour, how many pages there are, what the title says. Encrypted PDFs need a
real encryption routine and are made in the tests with pypdf, a development dependency.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from typing import Final

import numpy as np

RGB = tuple[int, int, int]

A4: Final = (595.0, 842.0)
"""Width and height of an A4 page in points."""

TITLE: Final = "Spring catalogue 2025"
RED: Final = (230, 30, 30)
GREEN: Final = (30, 200, 40)
BLUE: Final = (40, 60, 220)
GREY: Final = (128, 128, 128)
LATER_PAGE_COLOUR: Final = (250, 220, 0)
"""Fills every page after the first, so a preview showing it rendered the wrong page."""

PICTURE_BLUE: Final = 160
"""The constant blue of the gradient picture; its red grows rightwards and its green downwards."""


@dataclass(frozen=True)
class Rect:
    """A rectangle on a page, in points from the page's bottom-left corner, as PDF draws it."""

    left: float
    bottom: float
    right: float
    top: float

    def point(
        self, across: float, down: float, page: tuple[float, float] = A4
    ) -> tuple[float, float]:
        """Where a point inside the rect falls on the rendered page, both from top-left corners.

        ``across`` and ``down`` are 0..1 of the rect; the result is fractions of the page.
        """
        x = self.left + across * (self.right - self.left)
        y = self.top - down * (self.top - self.bottom)
        return x / page[0], 1 - y / page[1]


BROCHURE_BOXES: Final[tuple[tuple[RGB, Rect], ...]] = (
    (RED, Rect(40, 600, 280, 800)),
    (BLUE, Rect(315, 600, 555, 800)),
    (GREEN, Rect(40, 60, 555, 160)),
)
"""The solid boxes page 1 of ``brochure`` draws, and their colours."""

BROCHURE_PICTURE: Final = Rect(40, 200, 555, 560)
"""Where page 1 of ``brochure`` places its gradient picture."""


def brochure(pages: int = 3, title: str | None = TITLE, javascript: str | None = None) -> bytes:
    """An A4 catalogue whose page 1 has a heading, ``BROCHURE_BOXES`` and a gradient picture.

    Later pages are filled with ``LATER_PAGE_COLOUR``. ``javascript``, if given, is an
    OpenAction script: a viewer that runs scripts would run it when the file opens.
    """
    if pages < 1:
        raise ValueError("a brochure has at least one page")
    width, height = A4
    writer = _Writer()
    catalog = writer.reserve()
    tree = writer.reserve()
    font = writer.add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    picture = writer.add(_gradient_picture(256, 160))
    first = writer.add(_stream(_first_page_content(title or "Untitled")))
    later = writer.add(_stream(_fill(LATER_PAGE_COLOUR, Rect(0, 0, width, height))))
    resources = f"<< /Font << /F1 {font} 0 R >> /XObject << /Im1 {picture} 0 R >> >>"
    kids = [
        writer.add(
            f"<< /Type /Page /Parent {tree} 0 R /Contents {first if n == 0 else later} 0 R >>"
        )
        for n in range(pages)
    ]
    writer.set(
        tree,
        f"<< /Type /Pages /Kids [{_refs(kids)}] /Count {pages} "
        f"/MediaBox [0 0 {width:g} {height:g}] /Resources {resources} >>",
    )
    extra = ""
    if javascript is not None:
        action = writer.add(f"<< /S /JavaScript /JS {_text_string(javascript)} >>")
        names = writer.add(f"<< /Names [(open) {action} 0 R] >>")
        extra = f" /OpenAction {action} 0 R /Names << /JavaScript {names} 0 R >>"
    writer.set(catalog, f"<< /Type /Catalog /Pages {tree} 0 R{extra} >>")
    info = None if title is None else writer.add(f"<< /Title {_text_string(title)} >>")
    return writer.finish(catalog, info)


def javascript_on_open(script: str = "app.alert('hello'); while (true) {}") -> bytes:
    """``brochure`` with a script run on open; the default one would hang a viewer that ran it."""
    return brochure(javascript=script)


def many_pages(count: int = 10_000) -> bytes:
    """``count`` pages that share one content stream, so even 10000 of them stay small."""
    writer = _Writer()
    catalog = writer.reserve()
    tree = writer.reserve()
    content = writer.add(_stream(_fill(RED, Rect(100, 100, 400, 400))))
    kids = [
        writer.add(f"<</Type/Page/Parent {tree} 0 R/Contents {content} 0 R>>") for _ in range(count)
    ]
    writer.set(
        tree,
        f"<< /Type /Pages /Kids [{_refs(kids)}] /Count {count} /MediaBox [0 0 500 500] >>",
    )
    writer.set(catalog, f"<< /Type /Catalog /Pages {tree} 0 R >>")
    return writer.finish(catalog, writer.add(f"<< /Title ({count} pages) >>"))


def truncated(fraction: float = 0.6) -> bytes:
    """``brochure`` cut short: the cross-reference table and the last objects are missing."""
    whole = brochure()
    return whole[: int(len(whole) * fraction)]


def huge_page(side: float = 14_400) -> bytes:
    """One ``side`` x ``side`` point page (14400 pt is 5 m), red on the left, blue on the right."""
    content = _fill(RED, Rect(0, 0, side / 2, side)) + _fill(BLUE, Rect(side / 2, 0, side, side))
    return _single_page(f"[0 0 {side:g} {side:g}]", content)


def page_of_size(width: float, height: float) -> bytes:
    """One page of any size filled with grey, for sizes at the edges (a 1 pt strip, say)."""
    return _single_page(f"[0 0 {width:g} {height:g}]", _fill(GREY, Rect(0, 0, width, height)))


def no_pages() -> bytes:
    """A well-formed PDF whose page tree is empty."""
    writer = _Writer()
    catalog = writer.reserve()
    tree = writer.add(b"<< /Type /Pages /Kids [] /Count 0 >>")
    writer.set(catalog, f"<< /Type /Catalog /Pages {tree} 0 R >>")
    return writer.finish(catalog, None)


def garbage(size: int = 20_000, seed: int = 0) -> bytes:
    """The PDF signature followed by random bytes: sniffs as a PDF, parses as nothing."""
    return b"%PDF-1.7\n" + random.Random(seed).randbytes(size)


def render_bomb(fills: int = 2_000_000) -> bytes:
    """A small file whose one page paints the whole page ``fills`` times.

    Its content stream compresses about 400:1, so the default's 90 KB ask a renderer for two
    million full-page fills: slow to draw, and memory-hungry while the page's objects are parsed.
    """
    operation = b"0 0 1000 1000 re f\n"
    return _single_page("[0 0 1000 1000]", b"1 0 0 rg\n" + operation * fills)


def _single_page(media_box: str, content: bytes) -> bytes:
    writer = _Writer()
    catalog = writer.reserve()
    tree = writer.reserve()
    page = writer.add(
        f"<< /Type /Page /Parent {tree} 0 R /Contents {writer.add(_stream(content))} 0 R >>"
    )
    writer.set(tree, f"<< /Type /Pages /Kids [{page} 0 R] /Count 1 /MediaBox {media_box} >>")
    writer.set(catalog, f"<< /Type /Catalog /Pages {tree} 0 R >>")
    return writer.finish(catalog, None)


def _first_page_content(heading: str) -> bytes:
    parts = [_fill(colour, rect) for colour, rect in BROCHURE_BOXES]
    p = BROCHURE_PICTURE
    placement = f"{p.right - p.left:g} 0 0 {p.top - p.bottom:g} {p.left:g} {p.bottom:g} cm"
    parts.append(f"q {placement} /Im1 Do Q\n".encode())
    parts.append(f"BT 0 g /F1 20 Tf 40 815 Td {_literal(heading)} Tj ET\n".encode())
    return b"".join(parts)


def _fill(colour: RGB, rect: Rect) -> bytes:
    r, g, b = (c / 255 for c in colour)
    size = f"{rect.right - rect.left:g} {rect.top - rect.bottom:g}"
    return f"{r:.4f} {g:.4f} {b:.4f} rg {rect.left:g} {rect.bottom:g} {size} re f\n".encode()


def _gradient_picture(width: int, height: int) -> bytes:
    """An RGB image XObject: red rises left to right, green top to bottom, blue is constant."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, axis=0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, axis=1)
    blue = np.full((height, width), PICTURE_BLUE)
    rgb = np.stack([x, y, blue], axis=-1).round().astype(np.uint8)
    return _stream(
        rgb.tobytes(),
        f"/Type /XObject /Subtype /Image /Width {width} /Height {height} "
        "/ColorSpace /DeviceRGB /BitsPerComponent 8",
    )


def _stream(data: bytes, entries: str = "") -> bytes:
    packed = zlib.compress(data, 9)
    head = f"<< /Length {len(packed)} /Filter /FlateDecode {entries} >>\nstream\n".encode()
    return head + packed + b"\nendstream"


def _literal(text: str) -> str:
    """A PDF literal string of printable ASCII text."""
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return f"({escaped.encode('ascii', 'replace').decode()})"


def _text_string(text: str) -> str:
    """Any Unicode text as a PDF text string: UTF-16BE with a byte-order mark, in hex."""
    return "<FEFF" + text.encode("utf-16-be").hex().upper() + ">"


def _refs(numbers: list[int]) -> str:
    return " ".join(f"{n} 0 R" for n in numbers)


class _Writer:
    """Numbers objects, then writes them with a cross-reference table and a trailer."""

    def __init__(self) -> None:
        self._bodies: list[bytes | None] = []

    def reserve(self) -> int:
        """A number for an object whose body refers to objects made after it."""
        self._bodies.append(None)
        return len(self._bodies)

    def set(self, number: int, body: str | bytes) -> None:
        """Give a reserved object its body."""
        self._bodies[number - 1] = body.encode() if isinstance(body, str) else body

    def add(self, body: str | bytes) -> int:
        """A new object; its number for references."""
        number = self.reserve()
        self.set(number, body)
        return number

    def finish(self, root: int, info: int | None) -> bytes:
        """The whole file."""
        out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for number, body in enumerate(self._bodies, start=1):
            if body is None:
                raise ValueError(f"object {number} was reserved but never set")
            offsets.append(len(out))
            out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
        xref = len(out)
        out += f"xref\n0 {len(offsets) + 1}\n0000000000 65535 f \n".encode()
        out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
        info_entry = "" if info is None else f" /Info {info} 0 R"
        out += (
            f"trailer\n<< /Size {len(offsets) + 1} /Root {root} 0 R{info_entry} >>\n"
            f"startxref\n{xref}\n%%EOF\n"
        ).encode()
        return bytes(out)
