"""Fixtures of the storage tests: one store per backend for the contract suite.

Adding a backend (s3 against MinIO, gs against the GCS emulator, az against Azurite) is
adding a ``BackendCase`` to ``CASES``: a URL and options for a fresh, empty root on a
service the test setup started, and a way to make one write fail part-way (for object
stores, e.g. a ``ConnectionError`` from the SDK call that uploads the bytes).
"""

from __future__ import annotations

import contextlib
import errno
import resource
import signal
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mediamill.settings import Settings
from mediamill.storage import ObjectStore, open_store
from mediamill.storage.validation import is_reserved

# Larger than FILE_SIZE_LIMIT, so a write of it fails part-way; every other test object is
# smaller than the limit.
BIG = bytes(range(256)) * 1024
FILE_SIZE_LIMIT = 64 * 1024


@contextlib.contextmanager
def _file_size_limit() -> Iterator[None]:
    """Make the kernel refuse writes past FILE_SIZE_LIMIT bytes, as a full disk would."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


@contextlib.contextmanager
def _memory_write_failure(monkeypatch: pytest.MonkeyPatch, store: ObjectStore) -> Iterator[None]:
    """Fail the write of object bytes, after the store has written its own metadata."""
    fs = store.fs
    original = fs.pipe_file

    def pipe_file(path: str, value: bytes, **kwargs: Any) -> None:
        if not is_reserved(path.rpartition("/")[2]):
            raise OSError(errno.ENOSPC, "simulated: out of memory store space", path)
        original(path, value, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(fs, "pipe_file", pipe_file)
        yield


@dataclass(frozen=True)
class BackendCase:
    """How the contract suite opens one backend and breaks its writes."""

    name: str
    url: Callable[[Path], str]
    options: dict[str, Any]
    failing_writes: Callable[[pytest.MonkeyPatch, ObjectStore], AbstractContextManager[None]]


CASES = [
    BackendCase(
        name="file",
        url=lambda tmp_path: (tmp_path / "store").as_uri(),
        options={},
        failing_writes=lambda monkeypatch, store: _file_size_limit(),
    ),
    BackendCase(
        name="memory",
        url=lambda tmp_path: f"memory://mediamill-test-{uuid.uuid4().hex}",
        options={},
        failing_writes=_memory_write_failure,
    ),
]


@pytest.fixture(params=CASES, ids=[case.name for case in CASES])
def backend(request: pytest.FixtureRequest) -> BackendCase:
    """Each backend the contract suite runs against."""
    case: BackendCase = request.param
    return case


StoreFactory = Callable[..., ObjectStore]


@pytest.fixture
def store_factory(backend: BackendCase, tmp_path: Path, home: Path) -> Iterator[StoreFactory]:
    """Open stores on one fresh root of the backend, through settings like production."""
    url = backend.url(tmp_path)

    def make(cdn_base_url: str | None = None) -> ObjectStore:
        settings = Settings(
            storage_url=url, storage_options=backend.options, cdn_base_url=cdn_base_url
        )
        return open_store(settings)

    yield make
    # Shared backends (memory, and later the emulators) outlive the test: empty the root.
    cleaner = make()
    cleaner.delete_many([listed.key for listed in cleaner.list_prefix("")])


@pytest.fixture
def store(store_factory: StoreFactory) -> ObjectStore:
    """A store on a fresh, empty root, without a CDN in front."""
    return store_factory()
