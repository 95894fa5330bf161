"""The object store every layer above uses: keys in, bytes and metadata out, one error tree."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .backends.base import Backend, modified_of
from .errors import StorageConfigError, StorageError
from .keys import url_path
from .objects import Leftover, ListedObject, NewObject, ObjectInfo, UploadTarget
from .translate import storage_errors
from .validation import check_key, check_prefix, is_reserved

_PROBE = b"mediamill write probe\n"

# The longest validity S3 (SigV4) and GCS (V4) accept for a signed URL.
MAX_UPLOAD_TARGET_LIFETIME = timedelta(days=7)


def _check_content_type(content_type: str) -> str:
    """Refuse an empty content type or one that could smuggle a header into a request."""
    if not isinstance(content_type, str) or not content_type.strip():
        raise ValueError("content_type is required")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in content_type):
        raise ValueError(f"invalid content_type {content_type!r}: control character")
    return content_type


def _whole_seconds(expires_in: timedelta) -> timedelta:
    """Signatures count validity in whole seconds; refuse what none of them can express."""
    seconds = int(expires_in.total_seconds())
    if seconds < 1 or expires_in > MAX_UPLOAD_TARGET_LIFETIME:
        raise ValueError(
            f"invalid expires_in {expires_in}: between 1 second and {MAX_UPLOAD_TARGET_LIFETIME}"
        )
    return timedelta(seconds=seconds)


class ObjectStore:
    """One bucket or directory of objects, addressed by keys relative to its root."""

    def __init__(self, backend: Backend, *, cdn_base_url: str | None = None) -> None:
        self._backend = backend
        self._cdn_base_url = cdn_base_url.rstrip("/") if cdn_base_url else None

    def __repr__(self) -> str:
        return f"ObjectStore({self.root_url!r}, cdn_base_url={self._cdn_base_url!r})"

    @property
    def root_url(self) -> str:
        """The URL of the store's root, as configured."""
        return self._backend.root_url

    @property
    def cdn_base_url(self) -> str | None:
        """The public base URL in front of the store, if any."""
        return self._cdn_base_url

    @property
    def fs(self) -> Any:
        """The fsspec filesystem, for diagnostics; writes must go through :meth:`put`."""
        return self._backend.fs

    @property
    def root(self) -> str:
        """The fsspec path of the store's root."""
        return self._backend.root

    @property
    def writes_batches(self) -> bool:
        """Whether :meth:`put_many` is one operation here (a local store) or one per object."""
        return self._backend.writes_batches

    def put(self, key: str, data: bytes, *, content_type: str, cache_control: str) -> None:
        """Write a whole object with its HTTP metadata; it is never visible half-written."""
        path = self._put_path(key, content_type, cache_control)
        with storage_errors(f"put {key!r}", lookup=False):
            self._backend.write(
                path, bytes(data), content_type=content_type, cache_control=cache_control
            )

    def put_file(self, key: str, source: Path, *, content_type: str, cache_control: str) -> None:
        """:meth:`put` with the bytes of a local file, copied without a pass through Python
        where the backend can (a local store copies in the kernel)."""
        self.put_many([NewObject(key, content_type, source=source)], cache_control=cache_control)

    def put_many(self, objects: Sequence[NewObject], *, cache_control: str) -> None:
        """Write several objects, each whole or not at all as with :meth:`put`.

        A local store writes every one before it makes any durable, so the filesystem
        commits its journal once for the batch instead of three times per object; other
        stores write them one by one (see :attr:`writes_batches`).
        """
        if not objects:
            return
        items = [(self._put_path(o.key, o.content_type, cache_control), o) for o in objects]
        first = objects[0].key
        what = f"put {first!r}" + (f" and {len(objects) - 1} more" if len(objects) > 1 else "")
        with storage_errors(what, lookup=False):
            self._backend.write_many(items, cache_control=cache_control)

    def _put_path(self, key: str, content_type: str, cache_control: str) -> str:
        """The backend path of a key about to be written, once the write's arguments check."""
        check_key(key)
        if not content_type or not cache_control:
            raise ValueError("content_type and cache_control are required on every object")
        return self._backend.path(key)

    def get(self, key: str) -> bytes:
        """The object's bytes; ObjectNotFound if there is none."""
        check_key(key)
        with storage_errors(f"get {key!r}"):
            return self._backend.read(self._backend.path(key))

    def exists(self, key: str) -> bool:
        """Whether an object is stored at the key; I/O failures raise instead of answering."""
        check_key(key)
        with storage_errors(f"exists {key!r}"):
            return self._backend.is_file(self._backend.path(key))

    def head(self, key: str) -> ObjectInfo:
        """Size, content type and cache control, without reading the bytes."""
        check_key(key)
        with storage_errors(f"head {key!r}"):
            size, content_type, cache_control = self._backend.head(self._backend.path(key))
        return ObjectInfo(key, size, content_type, cache_control)

    def delete_many(self, keys: Iterable[str]) -> int:
        """Delete the keys that exist, ignore the rest, and count what was deleted."""
        unique = list(dict.fromkeys(check_key(key) for key in keys))
        if not unique:
            return 0
        with storage_errors(f"delete {len(unique)} object(s)"):
            return self._backend.delete([self._backend.path(key) for key in unique])

    def list_prefix(self, prefix: str = "") -> Iterator[ListedObject]:
        """Every object whose key starts with ``prefix`` (a plain string prefix), by key."""
        check_prefix(prefix)
        return self._list(prefix)

    def _list(self, prefix: str) -> Iterator[ListedObject]:
        """Generator behind :meth:`list_prefix`, so a bad prefix fails at the call."""
        directory = prefix.rpartition("/")[0]
        search = self._backend.path(directory) if directory else self._backend.root
        with storage_errors(f"list {prefix!r}"):
            found = self._backend.find(search)
        for path in sorted(found):
            info = found[path]
            key = self._backend.relative(path)
            if key is None or not key.startswith(prefix) or is_reserved(key):
                continue
            if info.get("type", "file") != "file":
                continue
            yield ListedObject(key, int(info["size"]), modified_of(info))

    def list_leftovers(self, prefix: str = "") -> list[Leftover]:
        """Files that interrupted writes left under ``prefix``: temp files, orphaned metadata.

        They are the store's own bookkeeping, never objects: listings skip them, no key can
        name them, and only :meth:`delete_leftover` removes them.
        """
        check_prefix(prefix)
        directory = prefix.rpartition("/")[0]
        search = self._backend.path(directory) if directory else self._backend.root
        with storage_errors(f"list leftovers {prefix!r}"):
            found = self._backend.find_leftovers(search)
        leftovers = []
        for path in sorted(found):
            key = self._backend.relative(path)
            object_path, size, modified = found[path]
            object_key = self._backend.relative(object_path)
            if key is not None and object_key is not None and key.startswith(prefix):
                leftovers.append(Leftover(key, object_key, size, modified))
        return leftovers

    def delete_leftover(self, key: str) -> bool:
        """Delete one file :meth:`list_leftovers` reported; False if it is already gone.

        Refuses an object's key, so this can never delete what the catalog points at.
        """
        directory, _, name = key.rpartition("/")
        if directory:
            check_key(directory)
        if not name.startswith(".") or name in (".", ".."):
            raise ValueError(f"invalid leftover {key!r}: not the store's own bookkeeping")
        with storage_errors(f"delete leftover {key!r}", lookup=False):
            return self._backend.delete_leftover(self._backend.path(key))

    def key_for_event(self, bucket: str, object_key: str) -> str | None:
        """The key of an object a bucket notification names; None if it is not in this store."""
        key = self._backend.notified_key(bucket, object_key)
        if key is None:
            return None
        try:
            return check_key(key)
        except ValueError:
            return None

    def url(self, key: str) -> str:
        """The public CDN URL if one is configured, otherwise the backend's own URL."""
        check_key(key)
        if self._cdn_base_url:
            return f"{self._cdn_base_url}/{url_path(key)}"
        return self._backend.url(key)

    def upload_target(
        self, key: str, *, content_type: str, expires_in: timedelta
    ) -> UploadTarget | None:
        """A presigned PUT a client sends the object's bytes to, or None if unsupported.

        The bytes then bypass the API entirely. The object gets the signed content type and
        no Cache-Control: staged uploads are inputs to ingest, never published as they are.
        """
        check_key(key)
        _check_content_type(content_type)
        lifetime = _whole_seconds(expires_in)
        # Signatures date themselves in whole seconds, at or after this instant, so the
        # reported expiry is never later than the one the service enforces.
        issued = datetime.now(UTC).replace(microsecond=0)
        with storage_errors(f"upload target {key!r}", lookup=False):
            signed = self._backend.presign_put(
                self._backend.path(key), content_type=content_type, expires_in=lifetime
            )
        if signed is None:
            return None
        url, headers = signed
        return UploadTarget(url=url, method="PUT", headers=headers, expires_at=issued + lifetime)

    def check_writable(self) -> None:
        """Write, read back and delete a probe object; StorageConfigError says what failed."""
        path = self._backend.path(f".mediamill-probe-{uuid.uuid4().hex}")
        try:
            with storage_errors("write probe", lookup=False):
                self._backend.write(
                    path, _PROBE, content_type="text/plain", cache_control="no-store"
                )
                try:
                    readback = self._backend.read(path)
                finally:
                    deleted = self._backend.delete([path])
        except StorageError as e:
            raise StorageConfigError(f"storage at {self.root_url} is not usable: {e}") from e
        if readback != _PROBE or deleted != 1:
            raise StorageConfigError(
                f"storage at {self.root_url} did not return what was written to it"
            )
