"""``mediaCreateFromUrl`` end to end: SSRF refusals, redirects, caps and sniffing.

A real loopback HTTP server stands in for the internet. Under default settings it is a
forbidden address and must never see a request; an app whose settings allow
``127.0.0.1/32`` reaches it, and only it. The ingest flow reads its settings from the
environment (as a worker would), so the fixtures set ``MEDIAMILL_*`` there as well.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mediamill.api.app import create_app
from mediamill.api.dispatch import EmbeddedDispatcher
from mediamill.api.services import services_of
from mediamill.catalog.models import Media
from mediamill.media.samples import photo_jpeg
from mediamill.settings import get_settings
from tests.api.conftest import Api
from tests.net.conftest import Server, send

FROM_URL = """
mutation($url: String!, $alt: String, $entity: EntityInput) {
  mediaCreateFromUrl(url: $url, alt: $alt, entity: $entity) {
    media { id status }
    userErrors { field code message }
  }
}"""
SHOW = """query($id: ID!) {
  media(id: $id) { id status filename alt mediaType width error { code message }
                   variants { name url } }
}"""
PHOTO = photo_jpeg(64, 48, seed=11)
HTML = b"<!doctype html><html><body><script>alert(1)</script></body></html>"
MAX_UPLOAD = 50_000
OVER_CAP = b"\xff" * (MAX_UPLOAD + 1000)


@contextmanager
def _serve(monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> Iterator[Api]:
    """An app with ``overrides``, which the flows it starts see too."""
    for name, value in overrides.items():
        text = json.dumps(value) if isinstance(value, list) else str(value)
        monkeypatch.setenv(f"MEDIAMILL_{name.upper()}", text)
    dispatcher = EmbeddedDispatcher()
    settings = get_settings(dispatch="embedded", api_public_url="http://testserver", **overrides)
    assert get_settings().model_dump(include=set(overrides)) == overrides
    app = create_app(settings, dispatcher=dispatcher)
    with TestClient(app) as client:
        yield Api(client, services_of(app.state), dispatcher)


@pytest.fixture
def allowed(home: Path, prefect_api: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """URL downloads may reach 127.0.0.1 (only), and uploads are capped at 50 kB."""
    with _serve(
        monkeypatch, fetch_allow_networks=["127.0.0.1/32"], max_upload_bytes=MAX_UPLOAD
    ) as api:
        yield api


def _create(api: Api, token: str, url: str, **variables: Any) -> dict[str, Any]:
    body = api.graphql(token, FROM_URL, {"url": url, **variables})
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["mediaCreateFromUrl"]
    return payload


def _start_all(api: Api, token: str, urls: dict[str, str]) -> dict[str, str]:
    """Create a media per URL (each answered PENDING at once), then wait for every run."""
    ids = {}
    for label, url in urls.items():
        payload = _create(api, token, url)
        assert payload["userErrors"] == [], (label, payload)
        assert payload["media"]["status"] == "PENDING", label
        ids[label] = payload["media"]["id"]
    api.settle()
    return ids


def _show(api: Api, token: str, media_id: str) -> dict[str, Any]:
    media: dict[str, Any] = api.graphql(token, SHOW, {"id": media_id})["data"]["media"]
    return media


def _media_count(api: Api) -> int:
    with api.services.reading() as session:
        return int(session.scalar(select(func.count()).select_from(Media)) or 0)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/_GET%20/",
        "ftp://example.com/a.jpg",
        "javascript:alert(1)",
        "data:image/jpeg;base64,/9j/4AAQ",
        "dict://127.0.0.1:11211/stats",
        "//example.com/a.jpg",
        "example.com/a.jpg",
        "http://",
        "http://user:secret@example.com/a.jpg",
        "http://example.com:99999/a.jpg",
        "",
    ],
)
def test_urls_that_can_never_be_fetched_are_refused_up_front(api: Api, url: str) -> None:
    token = api.token()
    payload = _create(api, token, url, entity={"type": "product", "id": "1"})
    assert payload["media"] is None
    (error,) = payload["userErrors"]
    assert (error["field"], error["code"]) == (["url"], "INVALID_URL")
    assert error["message"]
    assert _media_count(api) == 0
    assert api.dispatcher.started == 0  # no run was even started


def test_non_public_addresses_fail_without_a_connection(
    api: Api, server: Server, connects: list[tuple[str, int]]
) -> None:
    server.routes["/x.jpg"] = lambda h: send(h, 200, PHOTO, {"Content-Type": "image/jpeg"})
    port = server.port
    urls = {
        "loopback": server.url("/x.jpg"),
        "metadata": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "ipv6 loopback": f"http://[::1]:{port}/x.jpg",
        "decimal": f"http://2130706433:{port}/x.jpg",
        "this host": f"http://0.0.0.0:{port}/x.jpg",
        "private": "http://10.0.0.1/x.jpg",
        "ula": "http://[fd00::1]/x.jpg",
    }
    token = api.token()
    ids = _start_all(api, token, urls)
    for label, media_id in ids.items():
        media = _show(api, token, media_id)
        assert media["status"] == "FAILED", (label, media)
        assert media["error"]["code"] == "forbidden_address", (label, media)
        assert media["variants"] == []
    assert server.connections == 0
    assert server.requests == []
    refused_hosts = {"169.254.169.254", "10.0.0.1", "fd00::1", "0.0.0.0", "::1"}
    assert not [c for c in connects if c[1] == port or c[0] in refused_hosts], connects


def test_allowed_network_is_fetched_and_ingested(allowed: Api, server: Server) -> None:
    server.routes["/img/photo.jpg"] = lambda h: send(h, 200, PHOTO, {"Content-Type": "image/jpeg"})
    token = allowed.token()
    created = _create(
        allowed,
        token,
        server.url("/img/photo.jpg"),
        alt="From the web",
        entity={"type": "product", "id": "5"},
    )
    assert created["userErrors"] == []
    assert created["media"]["status"] == "PENDING"
    allowed.settle()
    media = _show(allowed, token, created["media"]["id"])
    assert media["status"] == "READY", media
    assert media["alt"] == "From the web"
    assert (media["mediaType"], media["width"]) == ("IMAGE", 64)
    assert {"thumb", "optimized"} <= {v["name"] for v in media["variants"]}
    (seen,) = server.requests
    assert seen.path == "/img/photo.jpg"
    assert seen.headers["user-agent"].startswith("mediamill/")
    assert "authorization" not in seen.headers
    assert "cookie" not in seen.headers


def test_allowed_network_refusals(
    allowed: Api, server: Server, connects: list[tuple[str, int]]
) -> None:
    port = server.port

    def route(path: str, respond: Any) -> None:
        server.routes[path] = respond

    def redirect(location: str) -> Any:
        return lambda h: send(h, 302, b"", {"Location": location})

    route("/photo.jpg", lambda h: send(h, 200, PHOTO, {"Content-Type": "image/jpeg"}))
    route("/to-metadata", redirect("http://169.254.169.254/latest/meta-data/"))
    route("/to-ipv6-loopback", redirect(f"http://[::1]:{port}/photo.jpg"))
    route("/to-photo", redirect("/photo.jpg"))
    route("/big-declared", lambda h: send(h, 200, OVER_CAP, {"Content-Type": "image/jpeg"}))
    route(
        "/big-streamed",
        lambda h: send(h, 200, OVER_CAP, {"Content-Type": "image/jpeg"}, length=-1),
    )
    route("/page.jpg", lambda h: send(h, 200, HTML, {"Content-Type": "image/jpeg"}))

    expected = {
        "/to-metadata": "forbidden_address",
        "/to-ipv6-loopback": "forbidden_address",
        "/big-declared": "too_large",
        "/big-streamed": "too_large",
        "/page.jpg": "unsupported_type",
    }
    urls = {path: server.url(path) for path in expected}
    # Allowed means 127.0.0.1/32, not the whole loopback network.
    urls["other loopback"] = server.url("/photo.jpg", host="127.0.0.2")
    expected["other loopback"] = "forbidden_address"
    urls["redirected"] = server.url("/to-photo")

    token = allowed.token()
    ids = _start_all(allowed, token, urls)
    for label, code in expected.items():
        media = _show(allowed, token, ids[label])
        assert media["status"] == "FAILED", (label, media)
        assert media["error"]["code"] == code, (label, media)
        assert media["error"]["message"], label
        assert media["variants"] == [], label
    # A redirect to an allowed address is followed, each hop checked again.
    followed = _show(allowed, token, ids["redirected"])
    assert followed["status"] == "READY", followed

    paths = [seen.path for seen in server.requests]
    assert paths.count("/photo.jpg") == 1  # only via the allowed redirect
    assert "/to-metadata" in paths
    assert "/big-streamed" in paths
    assert not [c for c in connects if c[0] in ("169.254.169.254", "::1", "127.0.0.2")]
