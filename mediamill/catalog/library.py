"""The media library as the API pages through it: newest first, keyset pagination.

Keyset (``created_at, id`` strictly before the cursor) instead of OFFSET: page 5,000 of a
million-row workspace costs what page 1 costs, and rows inserted meanwhile never shift a
page. The ``(workspace_id, created_at)`` and ``(workspace_id, media_type, created_at)``
indexes serve every filter but filename search.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, selectinload

from mediamill.catalog.lifecycle import GONE, Entity
from mediamill.catalog.models import Attachment, Blob, Media, MediaType, Variant


@dataclass(frozen=True)
class Position:
    """Where a page ends: the last row's creation time and id."""

    created_at: datetime
    id: uuid.UUID


@dataclass(frozen=True)
class Page:
    """One page of media and whether more follow."""

    items: list[Media]
    has_next: bool


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def media_page(
    session: Session,
    workspace_id: int,
    *,
    first: int,
    after: Position | None = None,
    media_type: MediaType | None = None,
    entity: Entity | None = None,
    search: str | None = None,
) -> Page:
    """Up to ``first`` live media of one workspace, newest first, after ``after``."""
    query = select(Media).where(Media.workspace_id == workspace_id, Media.status.not_in(GONE))
    if media_type is not None:
        query = query.where(Media.media_type == media_type)
    if entity is not None:
        query = query.join(Attachment, Attachment.media_id == Media.id).where(
            Attachment.workspace_id == workspace_id,
            Attachment.entity_type == entity.type,
            Attachment.entity_id == entity.id,
        )
    if search:
        pattern = f"%{_escape_like(search)}%"
        query = query.where(Media.original_filename.ilike(pattern, escape="\\"))
    if after is not None:
        # The plain bound is implied by the OR below, but it is what lets both databases
        # start the index scan at the cursor instead of filtering every newer row.
        query = query.where(Media.created_at <= after.created_at)
        query = query.where(
            or_(
                Media.created_at < after.created_at,
                and_(Media.created_at == after.created_at, Media.id < after.id),
            )
        )
    rows = list(
        session.scalars(
            query.order_by(Media.created_at.desc(), Media.id.desc())
            .limit(first + 1)
            .options(
                # Build provenance is for support, not for the library: skip its JSON.
                selectinload(Media.blob)
                .selectinload(Blob.variants)
                .defer(Variant.library_versions, raiseload=True),
                selectinload(Media.workspace),
            )
        )
    )
    return Page(rows[:first], len(rows) > first)
