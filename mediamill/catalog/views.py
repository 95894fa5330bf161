"""The one JSON shape of a media record, shared by the CLI and the API.

Building URLs belongs to storage, so the caller hands in ``url_for``; the catalog only
knows keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mediamill.catalog.models import Media, Variant

FORMAT_ORDER = {"avif": 0, "webp": 1, "jpeg": 2, "png": 3}
# Bookkeeping the pipeline keeps on a blob that is not the media's business.
INTERNAL_METADATA = frozenset({"key_entity"})


def current_variants(variants: list[Variant]) -> list[Variant]:
    """The newest spec version of each (name, format); older immutable versions are history."""
    newest: dict[tuple[str, str], Variant] = {}
    for variant in variants:
        slot = (variant.name, variant.format)
        kept = newest.get(slot)
        if kept is None or variant.created_at > kept.created_at:
            newest[slot] = variant
    return sorted(newest.values(), key=lambda v: (-v.width, FORMAT_ORDER.get(v.format, 9), v.name))


def variant_record(variant: Variant, url_for: Callable[[str], str]) -> dict[str, Any]:
    return {
        "name": variant.name,
        "format": variant.format,
        "mime_type": variant.mime_type,
        "width": variant.width,
        "height": variant.height,
        "size": variant.size,
        "spec_version": variant.spec_version,
        "key": variant.key,
        "url": url_for(variant.key),
    }


def media_record(media: Media, url_for: Callable[[str], str]) -> dict[str, Any]:
    """``media show --json``: the media row, its blob's facts and its current variants."""
    blob = media.blob
    error = (
        {"code": media.error_code, "message": media.error_message}
        if media.error_code is not None
        else None
    )
    return {
        "id": str(media.id),
        "workspace": media.workspace.slug,
        "media_type": media.media_type.value if media.media_type is not None else None,
        "status": media.status.value,
        "error": error,
        "filename": media.original_filename,
        "uploader": media.uploader,
        "alt": media.alt_text,
        "source": media.source,
        "sha256": blob.sha256 if blob is not None else media.meta.get("sha256"),
        "size": blob.size if blob is not None else media.size,
        "mime_type": blob.mime_type if blob is not None else media.mime_type,
        "width": blob.width if blob is not None else None,
        "height": blob.height if blob is not None else None,
        "placeholder": blob.placeholder if blob is not None else None,
        "original": (
            {"key": blob.original_key, "url": url_for(blob.original_key)}
            if blob is not None and blob.original_key
            else None
        ),
        "metadata": (
            {k: v for k, v in blob.meta.items() if k not in INTERNAL_METADATA}
            if blob is not None
            else {}
        ),
        "variants": [variant_record(v, url_for) for v in current_variants(list(blob.variants))]
        if blob is not None
        else [],
        "created_at": media.created_at.isoformat(),
        "updated_at": media.updated_at.isoformat(),
        "flow_run_id": str(media.flow_run_id) if media.flow_run_id else None,
    }
