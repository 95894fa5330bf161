"""How a rendered blob's objects reach the store: one batch, or one retried call each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tenacity import wait_none

from mediamill.settings import Settings
from mediamill.storage.errors import TransientStorageError
from mediamill.storage.factory import open_store
from mediamill.storage.objects import NewObject
from mediamill.storage.store import ObjectStore
from mediamill.tasks import publish

OBJECTS = [NewObject(f"w1/v/{name}.webp", "image/webp", data=name.encode()) for name in "abc"]


class RecordingStore:
    """Records each put_many call's keys; refuses the first attempt at ``refuse``."""

    def __init__(self, inner: ObjectStore, refuse: str | None = None) -> None:
        self._inner = inner
        self._refuse = refuse
        self.calls: list[list[str]] = []

    def put_many(self, objects: list[NewObject], **kwargs: Any) -> None:
        keys = [item.key for item in objects]
        self.calls.append(keys)
        if self._refuse in keys:
            self._refuse = None
            raise TransientStorageError("503 slow down")
        self._inner.put_many(objects, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _store(url: str, tmp_path: Path) -> ObjectStore:
    return open_store(Settings(home=tmp_path, storage_url=url))


def test_a_local_store_takes_a_blobs_objects_in_one_call(tmp_path: Path) -> None:
    store = RecordingStore(_store(f"file://{tmp_path / 'store'}", tmp_path))

    publish._store_objects(store, OBJECTS)  # type: ignore[arg-type]

    assert store.calls == [[item.key for item in OBJECTS]]
    assert [store.get(item.key) for item in OBJECTS] == [b"a", b"b", b"c"]


def test_a_remote_store_takes_them_one_by_one_and_a_retry_resends_only_the_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publish._put_many.retry, "wait", wait_none())  # type: ignore[attr-defined]
    refused = OBJECTS[1].key
    store = RecordingStore(_store("memory://publish-test", tmp_path), refuse=refused)
    assert not store.writes_batches

    publish._store_objects(store, OBJECTS)  # type: ignore[arg-type]

    assert store.calls == [[OBJECTS[0].key], [refused], [refused], [OBJECTS[2].key]]
    assert [store.get(item.key) for item in OBJECTS] == [b"a", b"b", b"c"]
