"""Build the configured store at the edges (CLI, API request, flow entry), never on import."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .backends.azure import AzureBackend
from .backends.base import Backend
from .backends.gcs import GCSBackend
from .backends.local import LocalBackend
from .backends.memory import MemoryBackend
from .backends.s3 import S3Backend
from .errors import StorageConfigError
from .store import ObjectStore

if TYPE_CHECKING:
    from mediamill.settings import Settings

BACKENDS: dict[str, type[Backend]] = {
    "": LocalBackend,
    "file": LocalBackend,
    "memory": MemoryBackend,
    "s3": S3Backend,
    "gs": GCSBackend,
    "gcs": GCSBackend,
    "az": AzureBackend,
    "abfs": AzureBackend,
}


def open_store(settings: Settings) -> ObjectStore:
    """The store at ``settings.resolved_storage_url``, fronted by ``cdn_base_url`` if set."""
    url = settings.resolved_storage_url
    scheme = urlsplit(url).scheme
    backend_type = BACKENDS.get(scheme)
    if backend_type is None:
        raise StorageConfigError(
            f"unsupported storage URL scheme {scheme!r}; use one of "
            f"{', '.join(sorted(name for name in BACKENDS if name))}"
        )
    backend = backend_type.from_url(url, dict(settings.storage_options))
    return ObjectStore(backend, cdn_base_url=settings.cdn_base_url)
