"""What only the file backend promises: sidecar format, permissions, crash-safe renames."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterable, Iterator
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


def test_put_file_copies_in_chunks_of_any_size(
    store: ObjectStore, root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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
