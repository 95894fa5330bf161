"""A static HTML page of a workspace's media as responsive ``<picture>`` elements."""

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


def _figure(record: dict[str, Any]) -> str:
    name = html.escape(record["filename"])
    if record["status"] != "ready":
        error = record["error"] or {}
        reason = html.escape(f"{error.get('code', record['status'])}: {error.get('message', '')}")
        return f'<figure class="failed"><figcaption>{name}<br>{reason}</figcaption></figure>'
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
        if v["name"] == "optimized"
    ]
    picture = picture_html(
        sources,
        alt=record["alt"] or record["filename"],
        sizes="(max-width: 600px) 100vw, 300px",
        placeholder=record["placeholder"],
    )
    caption = f"{name}<br>{record['width']}x{record['height']}, {len(record['variants'])} variants"
    return f"<figure>{picture}<figcaption>{caption}</figcaption></figure>"


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
