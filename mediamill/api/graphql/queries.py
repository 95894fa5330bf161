"""Read resolvers: the media library, one media, usage. All scoped to the caller's workspace."""

from __future__ import annotations

import uuid

import strawberry
from graphql import GraphQLError

from mediamill.api.graphql.context import Info, require
from mediamill.api.graphql.cursors import CursorError, decode, encode
from mediamill.api.graphql.types import (
    EntityInput,
    MediaConnection,
    MediaEdge,
    MediaNode,
    MediaTypeEnum,
    PageInfo,
    UnsignedInt64,
    Usage,
)
from mediamill.catalog import repository as repo
from mediamill.catalog.library import Position, card_page
from mediamill.catalog.lifecycle import Entity
from mediamill.catalog.models import MediaType
from mediamill.catalog.views import media_record

DEFAULT_FIRST = 20
MAX_SEARCH_LENGTH = 255


def parse_media_id(text: str) -> uuid.UUID | None:
    """A media id, or None for text that cannot be one (answered like an unknown id)."""
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _page_size(info: Info, first: int) -> int:
    limit = info.context.services.settings.graphql_max_first
    if not 1 <= first <= limit:
        raise GraphQLError(f"first must be between 1 and {limit}")
    return first


@strawberry.type
class Query:
    @strawberry.field(description="Live media of the caller's workspace, newest first.")
    def recent_media(
        self,
        info: Info,
        first: int = DEFAULT_FIRST,
        after: str | None = None,
        media_type: MediaTypeEnum | None = None,
        entity: EntityInput | None = None,
        search: str | None = None,
    ) -> MediaConnection:
        principal = require(info, "read")
        size = _page_size(info, first)
        if search is not None and len(search) > MAX_SEARCH_LENGTH:
            raise GraphQLError(f"search is longer than {MAX_SEARCH_LENGTH} characters")
        try:
            position = decode(after) if after else None
        except CursorError as error:
            raise GraphQLError(str(error)) from error
        services = info.context.services
        with services.reading() as session:
            page = card_page(
                session,
                principal.workspace_id,
                first=size,
                after=position,
                media_type=MediaType(media_type.value) if media_type else None,
                entity=Entity(entity.type, entity.id) if entity else None,
                search=search or None,
            )
        edges = [
            MediaEdge(
                cursor=encode(Position(card.created_at, card.id)),
                node=MediaNode.from_card(card, services.url_for),
            )
            for card in page.items
        ]
        return MediaConnection(
            edges=edges,
            nodes=[edge.node for edge in edges],
            page_info=PageInfo(
                has_next_page=page.has_next,
                has_previous_page=position is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )

    @strawberry.field(description="One media by id; null when it is not in this workspace.")
    def media(self, info: Info, id: strawberry.ID) -> MediaNode | None:
        principal = require(info, "read")
        media_id = parse_media_id(id)
        if media_id is None:
            return None
        services = info.context.services
        with services.reading() as session:
            media = repo.get_media(session, media_id, principal.workspace_id)
            if media is None:
                return None
            return MediaNode.from_record(media_record(media, services.url_for))

    @strawberry.field(description="What the caller's workspace stores, against its quota.")
    def usage(self, info: Info) -> Usage:
        import pandas as pd

        from mediamill.catalog.usage import usage  # pandas: only for the queries that need it

        principal = require(info, "read")
        with info.context.services.reading() as session:
            frame = usage(session, principal.workspace)
        row = frame.iloc[0] if len(frame) else None

        def count(column: str) -> int:
            return int(row[column]) if row is not None else 0

        quota = row["quota_bytes"] if row is not None else None
        return Usage(
            media_count=count("media"),
            failed_count=count("failed"),
            blob_count=count("blobs"),
            logical_bytes=UnsignedInt64(count("logical_bytes")),
            physical_bytes=UnsignedInt64(count("physical_bytes")),
            # Int64 column: an unlimited quota is pd.NA, whose comparisons raise.
            quota_bytes=None if quota is None or pd.isna(quota) else UnsignedInt64(int(quota)),
        )
