"""A real uvicorn server and headless Chromium for the picker page's browser tests.

Chromium is Debian's (``make system-packages``); Playwright only drives it, nothing is
downloaded. The server runs on a thread of this process, with flows on the embedded
dispatcher against the session's Prefect test server.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, sync_playwright

from mediamill.api.app import create_app
from mediamill.api.dispatch import EmbeddedDispatcher
from mediamill.api.services import services_of
from mediamill.catalog import access, uploads
from mediamill.catalog import repository as repo
from mediamill.settings import get_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STAGE = """
mutation($input: [StagedUploadInput!]!) {
  stagedUploadsCreate(input: $input) {
    stagedTargets { url resourceUrl headers { name value } }
    userErrors { code message }
  }
}"""
CREATE = """
mutation($input: MediaCreateInput!) {
  mediaCreate(input: $input) { media { id } userErrors { code message } }
}"""


@dataclass
class LiveServer:
    """The API on a real port, and helpers to act as a workspace's user from Python."""

    url: str
    app: FastAPI
    dispatcher: EmbeddedDispatcher

    def token(self, workspace: str = "acme", user: str = "ana") -> str:
        with services_of(self.app.state).writing() as session:
            return access.create_token(session, workspace, user, ("write",))

    def graphql(self, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    def upload(self, token: str, filename: str, data: bytes) -> str:
        """Stage, PUT and create a media as an API client would; its id (still processing)."""
        staged = self.graphql(
            token, STAGE, {"input": [{"filename": filename, "fileSize": len(data)}]}
        )["stagedUploadsCreate"]
        assert staged["userErrors"] == [], staged
        target = staged["stagedTargets"][0]
        headers = {h["name"]: h["value"] for h in target["headers"]}
        httpx.put(target["url"], content=data, headers=headers, timeout=30).raise_for_status()
        created = self.graphql(token, CREATE, {"input": {"originalSource": target["resourceUrl"]}})
        assert created["mediaCreate"]["userErrors"] == [], created
        media_id: str = created["mediaCreate"]["media"]["id"]
        return media_id

    def failed_media(self, names: list[str], workspace: str = "acme") -> None:
        """Catalog rows only, no runs: media that failed before processing (cheap page filler)."""
        with services_of(self.app.state).writing() as session:
            workspace_id = repo.ensure_workspace(session, workspace).id
            for name in names:
                media = uploads.create_pending_media(
                    session, workspace_id, uploader="ana", filename=name, source=f"upload:{name}"
                )
                uploads.fail_pending(session, workspace_id, media.id, "TEST", "made to fail")

    def settle(self) -> None:
        """Wait for every flow run the API started to finish."""
        self.dispatcher.wait(timeout=120)


@pytest.fixture
def live_server(home: Path, prefect_api: str) -> Iterator[LiveServer]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    dispatcher = EmbeddedDispatcher()
    app = create_app(get_settings(dispatch="embedded", api_public_url=url), dispatcher=dispatcher)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="picker-api", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(url, app, dispatcher)
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()


SHOP_PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop admin</title>
<link rel="icon" href="data:,"></head>
<body>
<script>
  window.received = [];
  addEventListener("message", (event) => {
    window.received.push({ origin: event.origin, data: event.data });
  });
</script>
<iframe id="picker" title="Media picker" width="1100" height="800"></iframe>
<script>
  document.getElementById("picker").src = new URLSearchParams(location.search).get("src");
</script>
</body></html>"""


class _ShopPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(SHOP_PAGE)))
        self.end_headers()
        self.wfile.write(SHOP_PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def shop() -> Iterator[str]:
    """The origin of an embedding page on another port: it frames ``?src=`` and records
    every message it receives in ``window.received``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ShopPage)
    thread = threading.Thread(target=server.serve_forever, name="shop-page", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# Module scope, not session: Playwright's sync API keeps an event loop running on the main
# thread while it is open, and later tests (Prefect's State.result, asyncio.run) would find
# themselves "inside" that loop.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make system-packages`")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Tab:
    """A page in a fresh browser context, with every console error and page error it saw."""

    page: Page
    problems: list[str] = field(default_factory=list)

    def watch(self) -> None:
        self.page.on("console", self._console)
        self.page.on("pageerror", self._page_error)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning") or "Content Security Policy" in message.text:
            self.problems.append(f"console {message.type}: {message.text} ({message.location})")

    def _page_error(self, error: Error) -> None:
        self.problems.append(f"page error: {error.message}")


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    tab = Tab(context.new_page())
    tab.watch()
    try:
        yield tab
    finally:
        context.close()
