"""What only the file backend promises: sidecar format, permissions, crash-safe renames."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from mediamill.settings import Settings
from mediamill.storage import ObjectStore, StorageError, open_store
from mediamill.storage.backends import durability
from mediamill.storage.backends import local as local_backend
from mediamill.storage.headers import IMMUTABLE
from mediamill.storage.objects import NewObject

KEY = "tenants/workspace_1/product/68/SKU-123/image/original/photo.jpg"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(root: Path, home: Path) -> ObjectStore:
    return open_store(Settings(storage_url=root.as_uri(), storage_options={}))


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_metadata_lives_in_a_hidden_json_sidecar(store: ObjectStore, root: Path) -> None:
    store.put(KEY, b"jpeg", content_type="image/jpeg", cache_control=IMMUTABLE)

    directory = root / KEY.rpartition("/")[0]
    assert sorted(path.name for path in directory.iterdir()) == [
        ".photo.jpg.meta.json",
        "photo.jpg",
    ]
    assert json.loads((directory / ".photo.jpg.meta.json").read_text()) == {
        "cache_control": IMMUTABLE,
        "content_type": "image/jpeg",
    }


def test_objects_are_readable_like_normal_files(
    store: ObjectStore, root: Path, umask_022: None
) -> None:
    store.put(KEY, b"jpeg", content_type="image/jpeg", cache_control=IMMUTABLE)

    assert (root / KEY).stat().st_mode & 0o777 == 0o644


def test_damaged_sidecar_means_unknown_metadata(store: ObjectStore, root: Path) -> None:
    store.put(KEY, b"jpeg", content_type="image/jpeg", cache_control=IMMUTABLE)
    sidecar = root / KEY.rpartition("/")[0] / ".photo.jpg.meta.json"
    sidecar.write_text("{not json")

    info = store.head(KEY)

    assert (info.size, info.content_type, info.cache_control) == (4, None, None)


def test_object_without_sidecar_still_reads(store: ObjectStore, root: Path) -> None:
    (root / "dropped.bin").write_bytes(b"abc")

    assert store.get("dropped.bin") == b"abc"
    assert store.head("dropped.bin").content_type is None
    assert [listed.key for listed in store.list_prefix("")] == ["dropped.bin"]


def test_failed_final_rename_removes_the_new_sidecar(
    store: ObjectStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace

    def replace(source: str, destination: str) -> None:
        if destination.endswith("photo.jpg"):
            raise OSError(5, "simulated I/O error")
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", replace)

    with pytest.raises(StorageError):
        store.put(KEY, b"jpeg", content_type="image/jpeg", cache_control=IMMUTABLE)

    assert [path for path in root.rglob("*") if path.is_file()] == []


def test_deleting_removes_object_and_sidecar(store: ObjectStore, root: Path) -> None:
    store.put(KEY, b"jpeg", content_type="image/jpeg", cache_control=IMMUTABLE)

    assert store.delete_many([KEY]) == 1

    assert [path for path in root.rglob("*") if path.is_file()] == []


def test_put_onto_a_directory_fails_and_leaves_no_sidecar(store: ObjectStore, root: Path) -> None:
    store.put("a/b.txt", b"b", content_type="text/plain", cache_control=IMMUTABLE)

    with pytest.raises(StorageError) as caught:
        store.put("a", b"a", content_type="text/plain", cache_control=IMMUTABLE)

    assert type(caught.value) is StorageError
    assert sorted(path.name for path in root.iterdir()) == ["a"]


def test_put_file_copies_in_chunks_of_any_size_without_direct_io(
    store: ObjectStore, root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_backend, "copy_direct", lambda origin, target: False)
    monkeypatch.setattr(local_backend, "COPY_CHUNK_BYTES", 1000)
    data = bytes(range(256)) * 1000  # 256 chunks of 1000 bytes, then a partial one
    source = tmp_path / "original.bin"
    source.write_bytes(data)

    store.put_file(KEY, source, content_type="image/jpeg", cache_control=IMMUTABLE)

    assert (root / KEY).read_bytes() == data
    assert store.head(KEY).content_type == "image/jpeg"


def test_put_file_falls_back_to_a_plain_copy_where_sendfile_cannot(
    store: ObjectStore, root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> int:
        raise OSError(errno.EINVAL, "sendfile: not between these files")

    monkeypatch.setattr(local_backend, "copy_direct", lambda origin, target: False)
    monkeypatch.setattr(os, "sendfile", refuse)
    source = tmp_path / "original.bin"
    source.write_bytes(b"bytes of an original" * 1000)

    store.put_file(KEY, source, content_type="image/jpeg", cache_control=IMMUTABLE)

    assert (root / KEY).read_bytes() == source.read_bytes()


def test_put_many_writes_every_object_before_making_any_durable(
    store: ObjectStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temps_when_made_durable: list[int] = []
    make_durable = durability.FilesystemSync.files

    def spy(self: durability.FilesystemSync, paths: Iterable[str]) -> None:
        temps_when_made_durable.append(sum(1 for p in root.rglob(".*.tmp")))
        make_durable(self, paths)

    monkeypatch.setattr(durability.FilesystemSync, "files", spy)
    keys = [f"w1/{name}/a.jpg" for name in ("optimized", "thumb", "tiny")]

    store.put_many(
        [NewObject(key, "image/jpeg", data=key.encode()) for key in keys],
        cache_control=IMMUTABLE,
    )

    assert temps_when_made_durable == [2 * len(keys)]  # each object and its sidecar, at once
    assert [store.get(key) for key in keys] == [key.encode() for key in keys]
    assert list(root.rglob(".*.tmp")) == []


# Durability: one syncfs for a batch, fsync file by file otherwise (backends/durability.py).

KEYS = [f"w1/{name}/a.jpg" for name in ("optimized", "thumb", "tiny")]


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

    monkeypatch.setattr(os, "stat", stat)

    _put_three(store)

    assert calls.syncfs == 0
    assert len(calls.fsync_files) == 2 * len(KEYS)
    assert [store.get(key) for key in KEYS] == [key.encode() for key in KEYS]


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
