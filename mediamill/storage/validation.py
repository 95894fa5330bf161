"""Checks on every key the store is handed: defence in depth behind :mod:`.keys`.

A key is a ``/``-separated relative path. Segments starting with ``.`` are reserved for the
store's own bookkeeping (metadata sidecars, temporary files, write probes), which is what
keeps them out of listings on every backend.
"""

from __future__ import annotations

import re

MAX_KEY_BYTES = 1024

_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\\\u202a-\u202e\u2066-\u2069]")


def is_reserved(key: str) -> bool:
    """Tell the store's own files apart from objects, so listings can skip them."""
    return any(segment.startswith(".") for segment in key.split("/"))


def _check_segments(value: str, what: str, segments: list[str]) -> None:
    """Reject segments that would resolve differently on a filesystem than on an object store."""
    for segment in segments:
        if segment == "":
            raise ValueError(f"invalid {what} {value!r}: empty segment")
        if segment in (".", ".."):
            raise ValueError(f"invalid {what} {value!r}: {segment!r} segment")
        if segment.startswith("."):
            raise ValueError(f"invalid {what} {value!r}: segments starting with '.' are reserved")


def _check_characters(value: str, what: str) -> None:
    """Reject absolute paths, backslashes, control and bidi characters, and over-long keys."""
    if value.startswith("/"):
        raise ValueError(f"invalid {what} {value!r}: must be relative")
    if _FORBIDDEN.search(value):
        raise ValueError(f"invalid {what} {value!r}: backslash, control or bidi character")
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"invalid {what} {value!r}: not encodable as UTF-8") from e
    if len(encoded) > MAX_KEY_BYTES:
        raise ValueError(f"invalid {what}: longer than {MAX_KEY_BYTES} bytes")


def check_key(key: str) -> str:
    """Return the key unchanged if it names an object safely, else raise ValueError."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"invalid key {key!r}: must be a non-empty string")
    _check_characters(key, "key")
    _check_segments(key, "key", key.split("/"))
    return key


def check_prefix(prefix: str) -> str:
    """Like :func:`check_key`, but allow the empty prefix and a partial last segment."""
    if not isinstance(prefix, str):
        raise ValueError(f"invalid prefix {prefix!r}: must be a string")
    if not prefix:
        return prefix
    _check_characters(prefix, "prefix")
    *parents, last = prefix.split("/")
    _check_segments(prefix, "prefix", parents)
    if last.startswith("."):
        raise ValueError(f"invalid prefix {prefix!r}: segments starting with '.' are reserved")
    return prefix
