"""A static HTML page of a workspace's media: pictures, videos with posters, model previews.

Every media type shows its ``optimized`` image variants as a responsive ``<picture>``: a
photo, a video's poster, a model's three-quarter view, a document's first page. Videos add
a ``<video>`` element over their web MP4, models a strip of their other angles.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mediamill.media.picture import PictureSource, picture_html

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mediamill gallery: {workspace}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; background: #fafafa; color: #222; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 1rem; }}
figure {{ margin: 0; background: #fff; border: 1px solid #ddd; border-radius: 6px;
          padding: .5rem; }}
figure img {{ width: 100%; height: auto; display: block; }}
figure video {{ width: 100%; height: auto; display: block; background: #000; }}
.angles {{ display: flex; gap: .25rem; margin-top: .25rem; }}
.angles img {{ width: 25%; height: auto; }}
figcaption {{ font-size: .8rem; margin-top: .4rem; word-break: break-all; }}
.failed {{ border-color: #d33; color: #a00; }}
</style>
</head>
<body>
<h1>Workspace {workspace}</h1>
<p>{summary}</p>
<div class="grid">
{figures}
</div>
</body>
</html>
"""


MODEL_ANGLES = ("front", "side", "back")


def _picture(record: dict[str, Any], variant: str) -> str:
    sources = [
        PictureSource(
            name=v["name"],
            format=v["format"],
            mime=v["mime_type"],
            width=v["width"],
            height=v["height"],
            url=v["url"],
        )
        for v in record["variants"]
        if v["name"] == variant
    ]
    return picture_html(
        sources,
        alt=record["alt"] or record["filename"],
        sizes="(max-width: 600px) 100vw, 300px",
        placeholder=record["placeholder"],
    )


def _variant_url(record: dict[str, Any], name: str, formats: Sequence[str]) -> str | None:
    """The URL of the first of ``formats`` the media has for variant ``name``."""
    by_format = {v["format"]: v["url"] for v in record["variants"] if v["name"] == name}
    return next((by_format[f] for f in formats if f in by_format), None)


def _video(record: dict[str, Any]) -> str | None:
    url = _variant_url(record, "web", ("mp4",))
    if url is None:
        return None
    poster = _variant_url(record, "optimized", ("jpeg", "webp"))
    poster_attr = f' poster="{html.escape(poster)}"' if poster else ""
    return (
        f'<video controls muted playsinline preload="metadata"{poster_attr}>'
        f'<source src="{html.escape(url)}" type="video/mp4"></video>'
    )


def _model_angles(record: dict[str, Any]) -> str:
    images = []
    for angle in MODEL_ANGLES:
        url = _variant_url(record, f"{angle}-thumb", ("webp", "jpeg"))
        if url is not None:
            alt = html.escape(f"{record['alt'] or record['filename']}, {angle} view")
            images.append(f'<img src="{html.escape(url)}" alt="{alt}" loading="lazy">')
    return f'<div class="angles">{"".join(images)}</div>' if images else ""


def _facts(record: dict[str, Any]) -> str:
    """One line of what the media is, by type."""
    meta = record.get("metadata") or {}
    kind = record.get("media_type")
    if kind == "video" and "duration" in meta:
        return f"video, {float(meta['duration']):.1f} s, {record['width']}x{record['height']}"
    if kind == "model" and "faces" in meta:
        return f"3D model, {meta['vertices']} vertices, {meta['faces']} faces"
    if kind == "document" and "pages" in meta:
        return f"document, {meta['pages']} page(s)"
    return f"{record['width']}x{record['height']}"


def _figure(record: dict[str, Any]) -> str:
    name = html.escape(record["filename"])
    if record["status"] != "ready":
        error = record["error"] or {}
        reason = html.escape(f"{error.get('code', record['status'])}: {error.get('message', '')}")
        return f'<figure class="failed"><figcaption>{name}<br>{reason}</figcaption></figure>'
    kind = record.get("media_type")
    body = (_video(record) if kind == "video" else None) or _picture(record, "optimized")
    if kind == "model":
        body += _model_angles(record)
    facts = html.escape(_facts(record))
    caption = f"{name}<br>{facts}, {len(record['variants'])} variants"
    return f"<figure>{body}<figcaption>{caption}</figcaption></figure>"


def render_gallery(workspace: str, records: Sequence[dict[str, Any]]) -> str:
    ready = sum(1 for r in records if r["status"] == "ready")
    summary = f"{ready} ready, {len(records) - ready} not ready, newest first."
    return PAGE.format(
        workspace=html.escape(workspace),
        summary=html.escape(summary),
        figures="\n".join(_figure(r) for r in records),
    )


def write_gallery(path: Path, workspace: str, records: Sequence[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_gallery(workspace, records), encoding="utf-8")
    return path
