"""``Mediamill-Signature``: HMAC-SHA256 over ``"{t}.{raw body}"``; one t, one v1, +-300 s."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediamill.api.signatures import (
    HEADER,
    MAX_HEADER_LENGTH,
    SignatureError,
    parse_header,
    sign,
    verify,
)

SECRET = "whsec_test"
NOW = 1_750_000_000
TOLERANCE = 300
BODY = b'{"id":"evt_1","type":"upload.completed","workspace":"acme","key":"incoming/acme/a.jpg"}'


def check(header: str | None, body: bytes = BODY, secrets: tuple[str, ...] = (SECRET,)) -> None:
    verify(header, body, secrets, tolerance_seconds=TOLERANCE, now=NOW)


def digest(secret: str, body: bytes, timestamp: int) -> str:
    """The signature computed independently of the module under test."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def test_sign_matches_the_documented_construction() -> None:
    assert sign(SECRET, BODY, NOW) == f"t={NOW},v1={digest(SECRET, BODY, NOW)}"


def test_round_trip() -> None:
    check(sign(SECRET, BODY, NOW))


def test_round_trip_with_whitespace_around_fields() -> None:
    check(f" t={NOW} , v1={digest(SECRET, BODY, NOW)} ")


def test_parse_header_gives_timestamp_and_signature() -> None:
    assert parse_header(f"t={NOW},v1=abc") == (NOW, "abc")
    assert parse_header(f"v1=abc,t={NOW}") == (NOW, "abc")


def test_tampered_body_is_refused() -> None:
    header = sign(SECRET, BODY, NOW)
    with pytest.raises(SignatureError, match="does not match"):
        check(header, BODY.replace(b"acme", b"acmf"))


def test_signature_over_another_body_is_refused() -> None:
    other = b'{"id":"evt_2","type":"entity.deleted","workspace":"acme"}'
    with pytest.raises(SignatureError, match="does not match"):
        check(sign(SECRET, other, NOW))


def test_timestamp_is_part_of_the_signed_message() -> None:
    """A captured signature cannot be moved to a fresher timestamp."""
    captured = digest(SECRET, BODY, NOW - 1000)
    with pytest.raises(SignatureError, match="does not match"):
        check(f"t={NOW},v1={captured}")


@pytest.mark.parametrize("offset", [-301, 301, -10_000, 10_000])
def test_timestamp_outside_the_window_is_refused(offset: int) -> None:
    with pytest.raises(SignatureError, match="tolerance"):
        check(sign(SECRET, BODY, NOW + offset))


@pytest.mark.parametrize("offset", [-299, 299, -300, 300, 0])
def test_timestamp_inside_the_window_is_accepted(offset: int) -> None:
    check(sign(SECRET, BODY, NOW + offset))


def test_two_v1_values_are_refused_even_if_one_is_right() -> None:
    good = digest(SECRET, BODY, NOW)
    for header in (f"t={NOW},v1={good},v1={'0' * 64}", f"t={NOW},v1={'0' * 64},v1={good}"):
        with pytest.raises(SignatureError, match="exactly one"):
            check(header)


def test_two_timestamps_are_refused() -> None:
    good = digest(SECRET, BODY, NOW)
    with pytest.raises(SignatureError, match="exactly one"):
        check(f"t={NOW},t={NOW},v1={good}")
    with pytest.raises(SignatureError, match="exactly one"):
        check(f"t={NOW},v1={good},t={NOW - 1}")


@pytest.mark.parametrize("header", [None, ""])
def test_missing_header_is_refused(header: str | None) -> None:
    with pytest.raises(SignatureError, match=f"missing {HEADER}"):
        check(header)


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        f"t={NOW}",
        "v1=" + "0" * 64,
        f"t={NOW};v1={'0' * 64}",
        f"t=,v1={'0' * 64}",
        f"t={NOW},v1=",
        f"t={NOW},,v1={'0' * 64}",
        f"t=-{NOW},v1={'0' * 64}",
        f"t={NOW}.5,v1={'0' * 64}",
        f"t=0x10,v1={'0' * 64}",
        f"t=１２３,v1={'0' * 64}",  # full-width digits: isdigit() but not a unix time
        f"t={'9' * 13},v1={'0' * 64}",
        f"t={NOW},v1={'0' * MAX_HEADER_LENGTH}",
        f"t={NOW},v0={'0' * 64}",
    ],
)
def test_malformed_header_is_refused(header: str) -> None:
    with pytest.raises(SignatureError):
        check(header)


def test_wrong_secret_is_refused() -> None:
    with pytest.raises(SignatureError, match="does not match"):
        check(sign("whsec_other", BODY, NOW))


def test_no_secret_refuses_everything() -> None:
    with pytest.raises(SignatureError, match="does not match"):
        check(sign(SECRET, BODY, NOW), secrets=())


def test_any_of_several_active_secrets_verifies() -> None:
    check(sign("whsec_new", BODY, NOW), secrets=("whsec_old", "whsec_new"))
    with pytest.raises(SignatureError):
        check(sign("whsec_gone", BODY, NOW), secrets=("whsec_old", "whsec_new"))


def test_uppercase_hex_is_not_the_signature() -> None:
    with pytest.raises(SignatureError, match="does not match"):
        check(f"t={NOW},v1={digest(SECRET, BODY, NOW).upper()}")


# -- properties --------------------------------------------------------------------------

bodies = st.binary(max_size=2048)
secrets = st.text(min_size=1, max_size=64)
stamps = st.integers(min_value=NOW - TOLERANCE, max_value=NOW + TOLERANCE)


@settings(max_examples=200, deadline=None)
@given(body=bodies, secret=secrets, stamp=stamps)
def test_any_body_signed_with_a_secret_verifies(body: bytes, secret: str, stamp: int) -> None:
    verify(sign(secret, body, stamp), body, [secret], tolerance_seconds=TOLERANCE, now=NOW)


@settings(max_examples=200, deadline=None)
@given(body=bodies.filter(bool), secret=secrets, stamp=stamps, data=st.data())
def test_any_single_byte_change_of_the_body_fails(
    body: bytes, secret: str, stamp: int, data: st.DataObject
) -> None:
    header = sign(secret, body, stamp)
    index = data.draw(st.integers(0, len(body) - 1), label="index")
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != body[index]), label="byte")
    changed = body[:index] + bytes([byte]) + body[index + 1 :]
    with pytest.raises(SignatureError):
        verify(header, changed, [secret], tolerance_seconds=TOLERANCE, now=NOW)


@settings(max_examples=300, deadline=None)
@given(body=bodies, secret=secrets, stamp=stamps, data=st.data())
def test_any_single_byte_change_of_the_signature_fails(
    body: bytes, secret: str, stamp: int, data: st.DataObject
) -> None:
    """Any byte of the header: the timestamp, the separators, the scheme name or the hex."""
    header = sign(secret, body, stamp).encode("latin-1")
    index = data.draw(st.integers(0, len(header) - 1), label="index")
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != header[index]), label="byte")
    changed = (header[:index] + bytes([byte]) + header[index + 1 :]).decode("latin-1")
    with pytest.raises(SignatureError):
        verify(changed, body, [secret], tolerance_seconds=TOLERANCE, now=NOW)


@settings(max_examples=100, deadline=None)
@given(body=bodies, secret=secrets, other=secrets, stamp=stamps)
def test_another_secret_never_verifies(body: bytes, secret: str, other: str, stamp: int) -> None:
    if other == secret:
        other += "x"
    with pytest.raises(SignatureError):
        verify(sign(other, body, stamp), body, [secret], tolerance_seconds=TOLERANCE, now=NOW)


@settings(max_examples=200, deadline=None)
@given(header=st.text(max_size=200), body=bodies)
def test_arbitrary_headers_only_ever_raise_signature_error(header: str, body: bytes) -> None:
    with pytest.raises(SignatureError):
        verify(header, body, [SECRET], tolerance_seconds=TOLERANCE, now=NOW)
