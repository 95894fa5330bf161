"""Object storage over fsspec: key layout, cache headers, atomic puts and CDN URLs."""

from __future__ import annotations

from .errors import ObjectNotFound, StorageConfigError, StorageError, TransientStorageError
from .factory import open_store
from .objects import Leftover, ListedObject, ObjectInfo, UploadTarget
from .store import ObjectStore

__all__ = [
    "Leftover",
    "ListedObject",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "StorageConfigError",
    "StorageError",
    "TransientStorageError",
    "UploadTarget",
    "open_store",
]
