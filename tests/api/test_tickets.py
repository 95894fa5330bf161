"""Signed upload tickets: intact, unexpired tickets redeem; everything else is a TicketError."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from mediamill.api.tickets import TicketError, UploadTicket, issue, redeem, server_key
from mediamill.settings import get_settings

KEY = b"k" * 32
NOW = 1_750_000_000
TICKET = UploadTicket(
    key="incoming/acme/0123456789abcdef",
    workspace="acme",
    max_bytes=1_000_000,
    content_type="image/jpeg",
    expires=NOW + 3600,
    filename="shoe.jpg",
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def flip(text: str, index: int) -> str:
    """``text`` with one base64url character changed to another."""
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


def test_issue_and_redeem_round_trip() -> None:
    token = issue(KEY, TICKET)
    assert redeem(KEY, token, now=NOW) == TICKET
    assert redeem(KEY, token, now=TICKET.expires) == TICKET  # valid up to its expiry second


def test_ticket_without_filename_round_trips() -> None:
    ticket = replace(TICKET, filename=None)
    assert redeem(KEY, issue(KEY, ticket), now=NOW) == ticket


def test_token_is_url_safe() -> None:
    token = issue(KEY, replace(TICKET, filename="a/b?c=d&e#f é.jpg"))
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_tampered_payload_is_refused() -> None:
    """A payload naming another workspace (or a bigger cap) with the original mac."""
    token = issue(KEY, TICKET)
    payload, _, mac = token.partition(".")
    for changed in (
        replace(TICKET, workspace="other", key="incoming/other/0123456789abcdef"),
        replace(TICKET, max_bytes=10**12),
        replace(TICKET, expires=NOW + 10**9),
    ):
        forged = b64(json.dumps(changed.__dict__, separators=(",", ":")).encode())
        assert forged != payload
        with pytest.raises(TicketError, match="signature"):
            redeem(KEY, f"{forged}.{mac}", now=NOW)


@pytest.mark.parametrize("part", ["payload", "mac"])
def test_any_changed_character_is_refused(part: str) -> None:
    payload, _, mac = issue(KEY, TICKET).partition(".")
    target = payload if part == "payload" else mac
    for index in range(len(target)):
        changed = flip(target, index)
        token = f"{changed}.{mac}" if part == "payload" else f"{payload}.{changed}"
        with pytest.raises(TicketError):
            redeem(KEY, token, now=NOW)


def test_ticket_signed_with_another_key_is_refused() -> None:
    with pytest.raises(TicketError, match="signature"):
        redeem(KEY, issue(b"x" * 32, TICKET), now=NOW)


def test_mac_is_bound_to_upload_tickets() -> None:
    """The mac is not a bare HMAC of the payload, so other HMACs of the key do not pass."""
    payload = issue(KEY, TICKET).partition(".")[0]
    bare = b64(hmac.new(KEY, payload.encode(), hashlib.sha256).digest())
    with pytest.raises(TicketError):
        redeem(KEY, f"{payload}.{bare}", now=NOW)


@pytest.mark.parametrize(
    "token",
    ["", ".", "abc", "abc.", ".abc", "a" * 5000 + ".b", "é.é", "abc.def.ghi"],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(TicketError):
        redeem(KEY, token, now=NOW)


def test_expired_ticket_is_refused() -> None:
    token = issue(KEY, TICKET)
    with pytest.raises(TicketError, match="expired"):
        redeem(KEY, token, now=TICKET.expires + 1)
    with pytest.raises(TicketError, match="expired"):
        redeem(KEY, token)  # the real clock: NOW + 1 h is long past


def test_expired_ticket_redeems_without_the_expiry_check() -> None:
    token = issue(KEY, TICKET)
    assert redeem(KEY, token, now=TICKET.expires + 10**6, check_expiry=False) == TICKET


def test_expired_ticket_still_needs_its_mac_without_the_expiry_check() -> None:
    payload, _, mac = issue(KEY, TICKET).partition(".")
    with pytest.raises(TicketError):
        redeem(KEY, f"{payload}.{flip(mac, 0)}", check_expiry=False)


def test_payload_is_the_ticket_as_json() -> None:
    payload = issue(KEY, TICKET).partition(".")[0]
    assert json.loads(unb64(payload)) == TICKET.__dict__


# -- the server key ------------------------------------------------------------------------


def test_server_key_is_created_private_and_reused(home: Path) -> None:
    settings = get_settings()
    assert settings.secret_key is None
    key = server_key(settings)
    path = home / "secret_key"
    assert path.read_text(encoding="ascii").strip().encode() == key
    assert len(key) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert server_key(get_settings()) == key  # a second start reads the same key
    assert sorted(p.name for p in home.iterdir()) == ["secret_key"]  # no temporary left


def test_tickets_survive_a_restart(home: Path) -> None:
    token = issue(server_key(get_settings()), TICKET)
    assert redeem(server_key(get_settings()), token, now=NOW) == TICKET


def test_homes_do_not_share_keys(tmp_path: Path, home: Path) -> None:
    first = server_key(get_settings(home=tmp_path / "one"))
    second = server_key(get_settings(home=tmp_path / "two"))
    assert first != second


def test_configured_secret_key_wins(home: Path) -> None:
    key = server_key(get_settings(secret_key="configured-key"))
    assert key == b"configured-key"
    assert not (home / "secret_key").exists()


def test_concurrent_first_starts_agree_on_one_key(home: Path) -> None:
    settings = get_settings()
    count = 8
    barrier = threading.Barrier(count)
    keys: list[bytes] = []
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            keys.append(server_key(settings))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(keys) == count
    assert len(set(keys)) == 1
    assert keys[0]
    assert sorted(p.name for p in home.iterdir()) == ["secret_key"]


def test_an_empty_key_file_is_never_used_as_a_key(home: Path) -> None:
    """A half-written key file must not make every ticket forgeable with the empty key."""
    home.mkdir(parents=True)
    (home / "secret_key").write_text("", encoding="ascii")
    with pytest.raises(RuntimeError, match="empty"):
        server_key(get_settings())
