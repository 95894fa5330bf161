"""The ``gs://`` backend (gcsfs): Google Cloud Storage and its emulators."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from .base import Head
from .remote import RemoteBackend


class GCSBackend(RemoteBackend):
    """HTTP metadata travels as the object's ``contentType`` and ``cacheControl`` fields."""

    package = "gcsfs"

    @classmethod
    def filesystem(cls, scheme: str, options: dict[str, Any]) -> Any:
        """gcsfs's JSON-API filesystem, not the default one with zonal-bucket support.

        That default asks the gRPC storage-control API for each bucket's layout before
        reads and writes, and does not cache a failed answer: against an emulator or any
        endpoint without that API (or without permission to use it) every call waits out
        a 60 s retry budget. mediamill needs none of what it adds.
        """
        from gcsfs.core import GCSFileSystem  # type: ignore[import-untyped]

        return GCSFileSystem(**options)

    def write(self, path: str, data: bytes, *, content_type: str, cache_control: str) -> None:
        """One upload, visible only once complete."""
        self.fs.pipe_file(
            path,
            data,
            content_type=content_type,
            fixed_key_metadata={"cache_control": cache_control},
        )

    def head(self, path: str) -> Head:
        """The object resource carries both fields."""
        info = self.fs.info(path)
        if info.get("type") != "file":
            raise FileNotFoundError(path)
        return Head(int(info["size"]), info.get("contentType"), info.get("cacheControl"))

    def presign_put(
        self, path: str, *, content_type: str, expires_in: timedelta
    ) -> tuple[str, dict[str, str]] | None:
        """A V4 signed URL for one PUT (XML API), with the content type signed in.

        Signing needs a private key on hand (a service account's); anonymous access and
        user or metadata-server credentials cannot sign, so they hand out no targets.
        """
        from google.auth.credentials import Signing

        credentials = getattr(self.fs.credentials, "credentials", None)
        if not isinstance(credentials, Signing):
            return None
        from google.cloud import storage  # type: ignore[import-untyped]

        bucket, key, _ = self.fs.split_path(path)
        # The client only supplies defaults; it never connects, since the URL is signed
        # locally with the credentials passed in.
        client = storage.Client.create_anonymous_client()
        url: str = (
            client.bucket(bucket)
            .blob(key)
            .generate_signed_url(
                version="v4",
                method="PUT",
                content_type=content_type,
                expiration=expires_in,
                # The endpoint the filesystem talks to: GCS itself, or an emulator.
                api_access_endpoint=self.fs._location,
                credentials=credentials,
            )
        )
        return url, {"Content-Type": content_type}
