"""SVG is vetted with defusedxml and re-serialised before librsvg sees it."""

from __future__ import annotations

import base64

import pytest

from mediamill.media import samples
from mediamill.media.errors import ValidationError
from mediamill.media.svg import sanitize_svg

PNG_1PX = samples.encoded(samples.photo(1, 1, 1), "png")


def _code(data: bytes) -> str:
    with pytest.raises(ValidationError) as caught:
        sanitize_svg(data)
    return caught.value.code


def test_benign_svg_is_reserialised_without_prolog_or_comments() -> None:
    source = samples.svg(body="<!-- note --><use xlink:href='#r'/>")
    clean = sanitize_svg(b'<?xml version="1.0"?>\n' + source.split(b"?>", 1)[1])
    assert b"<!--" not in clean
    assert b"<?xml" not in clean
    assert b"http://www.w3.org/2000/svg" in clean


def test_doctype_without_entities_is_accepted_and_dropped() -> None:
    source = (
        b'<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
        b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">'
        b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>'
    )
    assert b"DOCTYPE" not in sanitize_svg(source)


@pytest.mark.parametrize(
    "data",
    [samples.svg_billion_laughs(), samples.svg_xxe(), samples.svg_xxe("/proc/self/environ")],
    ids=["billion-laughs", "xxe-passwd", "xxe-environ"],
)
def test_entity_attacks_are_unsafe(data: bytes) -> None:
    assert _code(data) == "unsafe_svg"


@pytest.mark.parametrize(
    "body",
    [
        "<script>alert(1)</script>",
        "<script xlink:href='https://evil.example/x.js'/>",
        "<rect width='1' height='1' onclick='alert(1)'/>",
        "<image href='https://evil.example/x.png' width='1' height='1'/>",
        "<image xlink:href='file:///etc/passwd' width='1' height='1'/>",
        "<use href='other.svg#a'/>",
        "<a href='javascript:alert(1)'><rect width='1' height='1'/></a>",
        "<style>@import url(https://evil.example/x.css);</style>",
        "<style>rect { fill: url(https://evil.example/p.svg#g) }</style>",
        "<rect width='1' height='1' style='fill:u\\72l(https://evil.example/x)'/>",
        "<rect width='1' height='1' fill='url( \"file:///etc/passwd\" )'/>",
        "<image href='data:image/png;base64,PHNjcmlwdD4=' width='1' height='1'/>",
        "<image href='data:image/svg+xml;base64,PHN2Zy8+' width='1' height='1'/>",
        "<xi:include xmlns:xi='http://www.w3.org/2001/XInclude' href='/etc/passwd'/>",
    ],
)
def test_scripts_handlers_and_external_references_are_unsafe(body: str) -> None:
    assert _code(samples.svg(body=body)) == "unsafe_svg"


def test_onload_on_the_root_is_unsafe() -> None:
    assert _code(samples.svg().replace(b"<svg ", b"<svg onload='alert(1)' ", 1)) == "unsafe_svg"


def test_in_document_references_and_embedded_png_are_allowed() -> None:
    embedded = "data:image/png;base64," + base64.b64encode(PNG_1PX).decode()
    body = (
        "<defs><linearGradient id='g'><stop offset='0' stop-color='red'/></linearGradient>"
        "</defs><rect width='1' height='1' fill='url(#g)'/><use xlink:href='#g'/>"
        f"<image href='{embedded}' width='1' height='1'/>"
    )
    assert b"url(#g)" in sanitize_svg(samples.svg(body=body))


def test_deep_nesting_is_unsafe() -> None:
    assert _code(samples.svg(body="<g>" * 300 + "</g>" * 300)) == "unsafe_svg"


def test_malformed_xml_is_corrupt() -> None:
    assert _code(b"<svg xmlns='http://www.w3.org/2000/svg'><rect></svg>") == "corrupt"


def test_non_svg_root_is_unsupported() -> None:
    assert _code(b"<html xmlns='http://www.w3.org/1999/xhtml'/>") == "unsupported_type"
