"""Original filenames are untrusted text: keep them only as clean, capped metadata."""

from __future__ import annotations

import unicodedata

MAX_FILENAME_LENGTH = 255
# Control, format (RTLO, zero-width), surrogate, private-use and unassigned characters.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def display_filename(raw: str, max_length: int = MAX_FILENAME_LENGTH) -> str:
    """The last path segment, without invisible or control characters, at most ``max_length``.

    Never used to build a storage key; HTML escaping happens where it is rendered.
    """
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", name)
    name = "".join(ch for ch in name if unicodedata.category(ch) not in _DROPPED_CATEGORIES)
    name = name.strip().lstrip(".")
    if len(name) > max_length:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            name = stem[: max_length - len(extension) - 1] + "." + extension
        else:
            name = name[:max_length]
    return name or "upload"
