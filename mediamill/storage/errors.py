"""The storage exception tree; lower-level errors are mapped onto it at the boundary.

::

    StorageError                  any failure of the object store
    ├── TransientStorageError     network blips, timeouts, 5xx, throttling: retry with backoff
    ├── ObjectNotFound            no object at that key
    └── StorageConfigError        bad URL, missing backend package, unwritable root
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class, so callers can catch every storage failure in one clause."""


class TransientStorageError(StorageError):
    """The same call may succeed later, so callers retry it with backoff and jitter."""


class ObjectNotFound(StorageError):  # noqa: N818 - name fixed by the public interface
    """Distinct from other failures because a missing object is often an expected answer."""


class StorageConfigError(StorageError):
    """Retrying cannot help: the configuration or the installation has to change."""
