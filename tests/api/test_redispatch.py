"""Accepted events whose run was never created are started again by an API process."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from mediamill.api import intake
from mediamill.api.app import create_app
from mediamill.api.dispatch import INGEST_UPLOAD, CleanupJob, DispatchError, UploadJob
from mediamill.api.intake import Event
from mediamill.api.redispatch import Redispatcher, redispatch_due
from mediamill.api.services import Services, services_of
from mediamill.catalog import access, repository, uploads
from mediamill.catalog.base import utcnow
from mediamill.catalog.models import Media, MediaStatus, WebhookDelivery
from mediamill.settings import get_settings

RUN_ID = uuid.UUID("00000000-0000-4000-8000-000000000002")
EARLIER_RUN = uuid.UUID("00000000-0000-4000-8000-000000000003")


class RecordingDispatcher:
    """Creates every run at once (or refuses it) and remembers the idempotency keys given."""

    def __init__(self, refuse: bool = False) -> None:
        self.keys: list[str] = []
        self.refuse = refuse

    def _start(self, idempotency_key: str) -> uuid.UUID:
        self.keys.append(idempotency_key)
        if self.refuse:
            raise DispatchError("Prefect is unreachable")
        return RUN_ID

    def ingest_upload(self, job: UploadJob, idempotency_key: str) -> uuid.UUID:
        return self._start(idempotency_key)

    def entity_cleanup(self, job: CleanupJob, idempotency_key: str) -> uuid.UUID:
        return self._start(idempotency_key)

    def close(self) -> None:
        return None


class BlockingDispatcher(RecordingDispatcher):
    """Creates each run only once ``release`` is set: a start queued for long."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def _start(self, idempotency_key: str) -> uuid.UUID:
        self.keys.append(idempotency_key)
        assert self.release.wait(30)
        return RUN_ID


@contextmanager
def _services(
    dispatcher: RecordingDispatcher, retry_seconds: float = 300.0, wait_ms: int = 1000
) -> Iterator[Services]:
    settings = get_settings(
        api_public_url="http://testserver",
        dispatch_wait_ms=wait_ms,
        dispatch_retry_seconds=retry_seconds,
    )
    app = create_app(settings, dispatcher=dispatcher)
    with TestClient(app):
        yield services_of(app.state)


def _stranded_upload(services: Services, event_id: str, due_in: float = -1.0) -> uuid.UUID:
    """A pending media whose accepted event's run was never created; its media id."""
    with services.writing() as session:
        workspace_id = repository.ensure_workspace(session, "acme").id
        media = uploads.create_pending_media(
            session, workspace_id, uploader="webhook", filename="a.jpg", source="upload:a.jpg"
        )
        job = UploadJob(workspace="acme", media_id=str(media.id), url="https://example.com/a.jpg")
        claimed = access.claim_delivery(
            session,
            workspace_id,
            event_id,
            "upload.completed",
            job={"kind": INGEST_UPLOAD, "parameters": dataclasses.asdict(job)},
            retry_at=utcnow() + timedelta(seconds=due_in),
            media_id=media.id,
        )
        assert claimed is not None
        return media.id


def _delivery(services: Services, event_id: str) -> WebhookDelivery:
    with services.reading() as session:
        delivery = session.query(WebhookDelivery).filter_by(event_id=event_id).one()
        session.expunge(delivery)
        return delivery


@pytest.mark.usefixtures("home")
def test_a_stranded_upload_is_started_with_its_events_idempotency_key() -> None:
    dispatcher = RecordingDispatcher()
    with _services(dispatcher) as services:
        media_id = _stranded_upload(services, "evt_1")

        assert redispatch_due(services) == 1

        workspace_id = _delivery(services, "evt_1").workspace_id
        assert dispatcher.keys == [f"{workspace_id}:evt_1"]
        with services.reading() as session:
            media = session.get(Media, media_id)
            assert media is not None
            assert (media.status, media.flow_run_id) == (MediaStatus.pending, RUN_ID)
        delivery = _delivery(services, "evt_1")
        assert (delivery.run_id, delivery.job, delivery.retry_at) == (RUN_ID, None, None)


@pytest.mark.usefixtures("home")
def test_an_upload_whose_media_moved_on_is_settled_without_a_run() -> None:
    dispatcher = RecordingDispatcher()
    with _services(dispatcher) as services:
        failed = _stranded_upload(services, "evt_failed")
        taken = _stranded_upload(services, "evt_taken")
        with services.writing() as session:
            workspace_id = repository.ensure_workspace(session, "acme").id
            uploads.fail_pending(session, workspace_id, failed, "rejected", "not an image")
            media = session.get(Media, taken)
            assert media is not None
            media.status, media.flow_run_id = MediaStatus.processing, EARLIER_RUN

        assert redispatch_due(services) == 0

        assert dispatcher.keys == []
        released = _delivery(services, "evt_failed")
        assert (released.run_id, released.job, released.retry_at) == (None, None, None)
        recorded = _delivery(services, "evt_taken")
        assert (recorded.run_id, recorded.job, recorded.retry_at) == (EARLIER_RUN, None, None)


@pytest.mark.usefixtures("home")
def test_a_restart_that_prefect_refuses_keeps_the_event_for_a_later_look() -> None:
    dispatcher = RecordingDispatcher(refuse=True)
    with _services(dispatcher) as services:
        media_id = _stranded_upload(services, "evt_1")

        assert redispatch_due(services) == 0

        assert len(dispatcher.keys) == 1
        with services.reading() as session:
            media = session.get(Media, media_id)
            assert media is not None
            assert media.status == MediaStatus.pending
        delivery = _delivery(services, "evt_1")
        assert delivery.run_id is None
        assert delivery.job is not None
        assert delivery.retry_at is not None
        assert delivery.retry_at > utcnow()  # held until a later look
        dispatcher.refuse = False
        later = utcnow() + timedelta(seconds=services.settings.dispatch_retry_seconds + 1)

        assert redispatch_due(services, now=later) == 1

        assert _delivery(services, "evt_1").run_id == RUN_ID


@pytest.mark.usefixtures("home")
def test_a_job_that_cannot_be_started_is_released() -> None:
    dispatcher = RecordingDispatcher()
    with _services(dispatcher) as services:
        _stranded_upload(services, "evt_odd")
        with services.writing() as session:
            delivery = session.query(WebhookDelivery).filter_by(event_id="evt_odd").one()
            delivery.job = {"kind": INGEST_UPLOAD, "parameters": {"unexpected": 1}}

        assert redispatch_due(services) == 0

        assert dispatcher.keys == []
        released = _delivery(services, "evt_odd")
        assert (released.job, released.retry_at) == (None, None)


@pytest.mark.usefixtures("home")
def test_an_event_this_process_is_still_starting_is_not_started_twice() -> None:
    dispatcher = BlockingDispatcher()
    with _services(dispatcher, wait_ms=0) as services:
        with services.writing() as session:
            workspace_id = repository.ensure_workspace(session, "acme").id
        job = UploadJob(workspace="acme", media_id="", url="https://example.com/a.jpg")
        started = intake.start_upload(
            services, workspace_id, job, None, Event("evt_slow", "upload.completed")
        )
        assert started.run_id is None  # answered before the run exists
        later = utcnow() + timedelta(seconds=services.settings.dispatch_retry_seconds + 1)

        assert redispatch_due(services, now=later) == 0

        dispatcher.release.set()
        services.launcher.wait(timeout=30)
        assert dispatcher.keys == [f"{workspace_id}:evt_slow"]
        assert _delivery(services, "evt_slow").run_id == RUN_ID
        assert redispatch_due(services, now=later + timedelta(days=1)) == 0


@pytest.mark.usefixtures("home")
def test_the_api_process_looks_for_stranded_events_on_its_own() -> None:
    dispatcher = RecordingDispatcher()
    with _services(dispatcher, retry_seconds=0.5) as services:
        _stranded_upload(services, "evt_late", due_in=0.2)
        # The app's own looker checks every second at the shortest; this one looks sooner.
        looker = Redispatcher(services, interval=0.05)
        looker.start()
        try:
            deadline = time.monotonic() + 10
            while _delivery(services, "evt_late").run_id is None:
                assert time.monotonic() < deadline, "the stranded event was never started"
                time.sleep(0.05)
        finally:
            looker.stop()
        assert len(dispatcher.keys) == 1
