"""Responsive ``<picture>`` markup for rendered variants, safe for user-supplied alt text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

SOURCE_ORDER: Final = ("image/avif", "image/webp")
"""Modern formats, best first; the browser takes the first type it supports."""
FALLBACK_ORDER: Final = ("image/jpeg", "image/png", "image/webp", "image/avif")


@dataclass(frozen=True)
class PictureSource:
    """One published variant as the page sees it."""

    name: str
    format: str
    mime: str
    width: int
    height: int
    url: str


def picture_html(
    sources: Sequence[PictureSource],
    *,
    alt: str,
    sizes: str = "100vw",
    placeholder: str | None = None,
) -> str:
    """AVIF/WebP sources then a JPEG/PNG ``<img>``; one aspect ratio, as browsers pick by width."""
    if not sources:
        raise ValueError("picture_html needs at least one source")
    by_mime: dict[str, list[PictureSource]] = {}
    for source in sources:
        by_mime.setdefault(source.mime, []).append(source)
    fallback_mime = next(mime for mime in FALLBACK_ORDER + tuple(by_mime) if mime in by_mime)
    fallback = _widest_first(by_mime[fallback_mime])
    parts = ["<picture>"]
    parts.extend(
        _tag("source", type=mime, srcset=_srcset(by_mime[mime]), sizes=sizes)
        for mime in SOURCE_ORDER
        if mime in by_mime and mime != fallback_mime
    )
    image_attributes = {
        "src": fallback[0].url,
        "srcset": _srcset(fallback),
        "sizes": sizes,
        "width": str(fallback[0].width),
        "height": str(fallback[0].height),
        "alt": alt,
        "loading": "lazy",
        "decoding": "async",
    }
    if placeholder is not None:
        # Decoded client-side into a blurred preview while the image loads.
        image_attributes["data-thumbhash"] = placeholder
    parts.append(_tag("img", **image_attributes))
    parts.append("</picture>")
    return "".join(parts)


def _widest_first(sources: list[PictureSource]) -> list[PictureSource]:
    """Sort by width, keeping one source per width so the srcset has no duplicates."""
    unique: dict[int, PictureSource] = {}
    for source in sorted(sources, key=lambda s: s.width, reverse=True):
        unique.setdefault(source.width, source)
    return list(unique.values())


def _srcset(sources: list[PictureSource]) -> str:
    return ", ".join(f"{_srcset_url(s.url)} {s.width}w" for s in _widest_first(sources))


def _srcset_url(url: str) -> str:
    """Percent-encode what would split a srcset candidate: whitespace and commas."""
    return "".join(f"%{ord(c):02X}" if c.isspace() or c == "," else c for c in url)


def _tag(name: str, **attributes: str) -> str:
    rendered = "".join(f' {key}="{escape(value, quote=True)}"' for key, value in attributes.items())
    return f"<{name}{rendered}>"
