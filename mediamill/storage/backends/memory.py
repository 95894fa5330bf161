"""The ``memory://`` backend: fsspec's in-process store, for tests and throwaway runs.

fsspec's memory filesystem is one dict shared by the whole process, so each store must own
its root path (``memory://run-1234``); two stores on the same root see the same objects.
"""

from __future__ import annotations

from typing import Any, Self

import fsspec

from ..errors import StorageConfigError
from .sidecar import SidecarBackend, encode_metadata, sidecar_path


class MemoryBackend(SidecarBackend):
    """Objects in process memory; each ``pipe_file`` swaps in a complete file in one step."""

    @classmethod
    def from_url(cls, url: str, options: dict[str, Any]) -> Self:
        """Root the store at the URL's path inside the shared memory filesystem."""
        try:
            fs = fsspec.filesystem("memory", **options)
        except TypeError as e:
            raise StorageConfigError(f"invalid storage options for memory storage: {e}") from e
        name = str(fs._strip_protocol(url)).strip("/")
        if not name:
            raise StorageConfigError(
                f"memory storage URL {url!r} needs a root such as memory://run-1234, "
                "because the memory filesystem is shared by the whole process"
            )
        return cls(fs, f"/{name}", f"memory://{name}")

    def write(self, path: str, data: bytes, *, content_type: str, cache_control: str) -> None:
        """Sidecar first, then the object; a failed object write puts the old sidecar back."""
        metadata_path = sidecar_path(path)
        previous = self.read_sidecar(path)
        self.fs.pipe_file(
            metadata_path,
            encode_metadata(content_type=content_type, cache_control=cache_control),
        )
        try:
            self.fs.pipe_file(path, data)
        except BaseException:
            if previous is None:
                self.discard(metadata_path)
            else:
                self.fs.pipe_file(metadata_path, previous)
            raise
