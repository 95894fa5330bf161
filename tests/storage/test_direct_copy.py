"""Copying originals with direct I/O: exact bytes at every size, a clean refusal elsewhere."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediamill.settings import Settings
from mediamill.storage import ObjectStore, open_store
from mediamill.storage.backends import direct_copy
from mediamill.storage.headers import IMMUTABLE

CHUNK = 2 * direct_copy.ALIGNMENT


def _takes_direct_io(directory: Path) -> bool:
    """Whether files in ``directory`` can be opened for direct I/O at all."""
    if not sys.platform.startswith("linux"):
        return False
    probe = directory / "probe"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
    except OSError:
        return False
    os.close(fd)
    probe.unlink()
    return True


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(direct_copy, "CHUNK_BYTES", CHUNK)


@pytest.fixture
def direct_writes_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every write fails as on a filesystem that takes no direct I/O."""

    def refuse(fd: int, data: memoryview, offset: int) -> int:
        raise OSError(errno.EINVAL, "no direct I/O here")

    monkeypatch.setattr(os, "pwrite", refuse)


@pytest.fixture
def target(tmp_path: Path) -> Iterator[int]:
    fd = os.open(tmp_path / "target", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        yield fd
    finally:
        os.close(fd)


def _source(tmp_path: Path, size: int) -> Path:
    path = tmp_path / "source"
    path.write_bytes(bytes(index % 251 for index in range(size)))
    return path


@pytest.mark.parametrize(
    "size", [0, 1, 4095, 4096, 4097, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 123]
)
@pytest.mark.usefixtures("small_chunks")
def test_copies_every_size_exactly_with_the_target_opened_for_direct_io(
    tmp_path: Path, target: int, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _source(tmp_path, size)
    direct_writes: list[bool] = []
    pwrite = os.pwrite

    def spy(fd: int, data: memoryview, offset: int) -> int:
        import fcntl

        direct_writes.append(bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT))
        return pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", spy)
    with source.open("rb", buffering=0) as origin:
        copied = direct_copy.copy_direct(origin, target)

    assert copied is _takes_direct_io(tmp_path)
    if copied:
        assert (tmp_path / "target").read_bytes() == source.read_bytes()
        assert direct_writes == [True] * -(-size // CHUNK)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="direct I/O is Linux only")
@pytest.mark.usefixtures("direct_writes_refused")
def test_a_file_refusing_direct_writes_gets_nothing_and_its_flags_back(
    tmp_path: Path, target: int
) -> None:
    import fcntl

    flags = fcntl.fcntl(target, fcntl.F_GETFL)
    source = _source(tmp_path, 10_000)
    with source.open("rb", buffering=0) as origin:
        assert direct_copy.copy_direct(origin, target) is False
        assert origin.tell() == 0  # the next way of copying starts from the beginning

    assert fcntl.fcntl(target, fcntl.F_GETFL) == flags
    assert (tmp_path / "target").read_bytes() == b""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="direct I/O is Linux only")
@pytest.mark.usefixtures("small_chunks")
def test_a_write_failing_midway_raises(
    tmp_path: Path, target: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not _takes_direct_io(tmp_path):
        pytest.fail(f"{tmp_path} takes no direct I/O; this test needs a filesystem that does")
    calls: list[int] = []
    pwrite = os.pwrite

    def fail_second(fd: int, data: memoryview, offset: int) -> int:
        calls.append(offset)
        if len(calls) == 2:
            raise OSError(errno.EINVAL, "refused after the first chunk")
        return pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", fail_second)
    source = _source(tmp_path, 3 * CHUNK)
    with source.open("rb", buffering=0) as origin, pytest.raises(OSError, match="first chunk"):
        direct_copy.copy_direct(origin, target)


@pytest.fixture
def store(tmp_path: Path, home: Path) -> ObjectStore:
    return open_store(Settings(storage_url=(tmp_path / "store").as_uri(), storage_options={}))


@pytest.mark.usefixtures("direct_writes_refused")
def test_put_file_copies_another_way_where_direct_io_is_refused(
    store: ObjectStore, tmp_path: Path
) -> None:
    source = _source(tmp_path, 3 * direct_copy.ALIGNMENT + 5)

    store.put_file("w1/original/a.jpg", source, content_type="image/jpeg", cache_control=IMMUTABLE)

    assert store.get("w1/original/a.jpg") == source.read_bytes()
