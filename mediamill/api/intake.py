"""Every API upload starts the same way: a pending media row, then an ``ingest-upload`` run.

Webhooks add an event id, remembered in the same transaction as the media row, so a
redelivery is answered with the first delivery's media and run instead of a second run. A
GraphQL upload is remembered under an event named after its media. Either way the delivery
row keeps the run's job until the run exists (see `mediamill.api.redispatch`).
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote, urlsplit

from mediamill.api.dispatch import (
    ENTITY_CLEANUP,
    INGEST_UPLOAD,
    CleanupJob,
    DispatchError,
    StoppedBeforeStartError,
    UploadJob,
)
from mediamill.api.services import Services
from mediamill.catalog import access, uploads
from mediamill.catalog.base import utcnow
from mediamill.catalog.lifecycle import Entity
from mediamill.tasks.filenames import display_filename

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

DISPATCH_FAILED = "dispatch_failed"
# The event a GraphQL upload is kept under: "/" is in no sender's event id (see
# `webhooks.EVENT_ID`; bucket events start with "s3:"), so none can claim it.
API_UPLOAD_EVENT_PREFIX = "upload/"
API_UPLOAD_EVENT_TYPE = "upload.created"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """A webhook event's identity, for at-least-once delivery."""

    id: str
    type: str


@dataclass(frozen=True)
class Started:
    """What happened to one request: a run started now, or one started by an earlier copy."""

    status: Literal["accepted", "duplicate"]
    media_id: uuid.UUID | None
    run_id: uuid.UUID | None


def start_upload(
    services: Services,
    workspace_id: int,
    job: UploadJob,
    entity: Entity | None,
    event: Event | None = None,
    known: access.WebhookSigning | None = None,
) -> Started:
    """Create the pending media and start its run; raises DispatchError (media failed).

    ``known``: the catalog's answer about the event, if the caller already asked.
    """
    seen = None if event is None else _seen_before(services, workspace_id, event, known)
    if seen is not None:
        return seen
    services.launcher.admit()
    media_id = uuid.uuid4()
    filename = display_filename(job.filename or _url_filename(job.url) or "upload")
    job = dataclasses.replace(job, media_id=str(media_id), filename=filename)
    # A GraphQL upload's job is kept the same way, under an event named after its media,
    # so a stop or a crash before its run exists does not strand it.
    claimed_as = event or Event(f"{API_UPLOAD_EVENT_PREFIX}{media_id}", API_UPLOAD_EVENT_TYPE)
    with services.writing() as session:
        # The media id is known at once, so a copy arriving while the run is being started
        # is answered with the same media.
        delivery_id = _claim(
            services, session, workspace_id, claimed_as, INGEST_UPLOAD, job, media_id=media_id
        )
        if delivery_id is not None:
            uploads.create_pending_media(
                session,
                workspace_id,
                uploader=job.user,
                filename=filename,
                source=job.url or f"upload:{filename}",
                alt_text=job.alt,
                entity=entity,
                media_id=media_id,
                incoming_key=job.key,
            )
    if delivery_id is None:  # answered after the write lock is let go, as a cleanup is
        if event is None:  # a new media's event cannot have been claimed before
            raise RuntimeError(f"event {claimed_as.id} of a new media was already claimed")
        return _duplicate(services, workspace_id, event)
    key = f"{workspace_id}:{claimed_as.id}"
    run_id = launch_upload(services, workspace_id, job, key, claimed_as, delivery_id)
    return Started("accepted", media_id, run_id)


def launch_upload(
    services: Services,
    workspace_id: int,
    job: UploadJob,
    key: str,
    announced: Event,
    delivery_id: int,
    *,
    restart: bool = False,
) -> uuid.UUID | None:
    """Start the ``ingest-upload`` run of a pending media: its id, or None while it is created.

    DispatchError when Prefect refused at once. For a request still waiting for its answer,
    the media is failed and the delivery forgotten, so the sender's retry starts over. A
    ``restart`` (an event answered long ago) changes nothing: its job waits for the next look.
    """
    media_id = uuid.UUID(job.media_id)

    def record(run_id: uuid.UUID) -> None:
        with services.writing() as session:
            uploads.note_run(session, media_id, run_id)
            access.mark_dispatched(session, delivery_id, run_id, media_id)
        _announce(job.workspace, announced, run_id)

    def settle(run_id: uuid.UUID | None, error: DispatchError | None) -> None:
        """After a 202, the API owns the outcome: a run that never started fails the media.

        Except at a stop: the delivery's job is kept, and the next API process starts it.
        """
        try:
            if run_id is not None:
                record(run_id)
            elif isinstance(error, StoppedBeforeStartError):
                logger.info("upload %s is left for the next API process to start", media_id)
            else:
                with services.writing() as session:
                    uploads.fail_pending(
                        session, workspace_id, media_id, DISPATCH_FAILED, str(error)
                    )
                    access.release_delivery(session, delivery_id)
        finally:
            _done_starting(services, delivery_id)

    services.starting.add(delivery_id)
    try:
        run_id = services.launcher.launch(
            lambda: services.dispatcher.ingest_upload(job, idempotency_key=key), settle
        )
    except DispatchError as error:
        _done_starting(services, delivery_id)
        if restart:
            raise
        # Failed before the answer: say 503 and forget the delivery, so the sender retries.
        with services.writing() as session:
            access.forget_delivery(session, delivery_id)
            uploads.fail_pending(session, workspace_id, media_id, DISPATCH_FAILED, str(error))
        raise
    if run_id is not None:
        try:
            record(run_id)
        finally:
            _done_starting(services, delivery_id)
    return run_id


def _done_starting(services: Services, delivery_id: int) -> None:
    """The delivery's start is over, one way or another: redispatch may look at it again."""
    services.starting.discard(delivery_id)


def _claim(
    services: Services,
    session: Session,
    workspace_id: int,
    event: Event,
    kind: str,
    job: UploadJob | CleanupJob,
    *,
    media_id: uuid.UUID | None = None,
) -> int | None:
    """Claim the event with the job it starts (its delivery id), or None if seen before.

    The job is kept until its run exists, so another API process can start it should this
    one not have by ``retry_at``.
    """
    retry_at = utcnow() + timedelta(seconds=services.settings.dispatch_retry_seconds)
    return access.claim_delivery(
        session,
        workspace_id,
        event.id,
        event.type,
        job={"kind": kind, "parameters": dataclasses.asdict(job)},
        retry_at=retry_at,
        media_id=media_id,
    )


def _url_filename(url: str | None) -> str | None:
    """The last path segment of a URL, as a merchant would name the file."""
    if url is None:
        return None
    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    return unquote(path.rsplit("/", 1)[-1]) or None


def start_cleanup(
    services: Services,
    workspace_id: int,
    job: CleanupJob,
    event: Event,
    known: access.WebhookSigning | None = None,
) -> Started:
    """Start the ``entity-cleanup`` run of an entity-deleted event, once per event id."""
    if (seen := _seen_before(services, workspace_id, event, known)) is not None:
        return seen
    services.launcher.admit()
    with services.writing_one_statement() as session:
        delivery_id = _claim(services, session, workspace_id, event, ENTITY_CLEANUP, job)
    if delivery_id is None:
        return _duplicate(services, workspace_id, event)
    run_id = launch_cleanup(services, workspace_id, job, event, delivery_id)
    return Started("accepted", None, run_id)


def launch_cleanup(
    services: Services,
    workspace_id: int,
    job: CleanupJob,
    event: Event,
    delivery_id: int,
    *,
    restart: bool = False,
) -> uuid.UUID | None:
    """Start the ``entity-cleanup`` run of a claimed event: its id, or None while it is created.

    DispatchError when Prefect refused at once: for a request still waiting for its answer
    the delivery is forgotten, so the sender's retry runs it; a ``restart`` keeps it. A
    start that fails after the answer keeps its job too, and an API process starts it again
    once its ``retry_at`` passes.
    """

    def record(run_id: uuid.UUID) -> None:
        with services.writing_one_statement() as session:
            access.mark_dispatched(session, delivery_id, run_id, None)
        _announce(job.workspace, event, run_id)

    def settle(run_id: uuid.UUID | None, error: DispatchError | None) -> None:
        try:
            if run_id is not None:
                record(run_id)
                return
            logger.error(
                "entity cleanup for event %s did not start, tried again later: %s", event.id, error
            )
        finally:
            _done_starting(services, delivery_id)

    services.starting.add(delivery_id)
    try:
        run_id = services.launcher.launch(
            lambda: services.dispatcher.entity_cleanup(
                job, idempotency_key=f"{workspace_id}:{event.id}"
            ),
            settle,
        )
    except DispatchError:
        _done_starting(services, delivery_id)
        if not restart:
            with services.writing() as session:
                access.forget_delivery(session, delivery_id)
        raise
    if run_id is not None:
        try:
            record(run_id)
        finally:
            _done_starting(services, delivery_id)
    return run_id


def _announce(workspace: str, event: Event, run_id: uuid.UUID) -> None:
    """``mediamill.api.accepted``: the event in Prefect's feed, linked to the run it started."""
    from prefect.events import emit_event

    emit_event(
        event="mediamill.api.accepted",
        resource={
            "prefect.resource.id": f"mediamill.api-event.{event.id}",
            "mediamill.workspace": workspace,
            "mediamill.event-type": event.type,
        },
        related=[
            {
                "prefect.resource.id": f"prefect.flow-run.{run_id}",
                "prefect.resource.role": "flow-run",
            }
        ],
    )


def _seen_before(
    services: Services,
    workspace_id: int,
    event: Event,
    known: access.WebhookSigning | None = None,
) -> Started | None:
    """A redelivery's answer from a plain read, or None when the event looks new.

    Most redeliveries find their event committed long ago, and answering them must not queue
    for the catalog's write lock behind busy runs; a copy racing the first delivery finds
    nothing here and loses the claim below instead. ``known`` answers without a read when
    it was looked up for this event in this workspace.
    """
    if known is not None and (known.workspace_id, known.event_id) == (workspace_id, event.id):
        prior = known.prior
    else:
        with services.reading() as session:
            prior = access.find_delivery(session, workspace_id, event.id)
    if prior is None:
        return None
    return Started("duplicate", prior.media_id, prior.run_id)


def _duplicate(services: Services, workspace_id: int, event: Event) -> Started:
    """A copy that lost the claim: the winner's media and run (none if it was since forgotten)."""
    return _seen_before(services, workspace_id, event) or Started("duplicate", None, None)
