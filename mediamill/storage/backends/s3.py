"""The ``s3://`` backend (s3fs): AWS S3 and S3-compatible stores such as MinIO."""

from __future__ import annotations

from .base import Head
from .remote import RemoteBackend


class S3Backend(RemoteBackend):
    """HTTP metadata travels as the object's own ``Content-Type`` and ``Cache-Control``."""

    package = "s3fs"

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
