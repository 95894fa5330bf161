"""The catalog: SQL models, engines and migrations of mediamill's media records.

Nothing here connects at import time: engines and sessions are built at the edges with
`make_engine` and `make_session_factory` and handed down.
"""

from mediamill.catalog.base import Base
from mediamill.catalog.engine import begin_immediate, make_engine, make_session_factory
from mediamill.catalog.errors import (
    CatalogError,
    CatalogNotMigrated,
    NotFound,
    TransientCatalogError,
)
from mediamill.catalog.models import (
    Attachment,
    AuditEvent,
    Blob,
    BlobStatus,
    Media,
    MediaStatus,
    MediaType,
    Variant,
    Workspace,
)

__all__ = [
    "Attachment",
    "AuditEvent",
    "Base",
    "Blob",
    "BlobStatus",
    "CatalogError",
    "CatalogNotMigrated",
    "Media",
    "MediaStatus",
    "MediaType",
    "NotFound",
    "TransientCatalogError",
    "Variant",
    "Workspace",
    "begin_immediate",
    "make_engine",
    "make_session_factory",
]
