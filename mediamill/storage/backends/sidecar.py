"""HTTP metadata for filesystems that keep none: a hidden JSON file beside each object.

The object ``dir/name`` has its metadata in ``dir/.name.meta.json``, holding
``{"cache_control": ..., "content_type": ...}``. Keys never have segments starting with
``.``, so a sidecar can never collide with an object and listings skip it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any

from .base import Backend, Head

SIDECAR_SUFFIX = ".meta.json"


def sidecar_path(path: str) -> str:
    """Where the metadata of the object at ``path`` lives."""
    directory, _, name = path.rpartition("/")
    return f"{directory}/.{name}{SIDECAR_SUFFIX}"


def encode_metadata(*, content_type: str, cache_control: str) -> bytes:
    """The sidecar's bytes."""
    document = {"cache_control": cache_control, "content_type": content_type}
    return json.dumps(document, sort_keys=True).encode("utf-8")


def decode_metadata(raw: bytes) -> tuple[str | None, str | None]:
    """Content type and cache control from a sidecar; a damaged one just means unknown."""
    try:
        document: Any = json.loads(raw)
    except ValueError:
        return None, None
    if not isinstance(document, dict):
        return None, None
    content_type = document.get("content_type")
    cache_control = document.get("cache_control")
    return (
        content_type if isinstance(content_type, str) else None,
        cache_control if isinstance(cache_control, str) else None,
    )


class SidecarBackend(Backend):
    """Reads and deletes shared by the backends that store metadata in sidecars."""

    def read_sidecar(self, path: str) -> bytes | None:
        """The raw sidecar of an object, or None if it has none."""
        try:
            return bytes(self.fs.cat_file(sidecar_path(path)))
        except FileNotFoundError:
            return None

    def head(self, path: str) -> Head:
        """Size from the filesystem, HTTP metadata from the sidecar."""
        info = self.fs.info(path)
        if info.get("type") != "file":
            raise FileNotFoundError(path)
        raw = self.read_sidecar(path)
        content_type, cache_control = (None, None) if raw is None else decode_metadata(raw)
        return Head(int(info["size"]), content_type, cache_control)

    def delete(self, paths: Sequence[str]) -> int:
        """Remove each object, then its sidecar, so no object is ever left without metadata."""
        deleted = 0
        for path in paths:
            try:
                self.fs.rm_file(path)
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                continue
            deleted += 1
            self.discard(sidecar_path(path))
        return deleted

    def discard(self, path: str) -> None:
        """Remove a file of our own if it is there."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(path)
