"""Signed upload links: the local answer to a presigned PUT.

``stagedUploadsCreate`` hands out ``PUT {api}/uploads/{ticket}``; the ticket names the
incoming key, the byte cap and an expiry, signed with the server's key, so the upload
route needs no bearer token and no state: a ticket nobody tampered with is the permission.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from mediamill.settings import Settings


class TicketError(Exception):
    """A ticket that is malformed, tampered with or expired."""


@dataclass(frozen=True)
class UploadTicket:
    """What one signed upload link allows: one object, at most ``max_bytes``, until ``expires``."""

    key: str
    workspace: str
    max_bytes: int
    content_type: str
    expires: int
    filename: str | None = None


def server_key(settings: Settings) -> bytes:
    """``MEDIAMILL_SECRET_KEY``, or a random key kept (mode 0600) under ``MEDIAMILL_HOME``."""
    if settings.secret_key:
        return settings.secret_key.encode()
    path: Path = settings.home / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _create_key_file(path)
    key = path.read_text(encoding="ascii").strip()
    if not key:
        raise RuntimeError(f"{path} is empty; delete it to generate a new key")
    return key.encode()


def _create_key_file(path: Path) -> None:
    """Write a fresh key to ``path`` atomically, unless another process got there first.

    The key is written in full to a private (0600) temporary file and then hard-linked into
    place, so no process ever reads a half-written (empty) key file, and a losing racer
    reads the winner's key instead of replacing it.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):  # another process won; read theirs
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, b"upload:" + payload.encode(), hashlib.sha256).digest())


def issue(key: bytes, ticket: UploadTicket) -> str:
    """The URL-safe, signed form of ``ticket``."""
    payload = _b64(json.dumps(asdict(ticket), separators=(",", ":")).encode())
    return f"{payload}.{_mac(key, payload)}"


def redeem(
    key: bytes, token: str, now: float | None = None, *, check_expiry: bool = True
) -> UploadTicket:
    """The ticket behind ``token``; TicketError unless it is intact (and unexpired).

    ``mediaCreate`` skips the expiry: the PUT was checked when it happened, and the ticket
    still proves which workspace staged the key.
    """
    payload, _, mac = token.partition(".")
    if not payload or not mac or len(token) > 4096:
        raise TicketError("malformed upload ticket")
    if not hmac.compare_digest(_mac(key, payload).encode(), mac.encode()):
        raise TicketError("upload ticket signature does not match")
    try:
        ticket = UploadTicket(**json.loads(_unb64(payload)))
    except (ValueError, TypeError) as error:
        raise TicketError("malformed upload ticket") from error
    if check_expiry and (time.time() if now is None else now) > ticket.expires:
        raise TicketError("upload ticket has expired")
    return ticket
