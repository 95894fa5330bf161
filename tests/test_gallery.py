"""The demo gallery page: each media type shows what a shopper would see."""

from __future__ import annotations

from typing import Any

from mediamill.gallery import render_gallery


def _variant(name: str, fmt: str, width: int = 1200, height: int = 800) -> dict[str, Any]:
    mime = {"jpeg": "image/jpeg", "webp": "image/webp", "mp4": "video/mp4"}[fmt]
    return {
        "name": name,
        "format": fmt,
        "mime_type": mime,
        "width": width,
        "height": height,
        "url": f"https://cdn.example/{name}.{fmt}",
    }


def _record(media_type: str, variants: list[dict[str, Any]], **metadata: Any) -> dict[str, Any]:
    return {
        "filename": f"a <{media_type}>",
        "status": "ready",
        "error": None,
        "alt": None,
        "placeholder": None,
        "media_type": media_type,
        "width": 1200,
        "height": 800,
        "metadata": metadata,
        "variants": variants,
    }


def test_a_video_plays_its_web_mp4_over_its_poster() -> None:
    record = _record(
        "video",
        [_variant("web", "mp4"), _variant("optimized", "jpeg"), _variant("optimized", "webp")],
        duration=2.5,
    )
    page = render_gallery("acme", [record])
    assert '<video controls muted playsinline preload="metadata"' in page
    assert 'poster="https://cdn.example/optimized.jpeg"' in page
    assert '<source src="https://cdn.example/web.mp4" type="video/mp4">' in page
    assert "video, 2.5 s, 1200x800" in page


def test_a_model_shows_its_hero_view_and_the_other_angles() -> None:
    variants = [_variant("optimized", "jpeg")] + [
        _variant(f"{angle}-thumb", "webp", 300, 300) for angle in ("front", "side", "back")
    ]
    page = render_gallery("acme", [_record("model", variants, vertices=8, faces=12)])
    assert "https://cdn.example/optimized.jpeg" in page
    for angle in ("front", "side", "back"):
        assert f'src="https://cdn.example/{angle}-thumb.webp"' in page
        assert f"{angle} view" in page
    assert "3D model, 8 vertices, 12 faces" in page


def test_a_document_shows_its_first_page_and_page_count() -> None:
    page = render_gallery("acme", [_record("document", [_variant("optimized", "jpeg")], pages=3)])
    assert "https://cdn.example/optimized.jpeg" in page
    assert "document, 3 page(s)" in page


def test_names_are_escaped_and_failures_show_their_reason() -> None:
    failed = {**_record("image", []), "status": "failed"}
    failed["error"] = {"code": "corrupt", "message": "<b>bad</b>"}
    page = render_gallery("acme", [failed])
    assert "a &lt;image&gt;" in page
    assert "corrupt: &lt;b&gt;bad&lt;/b&gt;" in page
    assert "<b>bad</b>" not in page
