"""Store behaviour that the contract cannot reach by ordinary calls: I/O failures mid-call."""

from __future__ import annotations

import errno
import uuid
from pathlib import Path
from typing import Any

import pytest

from mediamill.settings import Settings
from mediamill.storage import (
    ObjectStore,
    StorageConfigError,
    TransientStorageError,
    open_store,
)


@pytest.fixture
def store(home: Path) -> ObjectStore:
    url = f"memory://mediamill-test-{uuid.uuid4().hex}"
    return open_store(Settings(storage_url=url, storage_options={}))


def fail_with(error: BaseException) -> Any:
    def fail(*args: object, **kwargs: object) -> None:
        raise error

    return fail


def test_exists_raises_instead_of_answering_false_on_io_errors(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store.fs, "info", fail_with(ConnectionResetError(errno.ECONNRESET, "x")))

    with pytest.raises(TransientStorageError):
        store.exists("a.txt")


def test_check_writable_turns_failures_into_config_errors(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store.fs, "cat_file", fail_with(PermissionError(errno.EACCES, "denied")))

    with pytest.raises(StorageConfigError, match="is not usable"):
        store.check_writable()

    monkeypatch.undo()
    assert list(store.fs.find(store.root)) == []
