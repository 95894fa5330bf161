"""The ``az://`` backend (adlfs): Azure Blob Storage and Azurite."""

from __future__ import annotations

from typing import Any

from .base import Head
from .remote import RemoteBackend


def _setting(settings: Any, name: str) -> str | None:
    """One field of the SDK's ContentSettings, which adlfs may hand back as object or dict."""
    value = settings.get(name) if isinstance(settings, dict) else getattr(settings, name, None)
    return value if isinstance(value, str) else None


class AzureBackend(RemoteBackend):
    """HTTP metadata travels as the blob's ContentSettings."""

    package = "adlfs"

    def write(self, path: str, data: bytes, *, content_type: str, cache_control: str) -> None:
        """One block-blob upload, committed only once complete."""
        self.fs.pipe_file(
            path,
            data,
            content_settings={"content_type": content_type, "cache_control": cache_control},
        )

    def head(self, path: str) -> Head:
        """Blob properties carry the ContentSettings."""
        info = self.fs.info(path)
        if info.get("type") != "file":
            raise FileNotFoundError(path)
        settings = info.get("content_settings")
        return Head(
            int(info["size"]),
            _setting(settings, "content_type"),
            _setting(settings, "cache_control"),
        )
