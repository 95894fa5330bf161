"""Opaque page cursors: a position in the newest-first order, nothing more.

A cursor carries no workspace and grants nothing: every page query is scoped to the
caller's workspace, so another workspace's cursor only names a point in time.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

from mediamill.catalog.library import Position


class CursorError(ValueError):
    """A cursor this API did not make."""


def encode(position: Position) -> str:
    raw = f"{position.created_at.isoformat()}|{position.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> Position:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, media_id = raw.partition("|")
        return Position(datetime.fromisoformat(created), uuid.UUID(media_id))
    except (ValueError, UnicodeDecodeError) as error:
        raise CursorError(f"invalid cursor {cursor[:64]!r}") from error
