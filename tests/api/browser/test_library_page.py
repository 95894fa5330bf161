"""The picker page in headless Chromium against a live API: upload, browse, select, hand over."""

from __future__ import annotations

import base64
import re
from urllib.parse import quote

import pytest
from playwright.sync_api import FrameLocator, Locator, Page, expect

from mediamill.media.samples import alpha_png, photo_jpeg
from tests.api.browser.conftest import LiveServer, Tab

pytestmark = pytest.mark.slow

# Flows usually take 1-3 s here, but the session's Prefect test server (SQLite) now and then
# stalls a client call for its 60 s request timeout ("database is locked"): wait past one.
PROCESSING_TIMEOUT = 150_000
HOSTILE = "<img src=x onerror=alert(1)>red boot.jpg"
DROP = """(files) => {
  const transfer = new DataTransfer();
  for (const file of files) {
    const bytes = Uint8Array.from(atob(file.data), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], file.name, { type: file.type }));
  }
  return transfer;
}"""


def _drop(page: Page, zone: Locator, files: list[tuple[str, str, bytes]]) -> None:
    """A real drop: DragEvents carrying a DataTransfer of File objects, as a desktop drag makes."""
    transfer = page.evaluate_handle(
        DROP,
        [{"name": n, "type": t, "data": base64.b64encode(d).decode()} for n, t, d in files],
    )
    zone.dispatch_event("dragenter", {"dataTransfer": transfer})
    expect(zone).to_have_class(re.compile(r"\bover\b"))
    zone.dispatch_event("dragover", {"dataTransfer": transfer})
    zone.dispatch_event("drop", {"dataTransfer": transfer})
    expect(zone).not_to_have_class(re.compile(r"\bover\b"))


def _tiles(scope: Page | FrameLocator) -> Locator:
    return scope.get_by_role("listbox", name="Recent media").get_by_role("option")


def _tile(scope: Page | FrameLocator, filename: str) -> Locator:
    return _tiles(scope).filter(has_text=filename)


def _expect_thumbnail_loaded(tile: Locator) -> None:
    thumb = tile.locator("img.thumb")
    expect(thumb).to_have_class(re.compile(r"\bloaded\b"), timeout=PROCESSING_TIMEOUT)
    assert thumb.evaluate("(img) => img.complete && img.naturalWidth") > 0
    assert ".webp" in (thumb.get_attribute("src") or "")


def test_upload_browse_filter_and_select(live_server: LiveServer, tab: Tab) -> None:
    page = tab.page
    token = live_server.token()
    page.goto(f"{live_server.url}/library#token={token}")
    # The token leaves the address bar at once and lives on in sessionStorage only.
    expect(page).to_have_url(f"{live_server.url}/library")
    assert page.evaluate("sessionStorage.getItem('mediamill.token')") == token
    expect(page.locator("#grid-status")).to_have_text("No media yet.")

    jpeg = photo_jpeg(640, 480, seed=3)
    png = alpha_png(320, 200)
    _drop(
        page,
        page.locator("#drop-zone"),
        [("shoe-front.jpg", "image/jpeg", jpeg), ("shoe-side.png", "image/png", png)],
    )
    page.locator("#file-input").set_input_files(
        {"name": "bad.jpg", "mimeType": "image/jpeg", "buffer": b"not an image"}
    )

    uploads = page.locator("#uploads .upload")
    expect(uploads).to_have_count(3)
    for name in ("shoe-front.jpg", "shoe-side.png", "bad.jpg"):
        row = uploads.filter(has_text=name)
        expect(row.locator(".percent")).to_have_text("100%", timeout=PROCESSING_TIMEOUT)
        expect(row.locator("progress")).to_have_js_property("value", 100)
    for name in ("shoe-front.jpg", "shoe-side.png"):
        state = uploads.filter(has_text=name).locator(".state")
        expect(state).to_have_text("Ready", timeout=PROCESSING_TIMEOUT)
    bad_state = uploads.filter(has_text="bad.jpg").locator(".state")
    expect(bad_state).to_have_text(re.compile(r"^Failed: \w.+"), timeout=PROCESSING_TIMEOUT)

    # The grid shows all three; the images with their ThumbHash placeholder and thumbnail.
    tiles = _tiles(page)
    expect(tiles).to_have_count(3)
    for name in ("shoe-front.jpg", "shoe-side.png"):
        tile = _tile(page, name)
        placeholder = tile.locator("img.placeholder")
        assert (placeholder.get_attribute("src") or "").startswith("data:image/png;base64,")
        assert placeholder.evaluate("(img) => Math.max(img.naturalWidth, img.naturalHeight)") == 32
        _expect_thumbnail_loaded(tile)
    bad = _tile(page, "bad.jpg")
    expect(bad).to_have_attribute("aria-disabled", "true")
    expect(bad.locator(".badge")).to_have_text(re.compile(r"^Failed: \w"))

    # A reload pages the same media in from recentMedia, the token kept for the tab.
    page.reload()
    expect(tiles).to_have_count(3)
    _expect_thumbnail_loaded(_tile(page, "shoe-side.png"))

    type_filter = page.get_by_label("Type")
    type_filter.select_option(label="Video")
    expect(page.locator("#grid-status")).to_have_text("No media match these filters.")
    expect(tiles).to_have_count(0)
    type_filter.select_option(label="Image")
    expect(tiles).to_have_count(2)
    expect(_tile(page, "bad.jpg")).to_have_count(0)
    type_filter.select_option(label="All")
    expect(tiles).to_have_count(3)

    search = page.get_by_label("Filename")
    search.fill("front")
    expect(tiles).to_have_count(1)
    expect(_tile(page, "shoe-front.jpg")).to_be_visible()
    search.fill("")
    expect(tiles).to_have_count(3)

    # Select with the mouse and the keyboard; a failed media cannot be selected.
    front, side = _tile(page, "shoe-front.jpg"), _tile(page, "shoe-side.png")
    front_id, side_id = front.get_attribute("data-id"), side.get_attribute("data-id")
    front.click()
    bad.click(force=True)  # aria-disabled: Playwright would wait for it to be enabled
    side.focus()
    page.keyboard.press("Space")
    expect(front).to_have_attribute("aria-selected", "true")
    expect(side).to_have_attribute("aria-selected", "true")
    expect(bad).to_have_attribute("aria-selected", "false")
    expect(page.locator("#selected-ids code")).to_have_text([front_id or "", side_id or ""])
    expect(page.locator("#selected-count")).to_have_text("2")
    page.keyboard.press("Enter")
    expect(side).to_have_attribute("aria-selected", "false")
    expect(page.locator("#selected-ids code")).to_have_text([front_id or ""])

    assert tab.problems == []


def _open_in_shop(page: Page, shop: str, picker: str) -> FrameLocator:
    """The picker in an iframe of a shop page on another origin."""
    page.goto(f"{shop}/products/42?src={quote(picker, safe='')}")
    return page.frame_locator("#picker")


def test_use_selected_posts_ids_to_the_embedding_page(
    live_server: LiveServer, shop: str, tab: Tab
) -> None:
    page = tab.page
    token = live_server.token()
    ids = [
        live_server.upload(token, name, photo_jpeg(400, 300, seed=seed))
        for seed, name in enumerate((HOSTILE, "blue boot.jpg", "green boot.jpg"))
    ]
    live_server.settle()

    library = f"{live_server.url}/library"
    picker = _open_in_shop(page, shop, f"{library}#token={token}&origin={quote(shop, safe='')}")
    tiles = _tiles(picker)
    expect(tiles).to_have_count(3)
    # A hostile filename is text, never markup.
    expect(_tile(picker, HOSTILE).locator(".name")).to_have_text(HOSTILE)
    expect(picker.locator("#grid img:not(.thumb, .placeholder)")).to_have_count(0)

    _tile(picker, "green boot.jpg").click()
    _tile(picker, HOSTILE).click()
    chosen = [ids[2], ids[0]]
    expect(picker.locator("#selected-ids code")).to_have_text(chosen)
    picker.get_by_role("button", name="Use selected").click()
    page.wait_for_function("window.received.length > 0")
    received = page.evaluate("window.received")
    assert len(received) == 1
    assert received[0]["origin"] == live_server.url
    message = received[0]["data"]
    assert message["type"] == "mediamill:selected"
    assert message["ids"] == chosen
    assert [m["id"] for m in message["media"]] == chosen
    assert message["media"][1]["filename"] == HOSTILE
    assert any(v["name"] == "thumb" for v in message["media"][0]["variants"])
    expect(picker.locator("#send-status")).to_have_text(f"Sent 2 to {shop}.")
    assert tab.problems == []

    # Without #origin the picker only ever posts to its own origin: this shop gets nothing.
    picker = _open_in_shop(page, shop, f"{library}#token={token}")
    tiles = _tiles(picker)
    expect(tiles).to_have_count(3)
    _tile(picker, "blue boot.jpg").click()
    mismatch = "does not match the recipient window's origin"
    with page.expect_console_message(lambda m: mismatch in m.text):
        picker.get_by_role("button", name="Use selected").click()
    expect(picker.locator("#send-status")).to_have_text(f"Sent 1 to {live_server.url}.")
    page.wait_for_timeout(300)
    assert page.evaluate("window.received") == []
    assert len(tab.problems) == 1, tab.problems
    assert mismatch in tab.problems[0]


def test_without_a_token_the_page_asks_for_one(live_server: LiveServer, tab: Tab) -> None:
    page = tab.page
    token = live_server.token()
    # Still processing when the page opens, most likely: the grid follows it to READY.
    live_server.upload(token, "late.jpg", photo_jpeg(500, 500, seed=9))
    page.goto(f"{live_server.url}/library")
    token_input = page.get_by_label("API token")
    expect(token_input).to_be_focused()
    expect(page.locator("#app")).to_be_hidden()
    token_input.fill("mm_not-a-token")
    with page.expect_console_message(lambda m: "401 (Unauthorized)" in m.text) as refused:
        page.get_by_role("button", name="Open library").click()
    expect(page.locator("#token-message")).to_have_text(re.compile("refused"))
    expect(token_input).to_be_focused()
    tab.problems.remove(next(p for p in tab.problems if refused.value.text in p))

    token_input.fill(token)
    page.get_by_role("button", name="Open library").click()
    expect(page.locator("#token-form")).to_be_hidden()
    tile = _tile(page, "late.jpg")
    expect(tile).to_have_attribute("data-status", "READY", timeout=PROCESSING_TIMEOUT)
    _expect_thumbnail_loaded(tile)
    assert tab.problems == []


def test_load_more_pages_through_recent_media(live_server: LiveServer, tab: Tab) -> None:
    page = tab.page
    page.set_viewport_size({"width": 1280, "height": 600})  # "Load more" starts off-screen
    live_server.failed_media([f"scan-{i:02}.tif" for i in range(45)])
    page.goto(f"{live_server.url}/library#token={live_server.token()}")
    tiles = _tiles(page)
    expect(tiles).to_have_count(20)
    expect(tiles.first).to_contain_text("scan-44.tif")
    expect(page.locator("#grid-status")).to_have_text("20 shown, more available.")
    # The button (a click that does not scroll it into view, so the observer stays out)...
    more = page.get_by_role("button", name="Load more")
    more.dispatch_event("click")
    expect(tiles).to_have_count(40)
    expect(more).to_be_visible()
    # ...and infinite scroll: the button coming into view loads the next page by itself.
    more.scroll_into_view_if_needed()
    expect(tiles).to_have_count(45)
    expect(tiles.last).to_contain_text("scan-00.tif")
    expect(more).to_be_hidden()
    expect(page.locator("#grid-status")).to_have_text("45 shown.")
    # Keyboard: focus moves along the grid with the arrow keys, Home and End.
    tiles.first.focus()
    page.keyboard.press("ArrowRight")
    expect(tiles.nth(1)).to_be_focused()
    page.keyboard.press("End")
    expect(tiles.last).to_be_focused()
    expect(tiles.last).to_have_attribute("tabindex", "0")
    assert tab.problems == []
