"""<picture> markup: modern sources first, an escaped <img> fallback last."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from mediamill.media.picture import PictureSource, picture_html


def _variants(fallback: str = "jpeg") -> list[PictureSource]:
    sources = []
    for name, width, height in (("tiny", 150, 113), ("optimized", 1200, 900), ("thumb", 300, 225)):
        for image_format in (fallback, "webp", "avif"):
            sources.append(
                PictureSource(
                    name,
                    image_format,
                    f"image/{image_format}",
                    width,
                    height,
                    f"https://cdn.example/{name}.{image_format}",
                )
            )
    return sources


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _parse(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def test_structure_and_order() -> None:
    html = picture_html(_variants(), alt="Red shoe", sizes="(max-width: 600px) 100vw, 50vw")
    assert html.startswith("<picture>")
    assert html.endswith("</picture>")
    tags = _parse(html)
    assert [t for t, _ in tags] == ["picture", "source", "source", "img"]
    avif, webp, img = (attrs for _, attrs in tags[1:])
    assert avif["type"] == "image/avif"
    assert avif["srcset"] == (
        "https://cdn.example/optimized.avif 1200w, https://cdn.example/thumb.avif 300w, "
        "https://cdn.example/tiny.avif 150w"
    )
    assert webp["type"] == "image/webp"
    assert avif["sizes"] == webp["sizes"] == "(max-width: 600px) 100vw, 50vw"
    assert img["src"] == "https://cdn.example/optimized.jpeg"
    assert img["srcset"] is not None
    assert img["srcset"].startswith("https://cdn.example/optimized.jpeg 1200w")
    assert (img["width"], img["height"]) == ("1200", "900")
    assert (img["loading"], img["decoding"], img["alt"]) == ("lazy", "async", "Red shoe")
    assert "data-thumbhash" not in img


def test_png_fallback_for_alpha_sources() -> None:
    tags = _parse(picture_html(_variants("png"), alt=""))
    img = tags[-1][1]
    assert img["src"] == "https://cdn.example/optimized.png"
    assert img["alt"] == ""


def test_alt_and_attributes_are_escaped() -> None:
    hostile = '"><script>alert(1)</script><img src=x onerror=alert(2) alt="'
    html = picture_html(_variants(), alt=hostile, sizes='100vw" onload="x', placeholder='a"b')
    assert "<script" not in html
    tags = _parse(html)
    assert [t for t, _ in tags] == ["picture", "source", "source", "img"]
    img = tags[-1][1]
    assert img["alt"] == hostile
    assert img["sizes"] == '100vw" onload="x'
    assert img["data-thumbhash"] == 'a"b'
    assert "onload" not in img


def test_srcset_urls_cannot_be_split() -> None:
    source = PictureSource("a", "jpeg", "image/jpeg", 10, 10, "https://cdn.example/a b,c.jpg")
    img = _parse(picture_html([source], alt="x"))[-1][1]
    assert img["srcset"] == "https://cdn.example/a%20b%2Cc.jpg 10w"


def test_placeholder_and_single_fallback() -> None:
    only_jpeg = [s for s in _variants() if s.format == "jpeg"]
    html = picture_html(only_jpeg, alt="x", placeholder="1QcSHQRnh493V4dIh4eXh1h4kJUI")
    tags = _parse(html)
    assert [t for t, _ in tags] == ["picture", "img"]
    assert tags[-1][1]["data-thumbhash"] == "1QcSHQRnh493V4dIh4eXh1h4kJUI"


def test_duplicate_widths_appear_once() -> None:
    same = [
        PictureSource("thumb", "jpeg", "image/jpeg", 100, 100, "/t.jpg"),
        PictureSource("tiny", "jpeg", "image/jpeg", 100, 100, "/s.jpg"),
    ]
    img = _parse(picture_html(same, alt="x"))[-1][1]
    assert img["srcset"] is not None
    assert len(re.findall(r"100w", img["srcset"])) == 1


def test_needs_a_source() -> None:
    with pytest.raises(ValueError, match="at least one"):
        picture_html([], alt="x")
