"""The small interface each backend implements; :class:`ObjectStore` holds everything shared.

Backends work on full fsspec paths (root included) and raise whatever their filesystem
raises: the store validates keys and maps exceptions at its own boundary.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Self

from ..objects import NewObject

# Where each fsspec backend reports the last modification: s3fs, adlfs, local and gcsfs,
# gcsfs before it added ``mtime``, memory.
_MODIFIED_FIELDS = ("LastModified", "last_modified", "mtime", "updated", "created")


class Head(NamedTuple):
    """What a backend knows about one object without reading its bytes."""

    size: int
    content_type: str | None
    cache_control: str | None


def modified_of(info: dict[str, Any]) -> datetime:
    """The modification time in an fsspec info dict, as an aware UTC datetime."""
    for field in _MODIFIED_FIELDS:
        value = info.get(field)
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, tz=UTC)
        if isinstance(value, str) and value:
            parsed = datetime.fromisoformat(value)
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError(f"no modification time in listing entry {info.get('name')!r}")


class Backend(ABC):
    """One kind of filesystem: how it writes, describes, deletes and addresses objects."""

    # Whether `write_many` commits a batch as one operation (else it writes one by one).
    writes_batches: ClassVar[bool] = False

    def __init__(self, fs: Any, root: str, root_url: str) -> None:
        self.fs = fs
        self.root = root
        self.root_url = root_url.rstrip("/")
        self._prefix = root if root.endswith("/") else f"{root}/"

    @classmethod
    @abstractmethod
    def from_url(cls, url: str, options: dict[str, Any]) -> Self:
        """Build the backend for a store URL, with options handed to the fsspec filesystem."""

    @abstractmethod
    def write(self, path: str, data: bytes, *, content_type: str, cache_control: str) -> None:
        """Publish the whole object at once: readers see the old object or the new one."""

    def write_file(self, path: str, source: Path, *, content_type: str, cache_control: str) -> None:
        """As :meth:`write`, from a local file; backends that can copy it better override."""
        self.write(
            path, source.read_bytes(), content_type=content_type, cache_control=cache_control
        )

    def write_many(self, items: Sequence[tuple[str, NewObject]], *, cache_control: str) -> None:
        """Publish each object whole, one after another; backends that can batch override."""
        for path, item in items:
            if item.source is not None:
                self.write_file(
                    path, item.source, content_type=item.content_type, cache_control=cache_control
                )
            else:
                assert item.data is not None  # NewObject holds bytes or a source
                self.write(
                    path, item.data, content_type=item.content_type, cache_control=cache_control
                )

    @abstractmethod
    def head(self, path: str) -> Head:
        """Size and HTTP metadata of one object; FileNotFoundError if there is none."""

    @abstractmethod
    def delete(self, paths: Sequence[str]) -> int:
        """Delete the objects that exist, ignore the others, and count the deletions."""

    def path(self, key: str) -> str:
        """The fsspec path of a key."""
        return f"{self._prefix}{key}"

    def relative(self, path: str) -> str | None:
        """The key of an fsspec path, or None if the path lies outside the root."""
        return path[len(self._prefix) :] if path.startswith(self._prefix) else None

    def notified_key(self, bucket: str, object_key: str) -> str | None:
        """The key of an object a bucket notification names, or None if outside the root.

        Bucket stores address ``bucket/key``; a local or memory store has no bucket, so a
        notification's key is taken as relative to the root.
        """
        return object_key

    def read(self, path: str) -> bytes:
        """The object's bytes."""
        return bytes(self.fs.cat_file(path))

    def is_file(self, path: str) -> bool:
        """Whether an object exists, letting every error but absence propagate."""
        try:
            info = self.fs.info(path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        return bool(info.get("type") == "file")

    def find(self, path: str) -> dict[str, dict[str, Any]]:
        """Every file below ``path`` with its info, in one recursive listing."""
        found: dict[str, dict[str, Any]] = self.fs.find(path, detail=True)
        return found

    def find_leftovers(self, path: str) -> dict[str, tuple[str, int, datetime]]:
        """The files below ``path`` that interrupted writes left behind (temp files, metadata
        of objects never stored): the path of the object each belongs to, size, modification.

        None by default: a store that publishes an object in one request leaves nothing
        when the writer dies. Backends that write in steps override this.
        """
        return {}

    def delete_leftover(self, path: str) -> bool:
        """Delete one file `find_leftovers` reported; False if it is already gone."""
        try:
            self.fs.rm_file(path)
        except FileNotFoundError:
            return False
        return True

    def url(self, key: str) -> str:
        """The backend's own URL for a key, as fsspec would open it."""
        return f"{self.root_url}/{key}"

    def presign_put(
        self, path: str, *, content_type: str, expires_in: timedelta
    ) -> tuple[str, dict[str, str]] | None:
        """A signed URL and the headers a client must send to PUT the object's bytes.

        None when the backend cannot hand out such URLs (no service to sign for, or
        credentials that cannot sign); callers then receive the upload themselves.
        """
        return None
