"""The media library as the API pages through it: newest first, keyset pagination.

Keyset (``created_at, id`` strictly before the cursor) instead of OFFSET: page 5,000 of a
million-row workspace costs what page 1 costs, and rows inserted meanwhile never shift a
page. The ``(workspace_id, created_at)`` and ``(workspace_id, media_type, created_at)``
indexes serve every filter but filename search.

``card_page`` answers plain rows (``MediaCard``), not ORM entities: on the API's hot path
building entities cost more than the SQL.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import BindParameter, Select, and_, bindparam, or_, select
from sqlalchemy.orm import Session

from mediamill.catalog.lifecycle import GONE, Entity
from mediamill.catalog.models import Attachment, Blob, Media, MediaStatus, MediaType, Variant
from mediamill.catalog.views import FORMAT_ORDER, INTERNAL_METADATA


@dataclass(frozen=True)
class Position:
    """Where a page ends: the last row's creation time and id."""

    created_at: datetime
    id: uuid.UUID


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@functools.cache
def _page_statement(by_type: bool, by_entity: bool, by_search: bool, after: bool) -> Select[Any]:
    """One page of a workspace's live media, newest first, with the filters asked for.

    Built once per combination of filters, with bound parameters for every value: the
    API runs it on every request, and building and keying a new statement cost about as
    much as running it. Parameters: ``workspace_id``, ``limit`` and, as used,
    ``media_type``, ``entity_type``/``entity_id``, ``pattern``, ``after_at``/``after_id``.
    """
    query = (
        select(*_CARD_COLUMNS)
        .outerjoin(Blob, Blob.id == Media.blob_id)
        .where(Media.workspace_id == bindparam("workspace_id"), Media.status.not_in(GONE))
    )
    if by_type:
        query = query.where(Media.media_type == bindparam("media_type"))
    if by_entity:
        query = query.join(Attachment, Attachment.media_id == Media.id).where(
            Attachment.workspace_id == bindparam("workspace_id"),
            Attachment.entity_type == bindparam("entity_type"),
            Attachment.entity_id == bindparam("entity_id"),
        )
    if by_search:
        query = query.where(Media.original_filename.ilike(bindparam("pattern"), escape="\\"))
    if after:
        # The plain bound is implied by the OR below, but it is what lets both databases
        # start the index scan at the cursor instead of filtering every newer row.
        after_at: BindParameter[Any] = bindparam("after_at")
        after_id: BindParameter[Any] = bindparam("after_id")
        query = query.where(Media.created_at <= after_at).where(
            or_(
                Media.created_at < after_at,
                and_(Media.created_at == after_at, Media.id < after_id),
            )
        )
    return query.order_by(Media.created_at.desc(), Media.id.desc()).limit(bindparam("limit"))


class VariantCard(NamedTuple):
    """A current variant as the library shows it (tuples: a page builds ~150 of these)."""

    name: str
    format: str
    mime_type: str
    width: int
    height: int
    size: int
    key: str


class MediaCard(NamedTuple):
    """One media as ``media_record`` shapes it (blob facts first), minus what pages skip."""

    id: uuid.UUID
    media_type: MediaType | None
    status: MediaStatus
    error_code: str | None
    error_message: str | None
    filename: str | None
    alt: str | None
    uploader: str | None
    mime_type: str | None
    size: int | None
    width: int | None
    height: int | None
    placeholder: str | None
    sha256: str | None
    metadata: dict[str, Any]
    variants: list[VariantCard]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CardPage:
    """One page of media cards and whether more follow."""

    items: list[MediaCard]
    has_next: bool


_CARD_COLUMNS = (
    Media.id,
    Media.media_type,
    Media.status,
    Media.error_code,
    Media.error_message,
    Media.original_filename,
    Media.alt_text,
    Media.uploader,
    Media.mime_type,
    Media.size,
    Media.meta,
    Media.created_at,
    Media.updated_at,
    Media.blob_id,
    Blob.sha256,
    Blob.size,
    Blob.mime_type,
    Blob.width,
    Blob.height,
    Blob.placeholder,
    Blob.meta,
)
# Every stored version of the page's variants, newest first within each blob, so the first
# row of each (name, format) is the current one; built once, bound per page.
_VARIANTS = (
    select(
        Variant.blob_id,
        Variant.name,
        Variant.format,
        Variant.mime_type,
        Variant.width,
        Variant.height,
        Variant.size,
        Variant.key,
    )
    .where(Variant.blob_id.in_(bindparam("blob_ids", expanding=True)))
    .order_by(Variant.blob_id, Variant.created_at.desc(), Variant.id)
)


def _current_variants(rows: list[Any]) -> list[VariantCard]:
    """The first (newest) row of each (name, format), ordered as ``views.current_variants``."""
    newest: dict[tuple[str, str], VariantCard] = {}
    for _, *fields in rows:
        variant = VariantCard(*fields)
        newest.setdefault((variant.name, variant.format), variant)
    return sorted(newest.values(), key=lambda v: (-v.width, FORMAT_ORDER.get(v.format, 9), v.name))


def card_page(
    session: Session,
    workspace_id: int,
    *,
    first: int,
    after: Position | None = None,
    media_type: MediaType | None = None,
    entity: Entity | None = None,
    search: str | None = None,
) -> CardPage:
    """Up to ``first`` live media of one workspace, newest first, after ``after``, as plain
    rows: one query for the page and its blobs, one for their variants."""
    parameters: dict[str, Any] = {"workspace_id": workspace_id, "limit": first + 1}
    if media_type is not None:
        parameters["media_type"] = media_type
    if entity is not None:
        parameters.update(entity_type=entity.type, entity_id=entity.id)
    if search:
        parameters["pattern"] = f"%{_escape_like(search)}%"
    if after is not None:
        parameters.update(after_at=after.created_at, after_id=after.id)
    statement = _page_statement(
        media_type is not None, entity is not None, bool(search), after is not None
    )
    # Plain rows of plain columns: the connection skips the ORM's per-statement set-up.
    connection = session.connection()
    rows = connection.execute(statement, parameters).all()
    has_next = len(rows) > first
    rows = rows[:first]
    blob_ids = {row.blob_id for row in rows if row.blob_id is not None}
    variants: dict[int, list[Any]] = {blob_id: [] for blob_id in blob_ids}
    if blob_ids:
        # All at once: the driver's fetchall, not a fetch per row (a page has ~150).
        for variant in connection.execute(_VARIANTS, {"blob_ids": list(blob_ids)}).all():
            variants[variant[0]].append(variant)
    cards = []
    for row in rows:
        (
            media_id,
            media_type_,
            status,
            error_code,
            error_message,
            filename,
            alt,
            uploader,
            media_mime,
            media_size,
            media_meta,
            created_at,
            updated_at,
            blob_id,
            sha256,
            blob_size,
            blob_mime,
            width,
            height,
            placeholder,
            blob_meta,
        ) = row
        if blob_id is None:
            card = MediaCard(
                media_id,
                media_type_,
                status,
                error_code,
                error_message,
                filename,
                alt,
                uploader,
                media_mime,
                media_size,
                None,
                None,
                None,
                media_meta.get("sha256"),
                {},
                [],
                created_at,
                updated_at,
            )
        else:
            card = MediaCard(
                media_id,
                media_type_,
                status,
                error_code,
                error_message,
                filename,
                alt,
                uploader,
                blob_mime,
                blob_size,
                width,
                height,
                placeholder,
                sha256,
                {k: v for k, v in blob_meta.items() if k not in INTERNAL_METADATA},
                _current_variants(variants[blob_id]),
                created_at,
                updated_at,
            )
        cards.append(card)
    return CardPage(cards, has_next)
