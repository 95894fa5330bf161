"""Stream each upload once: SHA-256 and size cap while reading, type sniffed from content.

A backfill rerun skips the read of a file a finished run already hashed, when the file's
identity (device, inode, size, modification and change times) is exactly as recorded.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from mediamill.media.errors import ValidationError
from mediamill.media.sniff import SNIFF_BYTES, Sniffed, sniff
from mediamill.tasks.sources import Source

CHUNK_BYTES = 1024 * 1024
SUPPORTED_KINDS = frozenset({"image", "video", "model", "document"})
# How long a file must have been left alone before its identity vouches for its content.
SETTLE_SECONDS = 2.0


class FileIdentity(NamedTuple):
    """A local file as stat sees it; equal identities mean no write came in between."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int


class Recorded(NamedTuple):
    """The hash a run took of a file, and the file's identity just before that run read it."""

    sha256: str
    identity: FileIdentity


@dataclass(frozen=True)
class Staged:
    """What reading a source taught us, before any pixel is decoded."""

    source: Source
    sha256: str | None
    size: int
    sniffed: Sniffed | None
    error_code: str | None = None
    error_message: str | None = None
    # The file as it was just before it was read, when it had been still for a while.
    identity: FileIdentity | None = None

    @property
    def fingerprint(self) -> str:
        """Identifies this content for backfill reruns, even when it failed before hashing."""
        return self.sha256 or f"unhashed:{self.size}:{self.error_code}"


def _chunks(source: Source) -> Iterator[memoryview]:
    """The file in chunks read into one reused buffer: no copy per chunk, no allocation.

    Each chunk is a view of that buffer, valid only until the next one is read.
    """
    if source.path is None:
        raise OSError("the source has no file to read")
    buffer = bytearray(CHUNK_BYTES)
    view = memoryview(buffer)
    with source.path.open("rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            yield view[:count]


def file_identity(path: Path) -> FileIdentity | None:
    """The file's identity, if no write touched it in the last `SETTLE_SECONDS`; else None.

    Filesystems stamp writes with a coarse clock, so a file rewritten right after it was
    read can keep the same times: only a file that has been still for a while vouches for
    the content a run read from it.
    """
    try:
        found = os.stat(path)
    except OSError:
        return None
    last_change = max(found.st_mtime_ns, found.st_ctime_ns)
    if time.time_ns() - last_change < SETTLE_SECONDS * 1_000_000_000:
        return None
    return FileIdentity(
        found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns
    )


def stage(source: Source, max_bytes: int, recorded: Recorded | None = None) -> Staged:
    """Hash and sniff one source; a bad one comes back with an error, never an exception.

    ``recorded`` is what an earlier run learnt of this source: when the file's identity is
    still the recorded one, its recorded hash is taken and the file only sniffed.
    """
    if source.problem is not None:
        return Staged(
            source, None, 0, None, source.problem_code or "invalid_source", source.problem
        )
    # Taken before reading: a write during the read changes it, so the next run re-reads.
    identity = file_identity(source.path) if source.path is not None else None
    if recorded is not None and identity is not None and identity == recorded.identity:
        return _stage_known(source, identity, recorded.sha256, max_bytes)
    digest = hashlib.sha256()
    head = bytearray()
    size = 0
    try:
        for chunk in _chunks(source):
            size += len(chunk)
            if size > max_bytes:
                return _too_large(source, size, max_bytes)
            digest.update(chunk)
            if len(head) < SNIFF_BYTES:
                head += chunk[: SNIFF_BYTES - len(head)]  # a copy: the buffer is reused
    except OSError as error:
        return Staged(source, None, size, None, "unreadable", f"cannot read source: {error}")
    return _classify(source, digest.hexdigest(), size, bytes(head), identity)


def _stage_known(source: Source, identity: FileIdentity, sha256: str, max_bytes: int) -> Staged:
    """A file whose content a finished run hashed: read its head for the type, nothing more."""
    if identity.size > max_bytes:
        return _too_large(source, identity.size, max_bytes)
    assert source.path is not None  # an identity is only taken of a file
    try:
        with source.path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError as error:
        return Staged(source, None, 0, None, "unreadable", f"cannot read source: {error}")
    return _classify(source, sha256, identity.size, head, identity)


def _too_large(source: Source, size: int, max_bytes: int) -> Staged:
    message = f"upload is larger than the {max_bytes:,}-byte limit"
    return Staged(source, None, size, None, "too_large", message)


def _classify(
    source: Source, sha256: str, size: int, head: bytes, identity: FileIdentity | None
) -> Staged:
    """What the content is, from its first bytes; unsupported kinds fail here."""
    if size == 0:
        return Staged(source, sha256, 0, None, "empty", "upload is empty", identity)
    try:
        sniffed = sniff(head, size=size)
    except ValidationError as error:
        return Staged(source, sha256, size, None, error.code, str(error), identity)
    if sniffed.kind not in SUPPORTED_KINDS:
        message = f"{sniffed.kind} uploads ({sniffed.mime}) are not supported yet"
        return Staged(source, sha256, size, sniffed, "unsupported_type", message, identity)
    return Staged(source, sha256, size, sniffed, identity=identity)
