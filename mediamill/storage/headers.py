"""Cache-Control values: published keys never change, so CDNs may keep them for a year."""

from __future__ import annotations

IMMUTABLE = "public, max-age=31536000, immutable"
MUTABLE = "public, max-age=604800"


def cache_control(immutable: bool) -> str:
    """Pick the header so callers state intent instead of repeating header strings."""
    return IMMUTABLE if immutable else MUTABLE
