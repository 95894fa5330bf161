"""What the store reports about objects: plain frozen records, free of any backend type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True, slots=True)
class NewObject:
    """One object of a batch write: its key, its content type, and its bytes or a local file."""

    key: str
    content_type: str
    data: bytes | None = None
    source: Path | None = None

    def __post_init__(self) -> None:
        if (self.data is None) == (self.source is None):
            raise ValueError("a new object takes either its bytes or a source file")


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One object's metadata as ``head()`` reads it; ``None`` where the object carries none."""

    key: str
    size: int
    content_type: str | None
    cache_control: str | None


@dataclass(frozen=True, slots=True)
class ListedObject:
    """One entry of a listing: what a single listing call returns without a request per key."""

    key: str
    size: int
    modified: datetime


@dataclass(frozen=True, slots=True)
class Leftover:
    """A file an interrupted write left: a temp file, or metadata whose object never landed.

    ``key`` is the file's own (its last segment starts with ``.``, so no object key can name
    it); ``object_key`` is the object whose write left it.
    """

    key: str
    object_key: str
    size: int
    modified: datetime


@dataclass(frozen=True, slots=True)
class UploadTarget:
    """Where a client sends one object's bytes itself, so uploads bypass the API.

    The client must send exactly ``method`` to ``url`` with every header in ``headers``
    (the signature covers them); the target stops working at ``expires_at``, or at most a
    second after it.
    """

    url: str
    method: str
    headers: dict[str, str]
    expires_at: datetime
