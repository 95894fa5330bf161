"""Media the API creates before any byte is processed, so a caller gets an id at once.

An API upload (staged file, URL, bucket event) is answered with a ``pending`` media row;
the ingest run that follows adopts that row instead of creating one, so the id the caller
holds is the id that turns ``ready`` or ``failed``.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mediamill.catalog.lifecycle import GONE, Entity, attach
from mediamill.catalog.models import Media, MediaStatus
from mediamill.catalog.repository import record_audit

INCOMING_KEY = "incoming_key"
IN_FLIGHT = (MediaStatus.pending, MediaStatus.processing)


def create_pending_media(
    session: Session,
    workspace_id: int,
    *,
    uploader: str | None,
    filename: str,
    source: str,
    alt_text: str | None = None,
    entity: Entity | None = None,
    media_id: uuid.UUID | None = None,
    incoming_key: str | None = None,
) -> Media:
    """A ``pending`` media row, attached to ``entity`` at once so its gallery shows progress.

    ``incoming_key`` (the staged object it will be made from) keeps the orphan sweep away
    from that object while the media is in flight.
    """
    media = Media(
        id=media_id or uuid.uuid4(),
        workspace_id=workspace_id,
        uploader=uploader,
        original_filename=filename,
        source=source[:1024],
        alt_text=alt_text,
        status=MediaStatus.pending,
        meta={INCOMING_KEY: incoming_key} if incoming_key else {},
    )
    session.add(media)
    session.flush()
    if entity is not None:
        attach(session, media, entity, uploader)
    record_audit(
        session,
        workspace_id=workspace_id,
        action="media.created",
        actor=uploader,
        media_id=media.id,
        details={"source": media.source, "filename": filename},
    )
    return media


def pending_media(session: Session, workspace_id: int, media_id: uuid.UUID) -> Media | None:
    """The row an ingest run adopts, locked; None when it is gone or was never created."""
    media = session.scalar(
        select(Media)
        .where(Media.id == media_id, Media.workspace_id == workspace_id)
        .with_for_update()
    )
    if media is None or media.status in GONE:
        return None
    return media


def fail_pending(
    session: Session, workspace_id: int, media_id: uuid.UUID, code: str, message: str
) -> bool:
    """Fail a pending row whose run could not even start; False if it was not pending."""
    media = session.scalar(
        select(Media)
        .where(Media.id == media_id, Media.workspace_id == workspace_id)
        .with_for_update()
    )
    if media is None or media.status != MediaStatus.pending:
        return False
    media.status = MediaStatus.failed
    media.error_code = code
    media.error_message = message
    record_audit(
        session,
        workspace_id=workspace_id,
        action="media.failed",
        actor=media.uploader,
        media_id=media.id,
        details={"code": code, "message": message},
    )
    return True


def note_run(session: Session, media_id: uuid.UUID, run_id: uuid.UUID) -> None:
    """Point a pending media at the flow run that will process it, for the UI and support."""
    session.execute(
        update(Media)
        .where(Media.id == media_id, Media.flow_run_id.is_(None))
        .values(flow_run_id=run_id)
    )


def in_flight_incoming_keys(session: Session, workspace_id: int) -> set[str]:
    """Staged objects that a media still waiting to be processed will be made from."""
    rows = session.scalars(
        select(Media.meta).where(Media.workspace_id == workspace_id, Media.status.in_(IN_FLIGHT))
    )
    return {str(meta[INCOMING_KEY]) for meta in rows if meta and meta.get(INCOMING_KEY)}
