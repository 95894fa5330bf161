"""The bounded wait on Prefect: slow run creation is answered at once and settled later."""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mediamill.api.app import create_app
from mediamill.api.dispatch import (
    STOPPED_BEFORE_START,
    CleanupJob,
    DispatchError,
    Launcher,
    UploadJob,
)
from mediamill.api.intake import API_UPLOAD_EVENT_PREFIX
from mediamill.api.redispatch import redispatch_due
from mediamill.api.services import Services, services_of
from mediamill.catalog import access
from mediamill.catalog.base import utcnow
from mediamill.catalog.models import Media, MediaStatus, WebhookDelivery
from mediamill.settings import get_settings
from tests.api.conftest import Api

RUN_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")


class SlowDispatcher:
    """Creates a run after ``delay`` seconds, or fails then."""

    def __init__(self, delay: float, fail: bool = False) -> None:
        self.delay = delay
        self.fail = fail
        self.started = threading.Event()

    def _start(self) -> uuid.UUID:
        time.sleep(self.delay)
        self.started.set()
        if self.fail:
            raise DispatchError("Prefect is unreachable")
        return RUN_ID

    def ingest_upload(self, job: UploadJob, idempotency_key: str) -> uuid.UUID:
        return self._start()

    def entity_cleanup(self, job: CleanupJob, idempotency_key: str) -> uuid.UUID:
        return self._start()

    def close(self) -> None:
        return None


@contextmanager
def _app(
    dispatcher: SlowDispatcher, wait_ms: int, backlog: int = 256, shutdown_seconds: float = 10.0
) -> Iterator[tuple[TestClient, Services]]:
    settings = get_settings(
        api_public_url="http://testserver",
        dispatch_wait_ms=wait_ms,
        dispatch_backlog=backlog,
        dispatch_shutdown_seconds=shutdown_seconds,
    )
    app = create_app(settings, dispatcher=dispatcher)
    with TestClient(app) as client:
        yield client, services_of(app.state)


def _secret(services: Services) -> str:
    with services.writing() as session:
        return access.create_webhook_secret(session, "acme")


def _send_upload(client: TestClient, services: Services, event_id: str, secret: str) -> Any:
    """POST a signed upload.completed event; the response as it came."""
    api = Api(client, services, dispatcher=None)  # type: ignore[arg-type]
    event = {
        "id": event_id,
        "type": "upload.completed",
        "workspace": "acme",
        "url": "https://images.example.com/a.jpg",
    }
    return api.webhook("/webhooks/uploads", json.dumps(event).encode(), secret)


def _upload(client: TestClient, services: Services, event_id: str) -> dict[str, object]:
    response = _send_upload(client, services, event_id, _secret(services))
    assert response.status_code == 202, response.text
    answer: dict[str, object] = response.json()
    return answer


def _wait(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.mark.usefixtures("home")
def test_a_slow_run_creation_is_answered_at_once_and_recorded_later() -> None:
    dispatcher = SlowDispatcher(delay=1.0)
    with _app(dispatcher, wait_ms=20) as (client, services):
        answer = _upload(client, services, "evt_slow")
        # No run id: the answer left before the run existed, instead of waiting for it.
        assert answer["run_id"] is None
        media_id = uuid.UUID(str(answer["media_id"]))

        def recorded() -> bool:
            with services.reading() as session:
                run = session.scalar(select(WebhookDelivery.run_id))
                media = session.get(Media, media_id)
                return run == RUN_ID and media is not None and media.flow_run_id == RUN_ID

        _wait(recorded)


@pytest.mark.usefixtures("home")
def test_a_run_that_fails_to_start_after_the_answer_fails_its_media() -> None:
    dispatcher = SlowDispatcher(delay=0.3, fail=True)
    with _app(dispatcher, wait_ms=20) as (client, services):
        answer = _upload(client, services, "evt_lost")
        media_id = uuid.UUID(str(answer["media_id"]))

        def failed() -> bool:
            with services.reading() as session:
                media = session.get(Media, media_id)
                return media is not None and media.status == MediaStatus.failed

        _wait(failed)
        with services.reading() as session:
            media = session.get(Media, media_id)
            assert media is not None
            assert media.error_code == "dispatch_failed"
            # The sender was told 202: a redelivery is a duplicate, not a second media.
            assert session.scalar(select(WebhookDelivery.event_id)) == "evt_lost"


@pytest.mark.usefixtures("home")
def test_a_full_backlog_refuses_new_events_before_writing_and_still_answers_redeliveries() -> None:
    dispatcher = SlowDispatcher(delay=3.0)
    with _app(dispatcher, wait_ms=0, backlog=1) as (client, services):
        secret = _secret(services)
        accepted = _send_upload(client, services, "evt_first", secret)
        assert accepted.status_code == 202, accepted.text
        first = accepted.json()
        assert first["run_id"] is None  # its start is the one waiting

        refused = _send_upload(client, services, "evt_second", secret)
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["Retry-After"]) >= 1
        assert "waiting to start" in refused.json()["detail"]
        with services.reading() as session:
            # Nothing of the refused event was kept: its retry is a first delivery.
            assert session.scalars(select(WebhookDelivery.event_id)).all() == ["evt_first"]
            assert len(session.scalars(select(Media)).all()) == 1

        again = _send_upload(client, services, "evt_first", secret)
        assert again.status_code == 200, again.text  # a redelivery needs no start
        assert again.json()["media_id"] == first["media_id"]

        services.launcher.wait(timeout=10)
        assert _send_upload(client, services, "evt_second", secret).status_code == 202


def test_launcher_answers_within_its_budget(tmp_path: Path) -> None:
    launcher = Launcher(wait_seconds=0.05)
    settled: list[tuple[uuid.UUID | None, DispatchError | None]] = []
    try:
        assert launcher.launch(lambda: RUN_ID, lambda *o: settled.append(o)) == RUN_ID
        slow = launcher.launch(_slowly, lambda *o: settled.append(o))
        assert slow is None  # answered before the run existed
        with pytest.raises(DispatchError):
            launcher.launch(_refuse, lambda *o: settled.append(o))
    finally:
        launcher.close()
    assert settled == [(RUN_ID, None)]


def _slowly() -> uuid.UUID:
    time.sleep(0.3)
    return RUN_ID


def _refuse() -> uuid.UUID:
    raise DispatchError("refused at once")


def _released_after(seconds: float) -> threading.Event:
    """An event a timer sets: a start that waits on it ends then, whoever else is waiting."""
    release = threading.Event()
    timer = threading.Timer(seconds, release.set)
    timer.daemon = True
    timer.start()
    return release


def test_an_answer_does_not_wait_when_recent_starts_took_longer_than_the_wait() -> None:
    ticks = itertools.count(step=60.0)  # on this clock every start takes 60 s
    launcher = Launcher(wait_seconds=30.0, clock=lambda: next(ticks))
    settled: list[tuple[uuid.UUID | None, DispatchError | None]] = []
    try:
        # Nothing known yet: the answer waits, and gets the id.
        assert launcher.launch(lambda: RUN_ID, lambda *o: settled.append(o)) == RUN_ID
        release = _released_after(1.0)

        def start() -> uuid.UUID:
            release.wait(timeout=30)
            return RUN_ID

        # Waiting up to 30 s would return the id after the 1 s release; it answers at once.
        assert launcher.launch(start, lambda *o: settled.append(o)) is None
        launcher.wait(timeout=30)
    finally:
        launcher.close()
    assert settled == [(RUN_ID, None)]


def test_an_answer_does_not_wait_behind_starts_that_hold_every_thread() -> None:
    launcher = Launcher(wait_seconds=30.0, threads=1)
    release = _released_after(1.0)
    running = threading.Event()
    answers: list[uuid.UUID | None] = []

    def first_start() -> uuid.UUID:
        running.set()
        release.wait(timeout=30)
        return RUN_ID

    first = threading.Thread(target=lambda: answers.append(launcher.launch(first_start, print)))
    settled: list[tuple[uuid.UUID | None, DispatchError | None]] = []
    try:
        first.start()
        assert running.wait(timeout=10)
        # Its start queues behind the first; waiting would return it once that one ends.
        assert launcher.launch(lambda: RUN_ID, lambda *o: settled.append(o)) is None
        first.join(timeout=30)
        launcher.wait(timeout=30)
    finally:
        launcher.close()
    assert answers == [RUN_ID]  # the first one still waited: a thread was free for it
    assert settled == [(RUN_ID, None)]


def test_a_settled_answer_is_forgotten() -> None:
    launcher = Launcher(wait_seconds=0.0, threads=2)
    release = threading.Event()
    settled: list[tuple[uuid.UUID | None, DispatchError | None]] = []

    def start() -> uuid.UUID:
        release.wait(timeout=30)
        return RUN_ID

    try:
        for _ in range(50):
            assert launcher.launch(start, lambda *o: settled.append(o)) is None
        assert launcher.unsettled == 50
        release.set()
        launcher.wait(timeout=30)
        assert launcher.unsettled == 0  # a burst's answers leave nothing behind
    finally:
        launcher.close()
    assert settled == [(RUN_ID, None)] * 50


def test_a_refusal_suggests_the_time_the_waiting_starts_should_take() -> None:
    ticks = itertools.count(step=60.0)  # on this clock every start takes 60 s
    launcher = Launcher(wait_seconds=30.0, threads=2, clock=lambda: next(ticks), max_backlog=2)
    release = _released_after(1.0)
    settled: list[tuple[uuid.UUID | None, DispatchError | None]] = []

    def start() -> uuid.UUID:
        release.wait(timeout=30)
        return RUN_ID

    try:
        launcher.admit()  # nothing waiting
        # Nothing known yet: this answer waits for its run, and records a 60 s start.
        assert launcher.launch(lambda: RUN_ID, lambda *o: settled.append(o)) == RUN_ID
        for _ in range(2):
            assert launcher.launch(start, lambda *o: settled.append(o)) is None
        with pytest.raises(DispatchError) as refused:
            launcher.admit()
        # Two starts waiting, 60 s each, on two threads.
        assert refused.value.retry_after == 60
        launcher.wait(timeout=30)
        launcher.admit()  # drained: admitted again
    finally:
        launcher.close()
    assert settled == [(RUN_ID, None)] * 2


def test_closing_fails_the_starts_still_queued_after_its_grace() -> None:
    launcher = Launcher(wait_seconds=0.0, threads=1, shutdown_seconds=0.2)
    release = _released_after(3.0)
    settled: list[tuple[uuid.UUID | None, DispatchError | None]] = []

    def start() -> uuid.UUID:
        release.wait(timeout=30)
        return RUN_ID

    assert launcher.launch(start, lambda *o: settled.append(o)) is None  # running
    assert launcher.launch(lambda: RUN_ID, lambda *o: settled.append(o)) is None  # queued
    launcher.close()  # the queued one is failed after 0.2 s; the running one ends at 3 s

    stopped = [error for run, error in settled if run is None]
    assert [str(error) for error in stopped] == [STOPPED_BEFORE_START]
    assert (RUN_ID, None) in settled
    assert len(settled) == 2


def _stop_with_starts_queued() -> tuple[list[uuid.UUID], str]:
    """An API that stops while 3 uploads and a cleanup wait on a slow Prefect, 2 at a time.

    Returns the uploads' media ids and the cleanup's event id.
    """
    dispatcher = SlowDispatcher(delay=3.0)
    with _app(dispatcher, wait_ms=0, shutdown_seconds=0.1) as (client, services):
        secret = _secret(services)
        uploads = [_send_upload(client, services, f"evt_up_{n}", secret) for n in range(3)]
        assert [r.status_code for r in uploads] == [202, 202, 202]
        api = Api(client, services, dispatcher=None)  # type: ignore[arg-type]
        body = {"id": "evt_gone", "type": "entity.deleted", "workspace": "acme"}
        body["entity"] = {"type": "product", "id": "42"}  # type: ignore[assignment]
        cleanup = api.webhook("/webhooks/entities", json.dumps(body).encode(), secret)
        assert cleanup.status_code == 202, cleanup.text
    return [uuid.UUID(r.json()["media_id"]) for r in uploads], "evt_gone"


def _deliveries(services: Services) -> dict[str, tuple[uuid.UUID | None, bool]]:
    """Each delivery's run id and whether it still holds a job to start."""
    with services.reading() as session:
        return {
            d.event_id: (d.run_id, d.job is not None)
            for d in session.scalars(select(WebhookDelivery))
        }


FROM_URL = """
mutation ($url: String!) {
  mediaCreateFromUrl(url: $url) { media { id status } userErrors { code message } }
}
"""


@pytest.mark.usefixtures("home")
def test_a_graphql_upload_queued_at_a_stop_is_left_for_the_next_process() -> None:
    with _app(SlowDispatcher(delay=3.0), wait_ms=0, shutdown_seconds=0.1) as (client, services):
        api = Api(client, services, dispatcher=None)  # type: ignore[arg-type]
        token = api.token()
        payloads = [
            api.graphql(token, FROM_URL, {"url": f"https://images.example.com/{n}.jpg"})
            for n in range(3)
        ]
    created = [payload["data"]["mediaCreateFromUrl"] for payload in payloads]
    assert [c["userErrors"] for c in created] == [[]] * 3
    ids = [uuid.UUID(c["media"]["id"]) for c in created]
    kept = [f"{API_UPLOAD_EVENT_PREFIX}{media_id}" for media_id in ids]

    with _app(SlowDispatcher(delay=0.0), wait_ms=1000) as (_, services):
        # Two starts ran on the launcher's two threads; the third was still queued.
        assert _deliveries(services) == {
            kept[0]: (RUN_ID, False),
            kept[1]: (RUN_ID, False),
            kept[2]: (None, True),
        }
        retry = timedelta(seconds=services.settings.dispatch_retry_seconds)
        assert redispatch_due(services, now=utcnow() + retry) == 1
        with services.reading() as session:
            runs = {m.id: (m.status, m.flow_run_id) for m in session.scalars(select(Media))}
        assert [runs[i] for i in ids] == [(MediaStatus.pending, RUN_ID)] * 3
        assert _deliveries(services)[kept[2]] == (RUN_ID, False)


@pytest.mark.usefixtures("home")
def test_an_api_stopping_with_starts_queued_leaves_them_for_the_next_process() -> None:
    ids, cleanup = _stop_with_starts_queued()

    with _app(SlowDispatcher(delay=0.0), wait_ms=1000) as (_, services):
        with services.reading() as session:
            statuses = {m.id: (m.status, m.flow_run_id) for m in session.scalars(select(Media))}
        # Two starts ran on the launcher's two threads; the other two were still queued.
        assert [statuses[i] for i in ids] == [(MediaStatus.pending, RUN_ID)] * 2 + [
            (MediaStatus.pending, None)
        ]
        assert _deliveries(services) == {
            "evt_up_0": (RUN_ID, False),
            "evt_up_1": (RUN_ID, False),
            "evt_up_2": (None, True),
            cleanup: (None, True),
        }
        # Not before their retry time: a live process may still be starting them.
        assert redispatch_due(services) == 0
        retry = timedelta(seconds=services.settings.dispatch_retry_seconds)

        assert redispatch_due(services, now=utcnow() + retry) == 2

        with services.reading() as session:
            assert session.get(Media, ids[2]).flow_run_id == RUN_ID  # type: ignore[union-attr]
        assert _deliveries(services)["evt_up_2"] == (RUN_ID, False)
        assert _deliveries(services)[cleanup] == (RUN_ID, False)
        assert redispatch_due(services, now=utcnow() + 2 * retry) == 0
