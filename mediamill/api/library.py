"""The media-picker page (``/library``) and, without a CDN, the published files it shows.

The page is static: it talks to ``/graphql`` only, with the token the embedding page hands
it in the URL fragment (never sent to the server, never logged).
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from mediamill.api.services import services_of
from mediamill.storage.errors import ObjectNotFound, StorageError
from mediamill.storage.keys import TENANTS

router = APIRouter(include_in_schema=False)
STATIC = files("mediamill.api") / "static"
ASSETS = {"library.js": "text/javascript", "library.css": "text/css"}


def _security_headers(connect: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": (
            "default-src 'none'; script-src 'self'; style-src 'self'; "
            f"img-src 'self' data: blob: {connect}; media-src 'self' {connect}; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


@router.get("/library", response_class=HTMLResponse)
def library_page(request: Request) -> HTMLResponse:
    """The picker: grid, filters, drag-and-drop upload, selection."""
    cdn = services_of(request.app.state).settings.cdn_base_url or ""
    html = (STATIC / "library.html").read_text(encoding="utf-8")
    return HTMLResponse(html, headers=_security_headers(cdn))


@router.get("/library/{asset}")
def library_asset(asset: str) -> Response:
    """The page's script and stylesheet."""
    if asset not in ASSETS:
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    return Response(
        (STATIC / asset).read_bytes(),
        media_type=ASSETS[asset],
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/files/{key:path}")
async def published_file(key: str, request: Request) -> Response:
    """A published object, for setups without a CDN; uploads in flight are never served."""
    if not key.startswith(f"{TENANTS}/"):
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    store = services_of(request.app.state).store
    try:
        info = await run_in_threadpool(store.head, key)
        data = await run_in_threadpool(store.get, key)
    except (ObjectNotFound, ValueError) as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND) from error
    except StorageError as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE) from error
    headers = {"X-Content-Type-Options": "nosniff"}
    if info.cache_control:
        headers["Cache-Control"] = info.cache_control
    return Response(data, media_type=info.content_type, headers=headers)
