"""The ``az://`` backend (adlfs): Azure Blob Storage and Azurite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from .base import Head
from .remote import RemoteBackend


def _setting(settings: Any, name: str) -> str | None:
    """One field of the SDK's ContentSettings, which adlfs may hand back as object or dict."""
    value = settings.get(name) if isinstance(settings, dict) else getattr(settings, name, None)
    return value if isinstance(value, str) else None


def _connection_string_fields(connection_string: str | None) -> dict[str, str]:
    """The ``Name=value`` pairs of a connection string, names lower-cased."""
    fields: dict[str, str] = {}
    for part in (connection_string or "").split(";"):
        name, separator, value = part.partition("=")
        if separator and name.strip():
            fields[name.strip().lower()] = value.strip()
    return fields


class AzureBackend(RemoteBackend):
    """HTTP metadata travels as the blob's ContentSettings."""

    package = "adlfs"

    def write(self, path: str, data: bytes, *, content_type: str, cache_control: str) -> None:
        """One block-blob upload, committed only once complete."""
        self.fs.pipe_file(
            path,
            data,
            content_settings={"content_type": content_type, "cache_control": cache_control},
        )

    def head(self, path: str) -> Head:
        """Blob properties carry the ContentSettings."""
        info = self.fs.info(path)
        if info.get("type") != "file":
            raise FileNotFoundError(path)
        settings = info.get("content_settings")
        return Head(
            int(info["size"]),
            _setting(settings, "content_type"),
            _setting(settings, "cache_control"),
        )

    def _account_key(self) -> tuple[str, str] | None:
        """Account name and shared key from the options or the connection string, if any.

        Credentials without a key (Azure AD, a SAS token, anonymous) cannot sign a SAS.
        """
        fields = _connection_string_fields(getattr(self.fs, "connection_string", None))
        name = fields.get("accountname") or getattr(self.fs, "account_name", None)
        key = fields.get("accountkey") or getattr(self.fs, "account_key", None)
        if not name or not key:
            return None
        return str(name), str(key)

    def presign_put(
        self, path: str, *, content_type: str, expires_in: timedelta
    ) -> tuple[str, dict[str, str]] | None:
        """A blob SAS allowing only create and write of this one blob, until it expires.

        A SAS cannot bind the request's content type: the client is asked to send it, and
        ingest sniffs the bytes rather than trusting it.
        """
        account = self._account_key()
        if account is None:
            return None
        from azure.storage.blob import BlobClient, BlobSasPermissions, generate_blob_sas

        account_name, account_key = account
        container, blob, _ = self.fs.split_path(path)
        account_url = str(self.fs.service_client.url)
        sas = generate_blob_sas(
            account_name=account_name,
            container_name=container,
            blob_name=blob,
            account_key=account_key,
            permission=BlobSasPermissions(create=True, write=True),
            expiry=datetime.now(UTC) + expires_in,
            protocol="https" if account_url.startswith("https:") else None,
        )
        client = BlobClient(account_url, container_name=container, blob_name=blob)
        url = f"{client.url}?{sas}"
        return url, {"Content-Type": content_type, "x-ms-blob-type": "BlockBlob"}
