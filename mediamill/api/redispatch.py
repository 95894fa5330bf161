"""Start again the accepted webhook events and API uploads whose run was never created.

An event (a GraphQL upload is kept as one named after its media, see
`mediamill.api.intake`) is answered once it is recorded, and its run is created a moment
later. If the API process stops or dies in between, the delivery row still holds the run's
parameters (``job``) and a ``retry_at``. Every API process looks for such rows now and
then and starts each one, with the event's own idempotency key: a Prefect server that
did create the run returns that run instead of a second one.

``retry_at`` is set ``MEDIAMILL_DISPATCH_RETRY_SECONDS`` (300 s) after the event was
accepted, far beyond the few seconds a live process takes to create a run, so a start
still in flight elsewhere is left alone. A process takes a row by moving its
``retry_at`` on by as much again, so two processes never start the same one at once.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

from mediamill.api import intake
from mediamill.api.dispatch import (
    ENTITY_CLEANUP,
    INGEST_UPLOAD,
    CleanupJob,
    DispatchError,
    UploadJob,
)
from mediamill.api.intake import Event
from mediamill.api.services import Services
from mediamill.catalog import access
from mediamill.catalog.base import utcnow
from mediamill.catalog.models import Media, MediaStatus

logger = logging.getLogger(__name__)
# Rows taken per look: a crash leaves at most the launcher's backlog behind.
BATCH = 64
# How often a process looks, as a share of the retry delay, within these bounds (seconds).
CHECKS_PER_RETRY = 10
MIN_INTERVAL_SECONDS = 1.0
MAX_INTERVAL_SECONDS = 60.0


def redispatch_due(services: Services, now: datetime | None = None) -> int:
    """Start every stranded event due by ``now``; returns how many were started again."""
    now = now or utcnow()
    retry = timedelta(seconds=services.settings.dispatch_retry_seconds)
    started = 0
    while True:
        try:
            services.launcher.admit()
        except DispatchError:
            return started  # the launcher is full: the rest wait for the next look
        with services.writing() as session:
            due = access.take_stranded_deliveries(session, now, now + retry, BATCH)
        for delivery in due:
            started += _start_again(services, delivery)
        if len(due) < BATCH:
            return started


def _start_again(services: Services, delivery: access.StrandedDelivery) -> int:
    """Start one stranded event's run; 0 when there is nothing left to start."""
    if delivery.id in services.starting:
        return 0  # still queued in this very process: held, and looked at again later
    kind, parameters = delivery.job.get("kind"), delivery.job.get("parameters", {})
    event = Event(delivery.event_id, delivery.event_type)
    key = f"{delivery.workspace_id}:{delivery.event_id}"
    try:
        job, cleanup = _jobs_of(kind, parameters)
    except (TypeError, ValueError) as error:
        logger.error("delivery %s holds a job that cannot be started: %s", delivery.id, error)
        with services.writing() as session:
            access.release_delivery(session, delivery.id)
        return 0
    try:
        if job is not None:
            if not _still_pending(services, delivery, uuid.UUID(job.media_id)):
                return 0
            intake.launch_upload(
                services, delivery.workspace_id, job, key, event, delivery.id, restart=True
            )
        else:
            assert cleanup is not None  # _jobs_of returns one of the two
            intake.launch_cleanup(
                services, delivery.workspace_id, cleanup, event, delivery.id, restart=True
            )
    except DispatchError as error:
        # Refused at once (Prefect down): the row stays held, and is tried at its new retry_at.
        logger.error("event %s could not be started again: %s", delivery.event_id, error)
        return 0
    logger.info("started event %s again: its first start never finished", delivery.event_id)
    return 1


def _jobs_of(kind: object, parameters: Any) -> tuple[UploadJob | None, CleanupJob | None]:
    """The stored job as the dispatcher takes it; TypeError or ValueError when it is not one."""
    if not isinstance(parameters, dict):
        raise TypeError(f"parameters are a {type(parameters).__name__}, not an object")
    if kind == INGEST_UPLOAD:
        job = UploadJob(**parameters)
        uuid.UUID(job.media_id)
        return job, None
    if kind == ENTITY_CLEANUP:
        return None, CleanupJob(**parameters)
    raise ValueError(f"unknown kind {kind!r}")


def _still_pending(
    services: Services, delivery: access.StrandedDelivery, media_id: uuid.UUID
) -> bool:
    """Whether the upload's media still waits for a run; settles the delivery when not."""
    with services.writing() as session:
        media = session.get(Media, media_id)
        if media is not None and media.status == MediaStatus.pending and media.deleted_at is None:
            return True
        run_id = media.flow_run_id if media is not None else None
        if run_id is not None:
            access.mark_dispatched(session, delivery.id, run_id, media_id)
        else:
            access.release_delivery(session, delivery.id)
        return False


class Redispatcher:
    """A thread of the API process that calls `redispatch_due` every ``interval`` seconds."""

    def __init__(self, services: Services, interval: float | None = None) -> None:
        self._services = services
        retry = services.settings.dispatch_retry_seconds
        self.interval = interval or min(
            MAX_INTERVAL_SECONDS, max(MIN_INTERVAL_SECONDS, retry / CHECKS_PER_RETRY)
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mediamill-redispatch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop looking; a look in progress finishes first."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                redispatch_due(self._services)
            except Exception:  # a catalog blip must not end the loop: the next look retries
                logger.exception("looking for stranded events failed")
