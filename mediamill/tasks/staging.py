"""Stream each upload once: SHA-256 and size cap while reading, type sniffed from content."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from mediamill.media.errors import ValidationError
from mediamill.media.sniff import SNIFF_BYTES, Sniffed, sniff
from mediamill.tasks.sources import Source

CHUNK_BYTES = 1024 * 1024
SUPPORTED_KINDS = frozenset({"image", "video", "model", "document"})


@dataclass(frozen=True)
class Staged:
    """What reading a source taught us, before any pixel is decoded."""

    source: Source
    sha256: str | None
    size: int
    sniffed: Sniffed | None
    error_code: str | None = None
    error_message: str | None = None

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


def stage(source: Source, max_bytes: int) -> Staged:
    """Hash and sniff one source; a bad one comes back with an error, never an exception."""
    if source.problem is not None:
        return Staged(
            source, None, 0, None, source.problem_code or "invalid_source", source.problem
        )
    digest = hashlib.sha256()
    head = bytearray()
    size = 0
    try:
        for chunk in _chunks(source):
            size += len(chunk)
            if size > max_bytes:
                return Staged(
                    source,
                    None,
                    size,
                    None,
                    "too_large",
                    f"upload is larger than the {max_bytes:,}-byte limit",
                )
            digest.update(chunk)
            if len(head) < SNIFF_BYTES:
                head += chunk[: SNIFF_BYTES - len(head)]  # a copy: the buffer is reused
    except OSError as error:
        return Staged(source, None, size, None, "unreadable", f"cannot read source: {error}")
    sha256 = digest.hexdigest()
    if size == 0:
        return Staged(source, sha256, 0, None, "empty", "upload is empty")
    try:
        sniffed = sniff(bytes(head), size=size)
    except ValidationError as error:
        return Staged(source, sha256, size, None, error.code, str(error))
    if sniffed.kind not in SUPPORTED_KINDS:
        return Staged(
            source,
            sha256,
            size,
            sniffed,
            "unsupported_type",
            f"{sniffed.kind} uploads ({sniffed.mime}) are not supported yet",
        )
    return Staged(source, sha256, size, sniffed)
