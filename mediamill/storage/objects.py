"""What the store reports about objects: plain frozen records, free of any backend type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


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
