"""GraphQL object and input types; every media is built from the catalog's one JSON record."""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import datetime
from typing import Any, NewType

import strawberry
from strawberry.file_uploads import Upload
from strawberry.scalars import JSON

from mediamill.catalog.library import MediaCard

UnsignedInt64 = NewType("UnsignedInt64", int)
# Registered with the schema (see schema.SCALARS): GraphQL's Int stops at 2^31.
UNSIGNED_INT64 = strawberry.scalar(
    name="UnsignedInt64",
    serialize=str,
    parse_value=int,
    description="A byte count, as a string: GraphQL's Int stops at 2^31.",
)


@strawberry.enum(name="MediaType")
class MediaTypeEnum(enum.Enum):
    IMAGE = "image"
    VIDEO = "video"
    MODEL = "model"
    DOCUMENT = "document"


@strawberry.enum(name="MediaStatus")
class MediaStatusEnum(enum.Enum):
    PENDING = "pending"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"
    DELETED = "deleted"
    PURGED = "purged"


@strawberry.type
class MediaError:
    """Why processing failed: a stable ``code`` for machines, a ``message`` for people."""

    code: str
    message: str


@strawberry.type
class Variant:
    """One derived file, served from the CDN."""

    name: str
    format: str
    mime_type: str
    width: int
    height: int
    size: int
    url: str


@strawberry.type(name="Media")
class MediaNode:
    """One upload: its status, facts and variants; ``id`` is the id the CLI prints."""

    id: strawberry.ID
    media_type: MediaTypeEnum | None
    status: MediaStatusEnum
    error: MediaError | None
    filename: str | None
    alt: str | None
    uploader: str | None
    mime_type: str | None
    size: int | None
    width: int | None
    height: int | None
    placeholder: str | None
    sha256: str | None
    metadata: JSON
    variants: list[Variant]
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="The first variant called `name` (e.g. thumb, optimized).")
    def preview(self, name: str = "thumb") -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> MediaNode:
        error = record["error"]
        return cls(
            id=strawberry.ID(record["id"]),
            media_type=MediaTypeEnum(record["media_type"]) if record["media_type"] else None,
            status=MediaStatusEnum(record["status"]),
            error=MediaError(code=error["code"], message=error["message"] or "") if error else None,
            filename=record["filename"],
            alt=record["alt"],
            uploader=record["uploader"],
            mime_type=record["mime_type"],
            size=record["size"],
            width=record["width"],
            height=record["height"],
            placeholder=record["placeholder"],
            sha256=record["sha256"],
            metadata=record["metadata"],
            variants=[
                Variant(
                    name=v["name"],
                    format=v["format"],
                    mime_type=v["mime_type"],
                    width=v["width"],
                    height=v["height"],
                    size=v["size"],
                    url=v["url"],
                )
                for v in record["variants"]
            ],
            created_at=datetime.fromisoformat(record["created_at"]),
            updated_at=datetime.fromisoformat(record["updated_at"]),
        )

    @classmethod
    def from_card(cls, card: MediaCard, url_for: Callable[[str], str]) -> MediaNode:
        """The same node ``from_record`` builds, straight from a page row (no JSON detour)."""
        return cls(
            id=strawberry.ID(str(card.id)),
            media_type=_MEDIA_TYPES[card.media_type] if card.media_type else None,
            status=_STATUSES[card.status],
            error=(
                MediaError(code=card.error_code, message=card.error_message or "")
                if card.error_code is not None
                else None
            ),
            filename=card.filename,
            alt=card.alt,
            uploader=card.uploader,
            mime_type=card.mime_type,
            size=card.size,
            width=card.width,
            height=card.height,
            placeholder=card.placeholder,
            sha256=card.sha256,
            metadata=JSON(card.metadata),
            variants=[
                Variant(
                    name=v.name,
                    format=v.format,
                    mime_type=v.mime_type,
                    width=v.width,
                    height=v.height,
                    size=v.size,
                    url=url_for(v.key),
                )
                for v in card.variants
            ],
            created_at=card.created_at,
            updated_at=card.updated_at,
        )


# Catalog enum values to GraphQL enum members, looked up once per node.
_MEDIA_TYPES = {member.value: member for member in MediaTypeEnum}
_STATUSES = {member.value: member for member in MediaStatusEnum}


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class MediaEdge:
    cursor: str
    node: MediaNode


@strawberry.type
class MediaConnection:
    """A Relay connection of media, newest first."""

    edges: list[MediaEdge]
    nodes: list[MediaNode]
    page_info: PageInfo


@strawberry.type
class Usage:
    """What the workspace stores, against its quota."""

    media_count: int
    failed_count: int
    blob_count: int
    logical_bytes: UnsignedInt64
    physical_bytes: UnsignedInt64
    quota_bytes: UnsignedInt64 | None


@strawberry.type
class UserError:
    """A problem with the input, Shopify style: which ``field``, a ``code`` and a ``message``."""

    field: list[str] | None
    code: str
    message: str


@strawberry.type
class MediaPayload:
    media: MediaNode | None
    user_errors: list[UserError]


@strawberry.type
class StagedUploadHeader:
    name: str
    value: str


@strawberry.type
class StagedUploadTarget:
    """Where to send one file's bytes: ``method`` to ``url`` with ``headers``."""

    url: str
    method: str
    resource_url: str
    headers: list[StagedUploadHeader]
    expires_at: datetime


@strawberry.type
class StagedUploadsCreatePayload:
    staged_targets: list[StagedUploadTarget]
    user_errors: list[UserError]


@strawberry.input
class EntityInput:
    """An entity of the host platform, e.g. ``{type: "product", id: "42"}``."""

    type: str
    id: str


@strawberry.input
class StagedUploadInput:
    filename: str
    file_size: int
    mime_type: str | None = None


@strawberry.input
class MediaCreateInput:
    """A staged upload's ``resourceUrl`` as ``originalSource``, or a multipart ``file``."""

    original_source: str | None = None
    file: Upload | None = None
    filename: str | None = None
    alt: str | None = None
    entity: EntityInput | None = None
