"""The object key layout, built only from validated parts so no input can escape its tenant.

``tenants/workspace_{id}/{entity_type}/{shard}/{entity_id}/{media_type}/{version}/{filename}``
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import quote

TENANTS = "tenants"
ORIGINAL_VERSION = "original"
UNATTACHED_ENTITY_TYPE = "library"
UNATTACHED_ENTITY_ID = "unattached"
MEDIA_TYPES = frozenset({"image", "video", "model", "document"})

_ENTITY_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_ENTITY_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_VERSION = re.compile(r"[a-z0-9_-]{1,64}")
_VARIANT = re.compile(r"[a-z0-9_-]{1,64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_EXTENSION = re.compile(r"[a-z0-9]{1,8}")
_FILENAME = re.compile(r"[0-9a-f]{64}(?:_[a-z0-9_-]{1,64})?\.[a-z0-9]{1,8}")
# What a URL path carries as it is: RFC 3986's unreserved characters and the separator.
_URL_SAFE = re.compile(r"[A-Za-z0-9_.~/-]*")


def _require(pattern: re.Pattern[str], value: str, what: str) -> str:
    """Reject anything but an exact match, naming the part so the caller can fix it."""
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise ValueError(f"invalid {what} {value!r}: must match {pattern.pattern}")
    return value


def shard(entity_id: str) -> str:
    """Spread entities over 256 prefixes so no single listing or partition gets hot."""
    return hashlib.sha256(entity_id.encode("utf-8")).hexdigest()[:2]


def workspace_prefix(workspace_id: int) -> str:
    """Everything a tenant owns lives under this prefix, for quotas, listings and purges."""
    if isinstance(workspace_id, bool) or not isinstance(workspace_id, int) or workspace_id < 0:
        raise ValueError(f"invalid workspace id {workspace_id!r}: must be a non-negative int")
    return f"{TENANTS}/workspace_{workspace_id}/"


def original_filename(sha256: str, extension: str) -> str:
    """Name an original by its content hash, so user-supplied names never reach a key."""
    _require(_SHA256, sha256, "sha256")
    _require(_EXTENSION, extension, "extension")
    return f"{sha256}.{extension}"


def variant_filename(sha256: str, variant: str, extension: str) -> str:
    """Name a variant after its source's hash, so every variant of a blob sorts together."""
    _require(_SHA256, sha256, "sha256")
    _require(_VARIANT, variant, "variant")
    _require(_EXTENSION, extension, "extension")
    return f"{sha256}_{variant}.{extension}"


def media_key(
    *,
    workspace_id: int,
    entity_type: str,
    entity_id: str,
    media_type: str,
    version: str,
    filename: str,
) -> str:
    """Build the full key, refusing any part that could add a segment or leave the tenant."""
    _require(_ENTITY_TYPE, entity_type, "entity type")
    _require(_ENTITY_ID, entity_id, "entity id")
    _require(_VERSION, version, "version")
    _require(_FILENAME, filename, "filename (build it with original_filename/variant_filename)")
    if media_type not in MEDIA_TYPES:
        raise ValueError(f"invalid media type {media_type!r}: one of {sorted(MEDIA_TYPES)}")
    return (
        f"{workspace_prefix(workspace_id)}{entity_type}/{shard(entity_id)}/{entity_id}/"
        f"{media_type}/{version}/{filename}"
    )


def url_path(key: str) -> str:
    """``key`` percent-encoded for a URL's path, as ``quote`` does it.

    The keys mediamill builds need no escaping, and seeing that costs half of what
    ``quote`` does: a page of media has about 130 variant URLs.
    """
    if _URL_SAFE.fullmatch(key) is not None:
        return key
    return quote(key)
