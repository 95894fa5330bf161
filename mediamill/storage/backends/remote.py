"""What the object-store backends (s3, gs, az) share: construction and batched deletes.

Object stores publish a single-request upload atomically and keep HTTP metadata on the
object itself, so these backends need no temp files and no sidecars.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

import fsspec
import fsspec.asyn

from ..errors import StorageConfigError
from .base import Backend

DELETE_BATCH = 1000


async def _infos(fs: Any, paths: Sequence[str]) -> list[Any]:
    """Ask about many objects concurrently; each answer is an info dict or an exception."""
    return list(await asyncio.gather(*(fs._info(path) for path in paths), return_exceptions=True))


class RemoteBackend(Backend):
    """A bucket or container behind an async fsspec filesystem."""

    package: ClassVar[str]

    @classmethod
    def filesystem(cls, scheme: str, options: dict[str, Any]) -> Any:
        """The fsspec filesystem for the scheme; a backend may pin a specific class."""
        return fsspec.filesystem(scheme, **options)

    @classmethod
    def from_url(cls, url: str, options: dict[str, Any]) -> Self:
        """Build the filesystem lazily, so the cloud packages stay an optional extra.

        Listing caches are off unless the options turn them on: several processes write
        the same bucket, and a stale cache would answer ``exists`` wrongly.
        """
        scheme = urlsplit(url).scheme
        try:
            fs = cls.filesystem(scheme, {"use_listings_cache": False, **options})
        except ImportError as e:
            raise StorageConfigError(
                f"install {cls.package} to use {scheme}:// storage "
                f"(pip install {cls.package}, or the mediamill[cloud] extra)"
            ) from e
        except (TypeError, ValueError) as e:
            raise StorageConfigError(f"invalid storage options for {scheme}:// storage: {e}") from e
        root = str(fs._strip_protocol(url)).strip("/")
        if not root:
            raise StorageConfigError(f"storage URL {url!r} names no bucket or container")
        return cls(fs, root, f"{scheme}://{root}")

    def notified_key(self, bucket: str, object_key: str) -> str | None:
        """The key under this store's root of ``bucket/object_key``; None for other buckets."""
        return self.relative(f"{bucket}/{object_key}")

    def existing(self, paths: Sequence[str]) -> list[str]:
        """The paths that hold an object; any failure other than absence propagates."""
        answers = fsspec.asyn.sync(self.fs.loop, _infos, self.fs, paths)
        found: list[str] = []
        for path, answer in zip(paths, answers, strict=True):
            if isinstance(answer, FileNotFoundError):
                continue
            if isinstance(answer, BaseException):
                raise answer
            if answer.get("type") == "file":
                found.append(path)
        return found

    def delete(self, paths: Sequence[str]) -> int:
        """Check existence concurrently, then delete in the backend's bulk requests."""
        deleted = 0
        for start in range(0, len(paths), DELETE_BATCH):
            batch = self.existing(paths[start : start + DELETE_BATCH])
            if not batch:
                continue
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(batch)
            deleted += len(batch)
        return deleted
