import hashlib
from pathlib import Path

import pytest

from mediamill.media import samples
from mediamill.tasks import staging
from mediamill.tasks.sources import file_source
from mediamill.tasks.staging import CHUNK_BYTES, FileIdentity, Recorded, file_identity, stage

LIMIT = 50 * 1024 * 1024


def _jpeg_with_tail(tmp_path: Path, tail: int) -> tuple[Path, bytes]:
    """A real JPEG padded past several read chunks, ending mid-chunk."""
    data = samples.photo_jpeg(64, 48) + bytes(range(256)) * (tail // 256)
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    return path, data


def test_hash_and_size_cover_every_chunk(tmp_path: Path) -> None:
    path, data = _jpeg_with_tail(tmp_path, 3 * CHUNK_BYTES + 12_800)
    staged = stage(file_source(path), LIMIT)
    assert staged.error_code is None
    assert staged.sha256 == hashlib.sha256(data).hexdigest()
    assert staged.size == len(data)
    assert staged.sniffed is not None
    assert staged.sniffed.mime == "image/jpeg"


def test_a_file_of_exactly_one_chunk_hashes_whole(tmp_path: Path) -> None:
    data = samples.photo_jpeg(64, 48)
    data += b"\0" * (CHUNK_BYTES - len(data))
    path = tmp_path / "exact.jpg"
    path.write_bytes(data)
    staged = stage(file_source(path), LIMIT)
    assert (staged.sha256, staged.size) == (hashlib.sha256(data).hexdigest(), CHUNK_BYTES)


def test_over_the_cap_stops_reading_with_too_large(tmp_path: Path) -> None:
    path, _ = _jpeg_with_tail(tmp_path, 2 * CHUNK_BYTES)
    staged = stage(file_source(path), CHUNK_BYTES)
    assert (staged.error_code, staged.sha256) == ("too_large", None)


def test_empty_and_missing_files_fail_with_their_reasons(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    assert stage(file_source(empty), LIMIT).error_code == "empty"
    assert stage(file_source(tmp_path / "gone.jpg"), LIMIT).error_code == "unreadable"


def test_a_file_just_written_has_no_identity_yet(tmp_path: Path) -> None:
    path = tmp_path / "fresh.jpg"
    path.write_bytes(samples.photo_jpeg(64, 48))
    assert file_identity(path) is None  # it might still be written to within the clock's tick
    assert file_identity(tmp_path / "gone.jpg") is None


def test_a_settled_file_is_identified_by_its_stat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staging, "SETTLE_SECONDS", 0.0)
    path = tmp_path / "old.jpg"
    path.write_bytes(samples.photo_jpeg(64, 48))
    found = path.stat()
    identity = file_identity(path)
    assert identity == (
        found.st_dev,
        found.st_ino,
        found.st_size,
        found.st_mtime_ns,
        found.st_ctime_ns,
    )
    path.write_bytes(path.read_bytes() + b"\0")  # a different size, even within one clock tick
    assert file_identity(path) != identity


def test_a_recorded_hash_is_taken_without_reading_the_file_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staging, "SETTLE_SECONDS", 0.0)
    path, data = _jpeg_with_tail(tmp_path, 2 * CHUNK_BYTES)
    identity = file_identity(path)
    assert identity is not None
    # Not the file's hash: taken as given, so the file was not hashed.
    recorded = Recorded("0" * 64, identity)

    staged = stage(file_source(path), LIMIT, recorded)

    assert (staged.sha256, staged.size, staged.error_code) == ("0" * 64, len(data), None)
    assert staged.sniffed is not None
    assert staged.sniffed.mime == "image/jpeg"
    assert staged.identity == identity
    assert stage(file_source(path), CHUNK_BYTES, recorded).error_code == "too_large"


def test_a_recorded_hash_is_ignored_once_the_file_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staging, "SETTLE_SECONDS", 0.0)
    path, _ = _jpeg_with_tail(tmp_path, 1000)
    identity = file_identity(path)
    assert identity is not None
    changed = path.read_bytes() + b"\0"
    path.write_bytes(changed)

    staged = stage(file_source(path), LIMIT, Recorded("0" * 64, identity))

    assert staged.sha256 == hashlib.sha256(changed).hexdigest()


def test_a_recorded_hash_is_ignored_for_a_file_written_just_now(tmp_path: Path) -> None:
    path, data = _jpeg_with_tail(tmp_path, 1000)
    staged = stage(file_source(path), LIMIT, Recorded("0" * 64, FileIdentity(0, 0, 0, 0, 0)))
    assert staged.sha256 == hashlib.sha256(data).hexdigest()
    assert staged.identity is None
