"""Small builders of valid rows, so each test states only what it is about."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy.orm import Session

from mediamill.catalog.models import Blob, Media, MediaType, Variant, Workspace


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def add_workspace(session: Session, slug: str) -> Workspace:
    workspace = Workspace(slug=slug, name=slug.title())
    session.add(workspace)
    session.flush()
    return workspace


def blob_values(workspace: Workspace, content: str = "cat", **fields: Any) -> dict[str, Any]:
    """The columns of a valid blob holding ``content``, for a row or a claim."""
    values: dict[str, Any] = {
        "workspace_id": workspace.id,
        "sha256": sha256_of(content),
        "size": len(content),
        "mime_type": "image/jpeg",
        "media_type": MediaType.image,
        "original_key": f"tenants/workspace_{workspace.id}/originals/{sha256_of(content)}",
    }
    return values | fields


def add_blob(session: Session, workspace: Workspace, content: str = "cat", **fields: Any) -> Blob:
    blob = Blob(**blob_values(workspace, content, **fields))
    session.add(blob)
    session.flush()
    return blob


def add_media(
    session: Session, workspace: Workspace, blob: Blob | None = None, **fields: Any
) -> Media:
    media = Media(workspace_id=workspace.id, blob_id=blob.id if blob else None, **fields)
    session.add(media)
    session.flush()
    return media


def new_variant(blob: Blob, name: str = "optimized", fmt: str = "webp", **fields: Any) -> Variant:
    values: dict[str, Any] = {
        "blob_id": blob.id,
        "name": name,
        "format": fmt,
        "spec_version": "v1",
        "mime_type": f"image/{fmt}",
        "width": 640,
        "height": 480,
        "size": 1234,
        "key": f"variants/{blob.sha256}/{name}.{fmt}",
        "encoder": "libvips",
        "library_versions": {"libvips": "8.18.7"},
    }
    values.update(fields)
    return Variant(**values)
