"""The ``gs://`` backend (gcsfs): Google Cloud Storage and its emulators."""

from __future__ import annotations

from .base import Head
from .remote import RemoteBackend


class GCSBackend(RemoteBackend):
    """HTTP metadata travels as the object's ``contentType`` and ``cacheControl`` fields."""

    package = "gcsfs"

    def write(self, path: str, data: bytes, *, content_type: str, cache_control: str) -> None:
        """One upload, visible only once complete."""
        self.fs.pipe_file(
            path,
            data,
            content_type=content_type,
            fixed_key_metadata={"cache_control": cache_control},
        )

    def head(self, path: str) -> Head:
        """The object resource carries both fields."""
        info = self.fs.info(path)
        if info.get("type") != "file":
            raise FileNotFoundError(path)
        return Head(int(info["size"]), info.get("contentType"), info.get("cacheControl"))
