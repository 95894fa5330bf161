"""How the file backend makes a write durable: one syncfs for a batch, fsync otherwise."""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mediamill.settings import Settings
from mediamill.storage import ObjectStore, StorageError, open_store
from mediamill.storage.backends import durability
from mediamill.storage.headers import IMMUTABLE
from mediamill.storage.objects import NewObject

KEYS = [f"w1/{name}/a.jpg" for name in ("optimized", "thumb", "tiny")]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(root: Path, home: Path) -> ObjectStore:
    return open_store(Settings(storage_url=root.as_uri(), storage_options={}))


class Calls:
    """Counts the syncfs and fsync calls of a write, passing each on to the real one."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.syncfs = 0
        self.fsync_files: list[str] = []
        self.fsync_directories: list[str] = []
        real_syncfs = durability._SYNCFS
        real_file, real_directory = durability.fsync_file, durability.fsync_directory

        def syncfs(fd: int) -> int:
            self.syncfs += 1
            return real_syncfs(fd) if real_syncfs is not None else 0

        def fsync_file(path: str) -> None:
            self.fsync_files.append(path)
            real_file(path)

        def fsync_directory(path: str) -> None:
            self.fsync_directories.append(path)
            real_directory(path)

        if real_syncfs is not None:
            monkeypatch.setattr(durability, "_SYNCFS", syncfs)
        monkeypatch.setattr(durability, "fsync_file", fsync_file)
        monkeypatch.setattr(durability, "fsync_directory", fsync_directory)


def _put_three(store: ObjectStore) -> None:
    store.put_many(
        [NewObject(key, "image/jpeg", data=key.encode()) for key in KEYS],
        cache_control=IMMUTABLE,
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="syncfs(2) is Linux's")
def test_linux_has_syncfs() -> None:
    assert durability._SYNCFS is not None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="syncfs(2) is Linux's")
def test_a_batch_is_made_durable_with_one_syncfs_before_and_one_after_the_renames(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Calls(monkeypatch)

    _put_three(store)

    assert calls.syncfs == 2
    assert calls.fsync_files == calls.fsync_directories == []
    assert [store.get(key) for key in KEYS] == [key.encode() for key in KEYS]


def test_a_single_object_is_fsynced_file_by_file(
    store: ObjectStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Calls(monkeypatch)

    store.put("w1/original/a.jpg", b"one", content_type="image/jpeg", cache_control=IMMUTABLE)

    assert calls.syncfs == 0
    assert len(calls.fsync_files) == 2  # the object and its sidecar, as temp files
    assert calls.fsync_directories == [str(root / "w1" / "original")]


def test_without_syncfs_a_batch_is_fsynced_file_by_file(
    store: ObjectStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(durability, "_SYNCFS", None)
    calls = Calls(monkeypatch)

    _put_three(store)

    assert len(calls.fsync_files) == 2 * len(KEYS)
    assert sorted(calls.fsync_directories) == sorted(
        str(root / key.rpartition("/")[0]) for key in KEYS
    )
    assert [store.get(key) for key in KEYS] == [key.encode() for key in KEYS]


def test_a_batch_reaching_another_filesystem_is_fsynced_file_by_file(
    store: ObjectStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Calls(monkeypatch)
    real_stat: Callable[..., os.stat_result] = os.stat
    mount = str(root / "w1" / "tiny")

    def stat(path: str, *args: object, **kwargs: object) -> os.stat_result:
        found = real_stat(path, *args, **kwargs)
        if str(path) != mount:
            return found
        fields = list(found)
        fields[2] = found.st_dev + 1  # st_dev: the directory is a mount point
        return os.stat_result(fields)

    monkeypatch.setattr(durability.os, "stat", stat)

    _put_three(store)

    assert calls.syncfs == 0
    assert len(calls.fsync_files) == 2 * len(KEYS)
    assert [store.get(key) for key in KEYS] == [key.encode() for key in KEYS]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="syncfs(2) is Linux's")
def test_a_failed_syncfs_fails_the_write_and_leaves_nothing_visible(
    store: ObjectStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_syncfs(fd: int) -> int:
        ctypes.set_errno(errno.EIO)
        return -1

    monkeypatch.setattr(durability, "_SYNCFS", failing_syncfs)

    with pytest.raises(StorageError, match="Input/output error"):
        _put_three(store)

    assert [p for p in root.rglob("*") if p.is_file()] == []
