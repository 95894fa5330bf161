"""Webhook signatures: ``Mediamill-Signature: t=<unix>,v1=<hex>``.

``v1`` is HMAC-SHA256 over ``"{t}.{raw body}"`` with the workspace's secret. The body is
signed as sent, byte for byte, so nothing is parsed before the check passes; the
timestamp bounds replay of a captured request to the tolerance window.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable

HEADER = "Mediamill-Signature"
SCHEME = "v1"
MAX_HEADER_LENGTH = 1024


class SignatureError(Exception):
    """Why a signature was refused; the API answers 401 with this message."""


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value a sender puts on ``body`` (also used by tests and the README)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},{SCHEME}={digest.hexdigest()}"


def parse_header(header: str) -> tuple[int, str]:
    """The timestamp and the one ``v1`` signature; anything ambiguous is refused."""
    if len(header) > MAX_HEADER_LENGTH:
        raise SignatureError("signature header too long")
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or not value:
            raise SignatureError("malformed signature header")
        fields.setdefault(name, []).append(value)
    timestamps, signatures = fields.get("t", []), fields.get(SCHEME, [])
    if len(timestamps) != 1 or len(signatures) != 1:
        raise SignatureError(f"signature header needs exactly one t= and one {SCHEME}=")
    if not timestamps[0].isascii() or not timestamps[0].isdigit() or len(timestamps[0]) > 12:
        raise SignatureError("signature timestamp is not a unix time")
    # A v1 value is hex; anything else can never match, and a lone surrogate would not even
    # encode for the comparison.
    if not signatures[0].isascii():
        raise SignatureError("signature is not hex")
    return int(timestamps[0]), signatures[0]


def verify(
    header: str | None,
    body: bytes,
    secrets: Iterable[str],
    *,
    tolerance_seconds: int,
    now: float | None = None,
) -> None:
    """Raise SignatureError unless one of ``secrets`` signed ``body`` within the tolerance."""
    if not header:
        raise SignatureError(f"missing {HEADER} header")
    timestamp, signature = parse_header(header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise SignatureError("signature timestamp is outside the tolerance window")
    expected_any = False
    for secret in secrets:
        expected = sign(secret, body, timestamp).rpartition("=")[2]
        # compare_digest on every secret, so timing says nothing about which one was close.
        expected_any |= hmac.compare_digest(expected.encode(), signature.encode())
    if not expected_any:
        raise SignatureError("signature does not match")
