"""Making a batch of newly written files durable: an fsync per file, or one syncfs(2).

On ext4 and xfs, fsync of a file just created commits the journal on its own, so a
blob's objects and their sidecars (sixteen files) cost sixteen journal commits and as many
disk cache flushes, then one more per directory for the renames. syncfs(2) writes back the
whole filesystem and commits once. It also flushes whatever else is dirty on that
filesystem, so it is used for batches only, and per-file fsync stays the rule for a single
object and on platforms without syncfs.

Linux (since 5.8) reports through syncfs the writeback errors that happened after the file
descriptor passed to it was opened, so `FilesystemSync` opens it before the first write.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Self

# A batch of at least this many files is made durable with syncfs instead of fsyncs.
SYNCFS_MIN_FILES = 4


def _load_syncfs() -> Callable[[int], int] | None:
    """libc's syncfs, where the platform has one (Linux); None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        call = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int]
    call.restype = ctypes.c_int
    return call


_SYNCFS = _load_syncfs()


def fsync_file(path: str) -> None:
    """Make one file's data and size durable."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(directory: str) -> None:
    """Make the renames durable; some filesystems cannot fsync a directory, which is fine."""
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


class FilesystemSync:
    """One batch's durability: ``files`` before the renames, ``directories`` after them.

    Opened on the store's root before anything is written. A batch of ``SYNCFS_MIN_FILES``
    files or more, all on the root's filesystem, is synced with one syncfs each time;
    anything else falls back to fsync per file and per directory.
    """

    def __init__(self, root: str, expected_files: int) -> None:
        self._fd: int | None = None
        self._device: int | None = None
        if _SYNCFS is not None and expected_files >= SYNCFS_MIN_FILES:
            self._fd = os.open(root, os.O_RDONLY | os.O_CLOEXEC)
            self._device = os.fstat(self._fd).st_dev

    @property
    def whole_filesystem(self) -> bool:
        """Whether this batch is synced with syncfs."""
        return self._fd is not None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def admit(self, directory: str) -> None:
        """Note a directory the batch writes into; one on another filesystem ends syncfs."""
        if self._fd is not None and os.stat(directory).st_dev != self._device:
            os.close(self._fd)
            self._fd = None

    def files(self, paths: Iterable[str]) -> None:
        """Make the written files durable before they are renamed into place."""
        self._make_durable(paths, fsync_file)

    def directories(self, directories: Iterable[str]) -> None:
        """Make the renames into ``directories`` durable."""
        self._make_durable(directories, fsync_directory)

    def _make_durable(self, paths: Iterable[str], fsync_one: Callable[[str], None]) -> None:
        if self._fd is not None:
            self._syncfs(self._fd)
            return
        for path in paths:
            fsync_one(path)

    @staticmethod
    def _syncfs(fd: int) -> None:
        assert _SYNCFS is not None  # only called when the batch chose syncfs
        if _SYNCFS(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"syncfs: {os.strerror(code)}")
