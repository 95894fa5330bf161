"""The ``file://`` backend: a directory tree, written atomically with temp files and renames.

A put writes the sidecar and the object to hidden temp files in the target directory,
fsyncs them, renames the sidecar and then the object into place with ``os.replace``, and
fsyncs the directory. Readers therefore see the whole old object or the whole new one. A
batch (``write_many``, a blob's objects) writes every temp file first, then makes them all
durable at once: one syncfs(2) where the platform has it (see ``durability``).

A writer killed midway (SIGKILL, power loss) cannot clean up: its temp files, and a sidecar
renamed in before its object, stay. `LocalBackend.find_leftovers` reports them, for the
orphan sweep to delete once they are older than its grace period.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, Self, cast
from urllib.parse import urlsplit
from urllib.request import url2pathname

import fsspec

from ..errors import StorageConfigError
from ..objects import NewObject
from .direct_copy import copy_direct
from .durability import FilesystemSync
from .sidecar import SIDECAR_SUFFIX, SidecarBackend, encode_metadata, sidecar_path

# What `_temp_file` names its files: ".{name}.{16 hex digits}.tmp".
_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{16}\.tmp")
COPY_CHUNK_BYTES = 64 * 1024 * 1024
# What sendfile(2) answers for a pair of files it cannot copy between.
_NO_SENDFILE = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSOCK})


def _discard(path: str) -> None:
    """Remove a file of our own if it is there."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


Fill = Callable[[BinaryIO], object]


class _Pending(NamedTuple):
    """One object of a write: where it goes, what writes its bytes, its content type."""

    path: str
    fill: Fill
    content_type: str


def _temp_file(directory: str, name: str, fill: Fill) -> str:
    """Fill a hidden temp file beside its destination, not yet durable; nothing left on failure."""
    temp = os.path.join(directory, f".{name}.{secrets.token_hex(8)}.tmp")  # see _TEMP_NAME
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            fill(file)
    except BaseException:
        _discard(temp)
        raise
    return temp


def _bytes_filler(data: bytes) -> Fill:
    return lambda file: file.write(data)


def _copy_from(source: Path) -> Fill:
    """A filler that copies ``source`` without making Python bytes of it: with direct I/O
    past the page cache where the filesystem has it (see ``direct_copy``), else in the
    kernel (sendfile on Linux), else in chunks."""

    def fill(target: BinaryIO) -> None:
        with open(source, "rb", buffering=0) as origin:
            if copy_direct(origin, target.fileno()):
                return
            offset = 0
            if sys.platform == "linux":
                try:
                    while sent := os.sendfile(
                        target.fileno(), origin.fileno(), offset, COPY_CHUNK_BYTES
                    ):
                        offset += sent
                    return
                except OSError as error:
                    # A filesystem that cannot sendfile says so on the first call.
                    if offset or error.errno not in _NO_SENDFILE:
                        raise
            shutil.copyfileobj(origin, target, COPY_CHUNK_BYTES)

    return fill


def _leftover_of(name: str, names: set[str]) -> str | None:
    """The object a temp file or a sidecar without its object was for; None for the rest."""
    if temp := _TEMP_NAME.fullmatch(name):
        return temp["name"]
    if name.startswith(".") and name.endswith(SIDECAR_SUFFIX):
        object_name = name[1 : -len(SIDECAR_SUFFIX)]
        return None if object_name in names else object_name
    return None


def _raise_unless_missing(error: OSError) -> None:
    """Walk error handler: a directory deleted mid-listing is empty, anything else is a failure."""
    if not isinstance(error, FileNotFoundError):
        raise error


def _root_from_url(url: str) -> Path:
    """The absolute directory a ``file://`` URL or a bare path names."""
    parts = urlsplit(url)
    if parts.scheme == "":
        raw = url
    elif parts.netloc not in ("", "localhost"):
        raise StorageConfigError(f"file storage URL {url!r} names a remote host")
    else:
        raw = url2pathname(parts.path)
    if not raw:
        raise StorageConfigError(f"file storage URL {url!r} names no directory")
    return Path(raw).expanduser().resolve()


class LocalBackend(SidecarBackend):
    """Objects as files under a root directory, for embedded setups and tests."""

    writes_batches = True

    @classmethod
    def from_url(cls, url: str, options: dict[str, Any]) -> Self:
        """Create the root directory if needed, so a fresh install works unconfigured."""
        root = _root_from_url(url)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageConfigError(f"cannot create storage directory {root}: {e}") from e
        try:
            fs = fsspec.filesystem("file", **options)
        except TypeError as e:
            raise StorageConfigError(f"invalid storage options for file storage: {e}") from e
        return cls(fs, root.as_posix(), root.as_uri())

    def write(self, path: str, data: bytes, *, content_type: str, cache_control: str) -> None:
        """Temp files, fsync, sidecar rename, object rename: the object appears whole or not."""
        self._publish([_Pending(path, _bytes_filler(data), content_type)], cache_control)

    def write_file(self, path: str, source: Path, *, content_type: str, cache_control: str) -> None:
        """As :meth:`write`, the bytes copied from a local file without passing through Python."""
        self._publish([_Pending(path, _copy_from(source), content_type)], cache_control)

    def write_many(self, items: Sequence[tuple[str, NewObject]], *, cache_control: str) -> None:
        """As :meth:`write` for each object, all made durable in one round of fsyncs."""
        pending = [
            _Pending(
                path,
                _copy_from(item.source)
                if item.source is not None
                else _bytes_filler(cast("bytes", item.data)),  # NewObject holds one of the two
                item.content_type,
            )
            for path, item in items
        ]
        self._publish(pending, cache_control)

    def _publish(self, pending: Sequence[_Pending], cache_control: str) -> None:
        """Fill every temp file, fsync them all, then rename each sidecar and its object.

        Nothing is renamed before every temp file is written and durable, so a failure
        while writing leaves no new object visible; one during the renames (which only
        move files within their directory) leaves the objects renamed before it, each whole.
        """
        temps: list[str] = []
        renames: list[tuple[str, str]] = []
        directories = list(dict.fromkeys(item.path.rpartition("/")[0] for item in pending))
        with FilesystemSync(self.root, expected_files=2 * len(pending)) as durable:
            try:
                for directory in directories:
                    os.makedirs(directory, exist_ok=True)
                    durable.admit(directory)
                for path, fill, content_type in pending:
                    directory, _, name = path.rpartition("/")
                    metadata = encode_metadata(
                        content_type=content_type, cache_control=cache_control
                    )
                    for filler, target in (
                        (_bytes_filler(metadata), sidecar_path(path)),
                        (fill, path),
                    ):
                        temps.append(_temp_file(directory, name, filler))
                        renames.append((temps[-1], target))
                durable.files(temps)
                for temp, target in renames:  # each sidecar just before its object
                    os.replace(temp, target)
            except BaseException:
                for temp in temps:
                    _discard(temp)
                for item in pending:
                    if not os.path.isfile(item.path):
                        _discard(sidecar_path(item.path))
                raise
            durable.directories(directories)

    def find(self, path: str) -> dict[str, dict[str, Any]]:
        """Recursive listing that fails loudly instead of omitting unreadable directories."""
        try:
            found: dict[str, dict[str, Any]] = self.fs.find(
                path, detail=True, on_error=_raise_unless_missing
            )
        except FileNotFoundError:
            return {}
        return found

    def find_leftovers(self, path: str) -> dict[str, tuple[str, int, datetime]]:
        """Temp files of writes that never finished, and sidecars whose object never landed.

        A write in progress has them too, for a moment; the sweep spares those.
        """
        found: dict[str, tuple[str, int, datetime]] = {}
        for directory, _, names in os.walk(path, onerror=_raise_unless_missing):
            present = set(names)
            for name in present:
                object_name = _leftover_of(name, present)
                if object_name is None:
                    continue
                full = os.path.join(directory, name)
                try:
                    stat = os.stat(full)
                except FileNotFoundError:
                    continue  # the write it belonged to just finished
                modified = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
                found[full] = (os.path.join(directory, object_name), stat.st_size, modified)
        return found

    def url(self, key: str) -> str:
        """A ``file://`` URI of the object's absolute path, percent-encoded."""
        return Path(self.path(key)).as_uri()
