"""The ``s3://`` backend (s3fs): AWS S3 and S3-compatible stores such as MinIO."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import fsspec

from .base import Head
from .remote import RemoteBackend


class S3Backend(RemoteBackend):
    """HTTP metadata travels as the object's own ``Content-Type`` and ``Cache-Control``."""

    package = "s3fs"

    @classmethod
    def filesystem(cls, scheme: str, options: dict[str, Any]) -> Any:
        """s3fs with SigV4 presigning unless the options choose otherwise.

        botocore presigns with the legacy SigV2 by default, which only AWS's oldest regions
        accept; requests themselves use SigV4 either way.
        """
        config = {"signature_version": "s3v4", **(options.get("config_kwargs") or {})}
        return fsspec.filesystem(scheme, **{**options, "config_kwargs": config})

    def write(self, path: str, data: bytes, *, content_type: str, cache_control: str) -> None:
        """One PutObject (multipart above 100 MiB), visible only once complete."""
        self.fs.pipe_file(path, data, ContentType=content_type, CacheControl=cache_control)

    def head(self, path: str) -> Head:
        """HeadObject directly, since s3fs's info() drops ``Cache-Control``."""
        bucket, key, _ = self.fs.split_path(path)
        if not key:
            raise FileNotFoundError(path)
        response = self.fs.call_s3("head_object", Bucket=bucket, Key=key)
        return Head(
            int(response["ContentLength"]),
            response.get("ContentType"),
            response.get("CacheControl"),
        )

    def presign_put(
        self, path: str, *, content_type: str, expires_in: timedelta
    ) -> tuple[str, dict[str, str]] | None:
        """A presigned PutObject with the content type among the signed headers.

        Anonymous access has nothing to sign with, so it hands out no targets.
        """
        if self.fs.anon:
            return None
        url: str = self.fs.url(
            path,
            expires=int(expires_in.total_seconds()),
            client_method="put_object",
            ContentType=content_type,
        )
        return url, {"Content-Type": content_type}
