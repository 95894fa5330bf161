"""Preview PDFs: page 1 rasterised by PDFium in a sandbox, then made into image variants.

PDF parsers are large and hostile files are cheap to make, so PDFium only ever runs in a
throwaway process with a wall-clock and a memory limit (``sandbox.run_isolated``). It opens
the file without a form environment, so no JavaScript or XFA runs, reads the facts we keep,
and draws page 1 on white at a bounded size. The parent then treats that picture like any
uploaded image: ``render_image`` makes the variants and the ThumbHash placeholder.
"""

from __future__ import annotations

import ctypes
import io
import math
import os
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pypdfium2.raw as pdfium
from PIL import Image

from mediamill.media.document_specs import DocumentLimits
from mediamill.media.errors import ValidationError
from mediamill.media.images import render_image
from mediamill.media.limits import ImageLimits, check_file_size
from mediamill.media.rendition import Rendition, VariantId
from mediamill.media.sandbox import SandboxLimits, run_isolated
from mediamill.media.sniff import SNIFF_BYTES, sniff
from mediamill.media.specs import VariantSpec

DOCUMENT_FORMATS: Final = frozenset({"pdf"})
"""Document formats we render; everything else is refused before any parser sees it."""

MAX_TITLE_CHARS: Final = 200
"""Longest title kept; PDF metadata is free text of any length."""

_TITLE_SCAN_CHARS: Final = 4 * MAX_TITLE_CHARS
"""Only this much of a raw title is cleaned, so a megabyte-long one costs nothing."""

_DROPPED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs"})
"""Control, format (bidi overrides, zero-width) and lone-surrogate characters."""

_WHITE: Final = 0xFFFFFFFF


@dataclass(frozen=True)
class _FirstPage:
    """What the sandboxed PDFium run hands back: the document's facts and page 1 as a PNG."""

    pages: int
    title: str
    width_pt: float
    height_pt: float
    png: bytes
    restricted: bool


def render_document(
    path: Path,
    document_format: str,
    image_specs: Sequence[VariantSpec],
    image_limits: ImageLimits,
    limits: DocumentLimits,
    *,
    only: Collection[VariantId] | None = None,
) -> Rendition:
    """Preview page 1 of a document as image variants (or those in ``only``).

    Raises ``ValidationError`` for anything wrong with the file itself: the wrong type, over a
    cap, encrypted, unreadable, or too slow or too big to open within ``limits``.
    """
    if document_format not in DOCUMENT_FORMATS:
        raise ValidationError(
            "unsupported_type", f"{document_format!r} is not a supported document format"
        )
    _check_file(path, limits)
    page = run_isolated(
        _read_first_page,
        path,
        limits.max_pages,
        limits.max_render_side,
        limits=SandboxLimits(seconds=limits.seconds, memory_bytes=limits.memory_bytes),
        what="the PDF",
    )
    image = render_image(page.png, image_specs, image_limits, only=only)
    return Rendition(
        kind="document",
        format=document_format,
        width=image.info.width,
        height=image.info.height,
        variants=image.variants,
        placeholder=image.placeholder,
        has_alpha=False,
        metadata={
            "pages": page.pages,
            "title": page.title,
            "page_width_pt": page.width_pt,
            "page_height_pt": page.height_pt,
            "restricted": page.restricted,
        },
    )


def _check_file(path: Path, limits: DocumentLimits) -> None:
    """Size and type from the bytes themselves, before a parser is started."""
    check_file_size(path, limits.max_bytes, "document")
    with path.open("rb") as file:
        head = file.read(SNIFF_BYTES)
    sniffed = sniff(head)
    if sniffed.format not in DOCUMENT_FORMATS:
        raise ValidationError(
            "unsupported_type", f"the content is a {sniffed.format} {sniffed.kind}, not a PDF"
        )


def _read_first_page(path: Path, max_pages: int, max_render_side: int) -> _FirstPage:
    """Open a PDF with PDFium and draw page 1; runs inside ``run_isolated``."""
    document = pdfium.FPDF_LoadDocument(os.fsencode(path), None)
    if not document:
        raise _load_error(pdfium.FPDF_GetLastError())
    try:
        return _first_page(document, max_pages, max_render_side)
    finally:
        pdfium.FPDF_CloseDocument(document)


def _load_error(code: int) -> ValidationError:
    if code in (pdfium.FPDF_ERR_PASSWORD, pdfium.FPDF_ERR_SECURITY):
        return ValidationError("encrypted", "the PDF is password-protected")
    return ValidationError("corrupt", f"the PDF cannot be read (PDFium error {code})")


def _first_page(document: Any, max_pages: int, max_render_side: int) -> _FirstPage:
    # Opened without a password, so only an owner password (usage restrictions) is set:
    # common on datasheets and invoices, and drawing page 1 of one is as safe as any other.
    restricted = pdfium.FPDF_GetSecurityHandlerRevision(document) != -1
    pages = int(pdfium.FPDF_GetPageCount(document))
    if pages < 1:
        raise ValidationError("empty", "the PDF has no pages")
    if pages > max_pages:
        raise ValidationError("too_many_pages", f"{pages} pages is over the {max_pages}-page cap")
    title = _clean_title(_metadata_text(document, "Title"))
    page = pdfium.FPDF_LoadPage(document, 0)
    if not page:
        raise ValidationError("corrupt", "page 1 of the PDF cannot be read")
    try:
        width_pt = float(pdfium.FPDF_GetPageWidthF(page))
        height_pt = float(pdfium.FPDF_GetPageHeightF(page))
        width, height = _pixel_size(width_pt, height_pt, max_render_side)
        png = _rasterise(page, width, height)
    finally:
        pdfium.FPDF_ClosePage(page)
    return _FirstPage(pages, title, round(width_pt, 3), round(height_pt, 3), png, restricted)


def _metadata_text(document: Any, key: str) -> str:
    """A document-information entry; undecodable UTF-16 becomes U+FFFD instead of an error."""
    name = key.encode("ascii")
    size = int(pdfium.FPDF_GetMetaText(document, name, None, 0))
    if size <= 2:
        return ""
    buffer = ctypes.create_string_buffer(size)
    pdfium.FPDF_GetMetaText(document, name, buffer, size)
    return buffer.raw[: size - 2].decode("utf-16-le", errors="replace")


def _clean_title(raw: str) -> str:
    """Printable text on one line, at most ``MAX_TITLE_CHARS`` long, safe to show anywhere."""
    text = unicodedata.normalize("NFC", raw[:_TITLE_SCAN_CHARS])
    kept = (
        " " if char.isspace() else char
        for char in text
        if char.isspace() or unicodedata.category(char) not in _DROPPED_CATEGORIES
    )
    return " ".join("".join(kept).split())[:MAX_TITLE_CHARS].rstrip()


def _pixel_size(width_pt: float, height_pt: float, longest: int) -> tuple[int, int]:
    """The page's aspect ratio with its longest side at ``longest`` pixels."""
    if not (math.isfinite(width_pt) and math.isfinite(height_pt)):
        raise ValidationError("corrupt", "page 1 of the PDF has no valid size")
    if width_pt <= 0 or height_pt <= 0:
        raise ValidationError("corrupt", f"page 1 of the PDF is {width_pt}x{height_pt} pt")
    scale = longest / max(width_pt, height_pt)
    return (
        min(longest, max(1, round(width_pt * scale))),
        min(longest, max(1, round(height_pt * scale))),
    )


def _rasterise(page: Any, width: int, height: int) -> bytes:
    """Page 1 on white, annotations' appearances included, as an RGB PNG."""
    stride = width * 3
    buffer = (ctypes.c_ubyte * (stride * height))()
    bitmap = pdfium.FPDFBitmap_CreateEx(width, height, pdfium.FPDFBitmap_BGR, buffer, stride)
    if not bitmap:
        raise MemoryError("PDFium could not make the page bitmap")
    try:
        pdfium.FPDFBitmap_FillRect(bitmap, 0, 0, width, height, _WHITE)
        pdfium.FPDF_RenderPageBitmap(bitmap, page, 0, 0, width, height, 0, pdfium.FPDF_ANNOT)
    finally:
        pdfium.FPDFBitmap_Destroy(bitmap)
    image = Image.frombytes("RGB", (width, height), bytes(buffer), "raw", "BGR", stride, 1)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()
