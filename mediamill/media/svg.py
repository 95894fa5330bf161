"""Vet an SVG before rasterising it: hostile XML, scripts and external references are refused."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Final
from xml.etree.ElementTree import Element, ParseError, tostring

import defusedxml
from defusedxml.ElementTree import fromstring

from mediamill.media.errors import ValidationError
from mediamill.media.limits import ImageLimits

SVG_NS: Final = "http://www.w3.org/2000/svg"
XINCLUDE_NS: Final = "http://www.w3.org/2001/XInclude"
MAX_DEPTH: Final = 256
MAX_ELEMENTS: Final = 200_000
_FORBIDDEN_ELEMENTS: Final = frozenset({"script", "handler", "listener"})
_REFERENCE_ATTRIBUTES: Final = frozenset({"href", "src"})
_EMBEDDED_IMAGE: Final = re.compile(r"data:image/(png|jpeg);base64,([A-Za-z0-9+/=\s]*)", re.I)
_EMBEDDED_MAGIC: Final = {"png": b"\x89PNG\r\n\x1a\n", "jpeg": b"\xff\xd8\xff"}
_CSS_URL: Final = re.compile(r"url\(([^)]*)", re.I)
_CSS_ESCAPE: Final = re.compile(r"\\([0-9a-fA-F]{1,6})\s?|\\(.)", re.S)
_JPEG_FRAMES: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
"""SOF markers: the segments of a JPEG that hold its size (DHT, JPG and DAC excepted)."""


@dataclass
class _Embedded:
    """The PNG and JPEG images an SVG embeds, which librsvg decodes at their own full size.

    The SVG's own width and height say nothing about them: a 10x10 drawing can embed a
    14000x14000 PNG of a few KB that decodes to hundreds of MB. Each one's header is read
    and all of them together are held to the pixel caps of an uploaded image.
    """

    limits: ImageLimits
    pixels: int = 0

    def add(self, kind: str, data: bytes) -> None:
        size = _png_size(data) if kind == "png" else _jpeg_size(data)
        if size is None:
            raise ValidationError("unsafe_svg", f"SVG embeds a {kind.upper()} of unknown size")
        width, height = size
        if max(width, height) > self.limits.max_side:
            raise ValidationError(
                "too_many_pixels",
                f"SVG embeds a {width}x{height} {kind.upper()}, "
                f"a side over the {self.limits.max_side}-pixel cap",
            )
        self.pixels += width * height
        if self.pixels > self.limits.max_pixels:
            raise ValidationError(
                "too_many_pixels",
                f"SVG embeds images of {self.pixels} pixels in all, "
                f"over the {self.limits.max_pixels} cap",
            )


def sanitize_svg(data: bytes, limits: ImageLimits | None = None) -> bytes:
    """Parse safely, refuse anything that could run or fetch, and re-serialise what was checked.

    ``limits`` (the defaults if not given) cap the images the SVG embeds, as if uploaded.
    """
    try:
        root = fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except (defusedxml.DTDForbidden, defusedxml.EntitiesForbidden) as exc:
        raise ValidationError("unsafe_svg", "SVG declares XML entities") from exc
    except defusedxml.ExternalReferenceForbidden as exc:
        raise ValidationError("unsafe_svg", "SVG references an external XML resource") from exc
    except (ParseError, ValueError) as exc:
        raise ValidationError("corrupt", f"SVG is not well-formed XML: {exc}") from exc
    except LookupError as exc:
        # The XML declaration names an encoding Python has no text codec for ("UTF-9", "hex").
        raise ValidationError("corrupt", f"SVG declares an unknown encoding: {exc}") from exc
    if root.tag not in (f"{{{SVG_NS}}}svg", "svg"):
        raise ValidationError("unsupported_type", "the XML document's root is not <svg>")
    _check_tree(root, _Embedded(limits or ImageLimits()))
    _check_instances(root)
    return bytes(tostring(root, encoding="utf-8"))


def _check_tree(root: Element, embedded: _Embedded) -> None:
    stack = [(root, 1)]
    count = 0
    while stack:
        element, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH or count > MAX_ELEMENTS:
            raise ValidationError("unsafe_svg", "SVG is nested too deeply or has too many elements")
        _check_element(element, embedded)
        stack.extend((child, depth + 1) for child in element)


def _check_instances(root: Element) -> None:
    """Refuse a ``<use>`` reference loop, or more than ``MAX_ELEMENTS`` elements once drawn.

    A ``<use>`` draws a copy of its target, and the target may hold ``<use>`` elements of
    its own: ten nested groups of ten uses each are a few hundred bytes that librsvg spends
    many seconds expanding, the billion laughs of SVG without a single entity. The count
    here is what a render instantiates, each element with its children and the targets of
    its ``<use>`` references, every subtree counted once.
    """
    by_id: dict[str, Element] = {}
    for element in root.iter():
        ident = element.get("id")
        if ident is not None:
            by_id.setdefault(ident, element)
    drawn: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Element, bool]] = [(root, False)]
    while stack:
        element, children_done = stack.pop()
        key = id(element)
        if children_done:
            on_path.discard(key)
            drawn[key] = 1 + sum(drawn[id(part)] for part in _instantiated(element, by_id))
            if drawn[key] > MAX_ELEMENTS:
                raise ValidationError(
                    "unsafe_svg", f"SVG <use> references draw over {MAX_ELEMENTS} elements"
                )
            continue
        if key in drawn:
            continue
        on_path.add(key)
        stack.append((element, True))
        for part in _instantiated(element, by_id):
            if id(part) in on_path:
                raise ValidationError("unsafe_svg", "SVG <use> references form a loop")
            if id(part) not in drawn:
                stack.append((part, False))


def _instantiated(element: Element, by_id: dict[str, Element]) -> list[Element]:
    """What drawing ``element`` draws besides itself: its children, and a ``<use>``'s target."""
    parts = list(element)
    if _split(element.tag)[1] == "use":
        for key, value in element.attrib.items():
            target = value.strip()
            if _split(key)[1] == "href" and target.startswith("#") and target[1:] in by_id:
                parts.append(by_id[target[1:]])
    return parts


def _check_element(element: Element, embedded: _Embedded) -> None:
    namespace, name = _split(element.tag)
    if name.lower() in _FORBIDDEN_ELEMENTS or namespace == XINCLUDE_NS:
        raise ValidationError("unsafe_svg", f"SVG contains a <{name}> element")
    for key, value in element.attrib.items():
        attribute = _split(key)[1].lower()
        if attribute.startswith("on"):
            raise ValidationError("unsafe_svg", f"SVG has an event handler attribute {attribute!r}")
        if attribute in _REFERENCE_ATTRIBUTES:
            _check_reference(value, embedded)
        _check_css(value, embedded)
    if name == "style" and element.text:
        _check_css(element.text, embedded)


def _check_reference(value: str, embedded: _Embedded) -> None:
    """Allow in-document fragments and embedded PNG/JPEG whose bytes really are PNG/JPEG."""
    target = value.strip()
    if target.startswith("#"):
        return
    data_uri = _EMBEDDED_IMAGE.fullmatch(target)
    if data_uri:
        kind, payload = data_uri.group(1).lower(), data_uri.group(2)
        try:
            image = base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError):
            image = b""
        if image.startswith(_EMBEDDED_MAGIC[kind]):
            embedded.add(kind, image)
            return
    raise ValidationError("unsafe_svg", f"SVG references an external resource {target[:80]!r}")


def _check_css(text: str, embedded: _Embedded) -> None:
    unescaped = _CSS_ESCAPE.sub(_unescape, text)
    if "@import" in unescaped.lower():
        raise ValidationError("unsafe_svg", "SVG style imports an external stylesheet")
    for match in _CSS_URL.finditer(unescaped):
        _check_reference(match.group(1).strip().strip("'\"").strip(), embedded)


def _png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk, which must come first."""
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a JPEG's frame header, walking the segments before it."""
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            at += 2
        elif marker in (0xD9, 0xDA):  # end of image, or scan data, before any frame header
            return None
        elif marker in _JPEG_FRAMES:
            if at + 9 > len(data):
                return None
            return int.from_bytes(data[at + 7 : at + 9], "big"), int.from_bytes(
                data[at + 5 : at + 7], "big"
            )
        else:
            at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return None


def _unescape(match: re.Match[str]) -> str:
    if match.group(1):
        code = int(match.group(1), 16)
        return chr(code) if 0 < code <= 0x10FFFF else "\ufffd"
    return match.group(2)


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return "", tag
