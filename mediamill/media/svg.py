"""Vet an SVG before rasterising it: hostile XML, scripts and external references are refused."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final
from xml.etree.ElementTree import Element, ParseError, tostring

import defusedxml
from defusedxml.ElementTree import fromstring

from mediamill.media.errors import ValidationError

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


def sanitize_svg(data: bytes) -> bytes:
    """Parse safely, refuse anything that could run or fetch, and re-serialise what was checked."""
    try:
        root = fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except (defusedxml.DTDForbidden, defusedxml.EntitiesForbidden) as exc:
        raise ValidationError("unsafe_svg", "SVG declares XML entities") from exc
    except defusedxml.ExternalReferenceForbidden as exc:
        raise ValidationError("unsafe_svg", "SVG references an external XML resource") from exc
    except (ParseError, ValueError) as exc:
        raise ValidationError("corrupt", f"SVG is not well-formed XML: {exc}") from exc
    if root.tag not in (f"{{{SVG_NS}}}svg", "svg"):
        raise ValidationError("unsupported_type", "the XML document's root is not <svg>")
    _check_tree(root)
    return bytes(tostring(root, encoding="utf-8"))


def _check_tree(root: Element) -> None:
    stack = [(root, 1)]
    count = 0
    while stack:
        element, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH or count > MAX_ELEMENTS:
            raise ValidationError("unsafe_svg", "SVG is nested too deeply or has too many elements")
        _check_element(element)
        stack.extend((child, depth + 1) for child in element)


def _check_element(element: Element) -> None:
    namespace, name = _split(element.tag)
    if name.lower() in _FORBIDDEN_ELEMENTS or namespace == XINCLUDE_NS:
        raise ValidationError("unsafe_svg", f"SVG contains a <{name}> element")
    for key, value in element.attrib.items():
        attribute = _split(key)[1].lower()
        if attribute.startswith("on"):
            raise ValidationError("unsafe_svg", f"SVG has an event handler attribute {attribute!r}")
        if attribute in _REFERENCE_ATTRIBUTES:
            _check_reference(value)
        _check_css(value)
    if name == "style" and element.text:
        _check_css(element.text)


def _check_reference(value: str) -> None:
    """Allow in-document fragments and embedded PNG/JPEG whose bytes really are PNG/JPEG."""
    target = value.strip()
    if target.startswith("#"):
        return
    embedded = _EMBEDDED_IMAGE.fullmatch(target)
    if embedded:
        kind, payload = embedded.group(1).lower(), embedded.group(2)
        try:
            head = base64.b64decode("".join(payload.split())[:64], validate=True)
        except (binascii.Error, ValueError):
            head = b""
        if head.startswith(_EMBEDDED_MAGIC[kind]):
            return
    raise ValidationError("unsafe_svg", f"SVG references an external resource {target[:80]!r}")


def _check_css(text: str) -> None:
    unescaped = _CSS_ESCAPE.sub(_unescape, text)
    if "@import" in unescaped.lower():
        raise ValidationError("unsafe_svg", "SVG style imports an external stylesheet")
    for match in _CSS_URL.finditer(unescaped):
        _check_reference(match.group(1).strip().strip("'\"").strip())


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
