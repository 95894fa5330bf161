"""Map filesystem and cloud SDK exceptions onto :mod:`.errors`, so callers see one tree.

SDK exception classes are looked up in ``sys.modules`` rather than imported: an SDK that was
never imported cannot have raised anything, and the cloud packages stay optional.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import ObjectNotFound, StorageError, TransientStorageError

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})

TRANSIENT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "EAGAIN",
        "EBUSY",
        "EINTR",
        "ETIMEDOUT",
        "ECONNRESET",
        "ECONNABORTED",
        "ECONNREFUSED",
        "EHOSTUNREACH",
        "ENETDOWN",
        "ENETRESET",
        "ENETUNREACH",
        "EPIPE",
        "EREMOTEIO",
    )
    if hasattr(errno, name)
)

THROTTLING_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "ServerBusy"}
)

# (module, class) pairs raised by the SDKs under s3fs, gcsfs and adlfs.
_SDK_ERRORS = (
    ("botocore.exceptions", "BotoCoreError"),
    ("botocore.exceptions", "ClientError"),
    ("aiohttp", "ClientError"),
    ("requests", "RequestException"),
    ("azure.core.exceptions", "AzureError"),
    ("google.auth.exceptions", "GoogleAuthError"),
    ("gcsfs.retry", "HttpError"),
)

# Transport-level failures: whatever their status, nothing reached a decision on the server.
_SDK_TRANSIENT = (
    ("botocore.exceptions", "HTTPClientError"),
    ("botocore.exceptions", "ConnectionError"),
    ("aiohttp", "ClientConnectionError"),
    ("aiohttp", "ClientPayloadError"),
    ("requests", "ConnectionError"),
    ("requests", "Timeout"),
    ("requests.exceptions", "ChunkedEncodingError"),
    ("azure.core.exceptions", "ServiceRequestError"),
    ("azure.core.exceptions", "ServiceResponseError"),
    ("google.auth.exceptions", "TransportError"),
)

_MISSING = (FileNotFoundError, IsADirectoryError, NotADirectoryError)


def _loaded(names: tuple[tuple[str, str], ...]) -> tuple[type[BaseException], ...]:
    """The named exception classes whose modules are already imported."""
    found: list[type[BaseException]] = []
    for module_name, class_name in names:
        cls = getattr(sys.modules.get(module_name), class_name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return tuple(found)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its explicit causes, since wrappers hide the SDK error underneath."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__


def _status(exc: BaseException) -> int | None:
    """The HTTP status an SDK error carries, whichever attribute that SDK keeps it in."""
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(status, int):
            return status
    for attribute in ("status_code", "status", "code"):
        value = getattr(exc, attribute, None)
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value < 600:
            return value
    return None


def _error_code(exc: BaseException) -> str | None:
    """The service's error code (botocore keeps it in the parsed response)."""
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return code if isinstance(code, str) else None
    return None


def _link_is_transient(exc: BaseException) -> bool:
    """Whether this one exception, ignoring its causes, says to try again later."""
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    if isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS:
        return True
    if _error_code(exc) in THROTTLING_CODES:
        return True
    status = _status(exc)
    if status is not None:
        return status in TRANSIENT_STATUS
    return isinstance(exc, _loaded(_SDK_TRANSIENT))


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same call later may succeed."""
    return any(_link_is_transient(link) for link in _chain(exc))


def is_boundary_error(exc: BaseException) -> bool:
    """Whether the exception came from I/O below us, as opposed to a bug to let surface."""
    boundary: tuple[type[BaseException], ...] = (OSError, *_loaded(_SDK_ERRORS))
    return any(isinstance(link, boundary) for link in _chain(exc))


def translate(exc: BaseException, action: str, *, lookup: bool = True) -> StorageError:
    """The storage error to raise ``from`` a lower-level exception.

    ``lookup`` says the action reads a key, so absence means ObjectNotFound; for a write,
    a missing bucket or directory is an ordinary failure.
    """
    if isinstance(exc, StorageError):
        return exc
    message = f"{action}: {type(exc).__name__}: {exc}"
    if lookup and any(isinstance(link, _MISSING) or _status(link) == 404 for link in _chain(exc)):
        return ObjectNotFound(message)
    if is_transient(exc):
        return TransientStorageError(message)
    return StorageError(message)


@contextmanager
def storage_errors(action: str, *, lookup: bool = True) -> Iterator[None]:
    """Re-raise I/O failures inside the block as storage errors chained to the original."""
    try:
        yield
    except StorageError:
        raise
    except Exception as e:
        if not is_boundary_error(e):
            raise
        raise translate(e, action, lookup=lookup) from e
