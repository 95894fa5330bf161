"""Signed webhooks through the app: forgery is refused, redelivery runs nothing twice.

THREATS.md, "Network and API": webhook forgery (401, nothing changes), replay and
at-least-once delivery (one media row, one run, also for two copies at once), URL-encoded
S3 keys, SSRF through ``upload.completed`` URLs, and one workspace reaching another's.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select

from mediamill.api.dispatch import CleanupJob, DispatchError, UploadJob
from mediamill.api.signatures import HEADER, sign
from mediamill.api.webhooks import MAX_BODY_BYTES
from mediamill.catalog import uploads
from mediamill.catalog.lifecycle import Entity, attach, entity_media, lock_media
from mediamill.catalog.models import Attachment, Media, MediaStatus, WebhookDelivery
from mediamill.catalog.repository import ensure_workspace, find_workspace, get_media
from mediamill.media.samples import photo_jpeg
from tests.api.conftest import Api

UPLOADS, ENTITIES, STORAGE = "/webhooks/uploads", "/webhooks/entities", "/webhooks/storage"
ROUTES = (UPLOADS, ENTITIES, STORAGE)
KEY = "incoming/acme/shoe.jpg"
PRODUCT = Entity("product", "42")


# -- bodies ------------------------------------------------------------------------------


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def upload_event(
    event_id: str = "evt_up_1",
    *,
    workspace: str = "acme",
    key: str | None = KEY,
    url: str | None = None,
    entity: Entity | None = None,
    **extra: Any,
) -> bytes:
    body: dict[str, Any] = {"id": event_id, "type": "upload.completed", "workspace": workspace}
    if key is not None:
        body["key"] = key
    if url is not None:
        body["url"] = url
    if entity is not None:
        body["entity"] = {"type": entity.type, "id": entity.id}
    return encode({**body, **extra})


def entity_event(
    event_id: str = "evt_del_1", *, workspace: str = "acme", entity: Entity = PRODUCT
) -> bytes:
    return encode(
        {
            "id": event_id,
            "type": "entity.deleted",
            "workspace": workspace,
            "entity": {"type": entity.type, "id": entity.id},
        }
    )


def s3_record(
    key: str, event: str = "s3:ObjectCreated:Put", sequencer: str = "0062E99A88DC407460"
) -> dict[str, Any]:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": event.removeprefix("s3:"),
        "s3": {
            "bucket": {"name": "media"},
            "object": {"key": key, "size": 1234, "eTag": "abc", "sequencer": sequencer},
        },
    }


def storage_event(*records: dict[str, Any]) -> bytes:
    return encode({"Records": list(records)})


def route_body(route: str, workspace: str = "acme") -> bytes:
    """A valid event for ``route`` in ``workspace``."""
    if route == UPLOADS:
        return upload_event(workspace=workspace, key=f"incoming/{workspace}/shoe.jpg")
    if route == ENTITIES:
        return entity_event(workspace=workspace)
    return storage_event(s3_record(f"incoming/{workspace}/shoe.jpg"))


# -- observing the app -------------------------------------------------------------------


@dataclass
class Runs:
    """Every run the app asked its dispatcher for."""

    uploads: list[UploadJob] = field(default_factory=list)
    cleanups: list[CleanupJob] = field(default_factory=list)


@pytest.fixture
def runs(api: Api, monkeypatch: pytest.MonkeyPatch) -> Runs:
    seen = Runs()
    ingest, cleanup = api.dispatcher.ingest_upload, api.dispatcher.entity_cleanup

    def counted_ingest(job: UploadJob, idempotency_key: str) -> uuid.UUID:
        seen.uploads.append(job)
        return ingest(job, idempotency_key)

    def counted_cleanup(job: CleanupJob, idempotency_key: str) -> uuid.UUID:
        seen.cleanups.append(job)
        return cleanup(job, idempotency_key)

    monkeypatch.setattr(api.dispatcher, "ingest_upload", counted_ingest)
    monkeypatch.setattr(api.dispatcher, "entity_cleanup", counted_cleanup)
    return seen


def rows(api: Api) -> dict[str, int]:
    with api.services.reading() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Media, WebhookDelivery, Attachment)
        }


def workspace_id(api: Api, slug: str = "acme") -> int:
    with api.services.writing() as session:
        return ensure_workspace(session, slug).id


def media(api: Api, media_id: str | uuid.UUID) -> Media:
    with api.services.reading() as session:
        found = get_media(session, uuid.UUID(str(media_id)))
        assert found is not None, f"no media {media_id}"
        session.expunge_all()
        return found


def gallery(api: Api, entity: Entity, workspace: str = "acme") -> list[uuid.UUID]:
    with api.services.reading() as session:
        owner = find_workspace(session, workspace)
        assert owner is not None
        return [m.id for m in entity_media(session, owner.id, entity, include_deleted=True)]


def put(api: Api, key: str, data: bytes | None = None) -> bytes:
    data = photo_jpeg(640, 480, seed=1) if data is None else data
    api.services.store.put(key, data, content_type="image/jpeg", cache_control="no-store")
    return data


def post(api: Api, path: str, body: bytes, header: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers[HEADER] = header
    return api.client.post(path, content=body, headers=headers)


def pending_media(api: Api, entity: Entity | None = None, workspace: str = "acme") -> uuid.UUID:
    """A pending media made straight in the catalog (no run), optionally attached."""
    owner = workspace_id(api, workspace)
    with api.services.writing() as session:
        row = uploads.create_pending_media(
            session, owner, uploader="ana", filename="a.jpg", source="test", entity=entity
        )
        return row.id


# -- forgery -------------------------------------------------------------------------------


def _tampered(route: str, body: bytes) -> bytes:
    if route == ENTITIES:
        return body.replace(b'"id":"42"', b'"id":"43"')
    return body.replace(b"shoe.jpg", b"shoo.jpg")


REFUSALS: dict[str, Callable[[str, bytes, dict[str, str]], tuple[bytes, str | None]]] = {
    "missing": lambda route, body, s: (body, None),
    "empty": lambda route, body, s: (body, ""),
    "garbage": lambda route, body, s: (body, "definitely not a signature"),
    "tampered": lambda route, body, s: (_tampered(route, body), sign(s["acme"], body, _now())),
    "other body": lambda route, body, s: (
        body,
        sign(s["acme"], route_body(route).replace(b"1", b"2"), _now()),
    ),
    # An hour out: a second past the tolerance was signed before the server read its clock,
    # and a loaded machine let that second pass. The exact boundary is tested with a fixed
    # clock in test_signatures.
    "stale": lambda route, body, s: (body, sign(s["acme"], body, _now() - 3600)),
    "future": lambda route, body, s: (body, sign(s["acme"], body, _now() + 3600)),
    "other workspace's secret": lambda route, body, s: (body, sign(s["other"], body, _now())),
    "revoked secret": lambda route, body, s: (body, sign(s["revoked"], body, _now())),
    "two v1": lambda route, body, s: (
        body,
        sign(s["acme"], body, _now()) + ",v1=" + "0" * 64,
    ),
    "two t": lambda route, body, s: (body, f"t={_now()}," + sign(s["acme"], body, _now())),
}


def _now() -> int:
    return int(time.time())


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("refusal", list(REFUSALS))
def test_forged_requests_get_401_and_change_nothing(
    api: Api, runs: Runs, route: str, refusal: str
) -> None:
    revoked = api.secret("acme")
    secrets = {"revoked": revoked, "acme": api.secret("acme"), "other": api.secret("other")}
    assert secrets["acme"] != revoked
    put(api, KEY)
    pending_media(api, PRODUCT)  # something an entity.deleted would change
    before = rows(api)

    body, header = REFUSALS[refusal](route, route_body(route), secrets)
    response = post(api, route, body, header)

    assert response.status_code == 401, response.text
    assert isinstance(response.json()["detail"], str)
    assert rows(api) == before
    assert runs.uploads == []
    assert runs.cleanups == []
    assert api.dispatcher.started == 0
    assert api.services.store.exists(KEY)
    assert len(gallery(api, PRODUCT)) == 1


@pytest.mark.parametrize("route", ROUTES)
def test_workspace_without_a_secret_gets_401(api: Api, runs: Runs, route: str) -> None:
    acme = api.secret("acme")
    workspace_id(api, "ghost")  # exists, but never got a secret
    for workspace in ("ghost", "nobody"):
        body = route_body(route, workspace)
        response = api.webhook(route, body, acme)
        assert response.status_code == 401, response.text
    assert rows(api) == {"media": 0, "webhook_deliveries": 0, "attachments": 0}
    assert runs.uploads == []
    assert runs.cleanups == []


def test_rotated_secret_is_accepted_and_the_old_one_is_not(api: Api, runs: Runs) -> None:
    old = api.secret("acme")
    new = api.secret("acme")
    assert api.webhook(ENTITIES, entity_event("evt_a"), old).status_code == 401
    assert api.webhook(ENTITIES, entity_event("evt_a"), new).status_code == 202
    api.settle()
    assert len(runs.cleanups) == 1


@pytest.mark.parametrize("route", ROUTES)
def test_signature_window_edges(api: Api, runs: Runs, route: str) -> None:
    """Near 300 s either way is clock skew, past it a replay (exact edges: test_signatures).

    Ten seconds of margin, so a slow request cannot carry a stamp across the edge.
    """
    secret = api.secret()
    body = route_body(route)
    assert api.webhook(route, body, secret, at=_now() - 310).status_code == 401
    assert api.webhook(route, body, secret, at=_now() + 310).status_code == 401
    assert rows(api)["webhook_deliveries"] == 0
    first = api.webhook(route, body, secret, at=_now() - 290)
    again = api.webhook(route, body, secret, at=_now() + 290)
    assert first.status_code == 202, first.text
    assert again.status_code == 200, again.text
    api.settle()
    assert len(runs.uploads) + len(runs.cleanups) == 1


@pytest.mark.parametrize("route", ROUTES)
def test_body_over_256_kib_is_413(api: Api, runs: Runs, route: str) -> None:
    secret = api.secret()
    body = route_body(route)
    huge = body[:-1] + b"," + b'"pad":"' + b"x" * MAX_BODY_BYTES + b'"}'
    assert api.webhook(route, huge, secret).status_code == 413
    assert post(api, route, huge, None).status_code == 413
    assert rows(api)["webhook_deliveries"] == 0
    assert runs.uploads == []
    assert runs.cleanups == []


@pytest.mark.parametrize("declared", [True, False])
def test_oversized_body_is_refused_without_reading_it_all(
    api: Api, runs: Runs, declared: bool
) -> None:
    """Chunked or with a Content-Length, a huge body is cut off near the cap, not buffered."""
    chunk, chunks = b" " * 65536, 1600  # 100 MiB on offer
    received = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal received
        received += 1
        return {"type": "http.request", "body": chunk, "more_body": received < chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"content-type", b"application/json"), (HEADER.lower().encode(), b"t=1,v1=0")]
    if declared:
        headers.append((b"content-length", str(len(chunk) * chunks).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": ENTITIES,
        "raw_path": ENTITIES.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    # A thread of its own: another test's library (Playwright's sync API) may leave an
    # event loop running on this one.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, api.client.app(scope, receive, send)).result()  # type: ignore[arg-type]
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 413
    assert received <= (0 if declared else MAX_BODY_BYTES // len(chunk) + 1)
    assert rows(api)["webhook_deliveries"] == 0


def test_body_of_exactly_256_kib_is_read(api: Api, runs: Runs) -> None:
    secret = api.secret()
    body = entity_event()
    padded = body[:-1] + b" " * (MAX_BODY_BYTES - len(body)) + b"}"
    assert len(padded) == MAX_BODY_BYTES
    response = api.webhook(ENTITIES, padded, secret)
    assert response.status_code == 202, response.text
    over = body[:-1] + b" " * (MAX_BODY_BYTES - len(body) + 1) + b"}"
    assert api.webhook(ENTITIES, over, secret).status_code == 413
    api.settle()
    assert len(runs.cleanups) == 1


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_is_refused_not_a_crash(
    api: Api, runs: Runs, route: str, depth: int
) -> None:
    api.secret()
    nested = b'{"workspace":"acme","x":' + b"[" * depth + b"]" * depth + b"}"
    for body in (b"[" * depth + b"]" * depth, nested, b"[" * depth):
        assert len(body) <= MAX_BODY_BYTES
        response = post(api, route, body, sign("whsec_guess", body, _now()))
        assert response.status_code == 401, response.text
    assert rows(api)["webhook_deliveries"] == 0


# -- signed bodies that are not events ------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "body"),
    [
        (UPLOADS, upload_event(key=None)),
        (UPLOADS, upload_event(url="https://example.com/a.jpg")),  # both key and url
        (UPLOADS, upload_event(key=None, url="file:///etc/passwd")),
        (UPLOADS, upload_event(key=None, url="gopher://127.0.0.1:70/")),
        (UPLOADS, upload_event(key=None, url="http://[")),
        (UPLOADS, upload_event(key=None, url="http://[::1")),
        (UPLOADS, upload_event(key="incoming/acme/../other/x.jpg")),
        (UPLOADS, upload_event(key="incoming/acme")),
        (UPLOADS, upload_event(key="outgoing/acme/x.jpg")),
        (UPLOADS, upload_event(event_id="evt with spaces")),
        (UPLOADS, upload_event(unexpected="field")),
        (UPLOADS, encode({"workspace": "acme"})),
        (UPLOADS, encode({"workspace": "acme", "type": "entity.deleted", "id": "e"})),
        (ENTITIES, encode({"id": "e", "type": "entity.deleted", "workspace": "acme"})),
        (ENTITIES, entity_event(entity=Entity("Product", "42"))),
        (ENTITIES, entity_event(entity=Entity("product", "../42"))),
        (ENTITIES, upload_event()),
        (STORAGE, encode({"workspace": "acme"})),
        (STORAGE, encode({"workspace": "acme", "Records": "no"})),
        (STORAGE, encode({"workspace": "acme", "Records": [{"s3": {}}]})),
        (STORAGE, encode({"Records": [s3_record(KEY)] * 101})),
    ],
)
def test_signed_bodies_that_are_not_valid_events_get_422(
    api: Api, runs: Runs, route: str, body: bytes
) -> None:
    secret = api.secret()
    put(api, KEY)
    response = api.webhook(route, body, secret)
    assert response.status_code == 422, response.text
    assert rows(api) == {"media": 0, "webhook_deliveries": 0, "attachments": 0}
    assert runs.uploads == []
    assert runs.cleanups == []
    assert api.services.store.exists(KEY)


def test_key_in_another_workspaces_area_is_422(api: Api, runs: Runs) -> None:
    secret = api.secret("acme")
    api.secret("other")
    put(api, "incoming/other/x.jpg")
    response = api.webhook(UPLOADS, upload_event(key="incoming/other/x.jpg"), secret)
    assert response.status_code == 422, response.text
    assert "incoming/acme/" in response.json()["detail"]
    assert rows(api) == {"media": 0, "webhook_deliveries": 0, "attachments": 0}
    assert runs.uploads == []
    assert api.services.store.exists("incoming/other/x.jpg")


def test_storage_event_for_another_workspaces_area_is_not_acme_s(api: Api, runs: Runs) -> None:
    """The key names the workspace, so acme's secret cannot vouch for other's object."""
    secret = api.secret("acme")
    api.secret("other")
    put(api, "incoming/other/x.jpg")
    body = storage_event(s3_record("incoming/other/x.jpg"))
    assert api.webhook(STORAGE, body, secret).status_code == 401
    # Naming acme at the top does not make other's record acme's either.
    body = encode({"workspace": "acme", "Records": [s3_record("incoming/other/x.jpg")]})
    response = api.webhook(STORAGE, body, secret)
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["status"] == "ignored"
    assert rows(api) == {"media": 0, "webhook_deliveries": 0, "attachments": 0}
    assert runs.uploads == []
    assert api.services.store.exists("incoming/other/x.jpg")


# -- accepted events -------------------------------------------------------------------------


def test_upload_completed_is_ingested_and_the_incoming_object_removed(api: Api, runs: Runs) -> None:
    secret = api.secret()
    put(api, KEY)
    response = api.webhook(UPLOADS, upload_event(alt="A red shoe"), secret)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["status"] == "accepted"
    assert answer["id"] == "evt_up_1"
    run_id, media_id = uuid.UUID(answer["run_id"]), uuid.UUID(answer["media_id"])
    assert media(api, media_id).status == MediaStatus.pending

    api.settle()
    done = media(api, media_id)
    assert done.status == MediaStatus.ready, (done.error_code, done.error_message)
    assert done.original_filename == "shoe.jpg"
    assert done.alt_text == "A red shoe"
    assert done.flow_run_id == run_id
    assert done.workspace.slug == "acme"
    assert not api.services.store.exists(KEY)
    assert [job.key for job in runs.uploads] == [KEY]
    with api.services.reading() as session:
        delivery = session.scalar(select(WebhookDelivery))
        assert delivery is not None
        assert (delivery.event_id, delivery.event_type) == ("evt_up_1", "upload.completed")
        assert (delivery.run_id, delivery.media_id) == (run_id, media_id)


def test_redelivered_upload_is_a_duplicate_with_the_same_media(api: Api, runs: Runs) -> None:
    secret = api.secret()
    put(api, KEY)
    first = api.webhook(UPLOADS, upload_event(), secret)
    assert first.status_code == 202, first.text
    api.settle()
    # A late redelivery, after the run finished and removed the incoming object.
    again = api.webhook(UPLOADS, upload_event(), secret)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "duplicate"
    assert again.json()["media_id"] == first.json()["media_id"]
    assert again.json()["run_id"] == first.json()["run_id"]
    api.settle()
    assert len(runs.uploads) == 1
    assert rows(api)["media"] == 1
    assert media(api, first.json()["media_id"]).status == MediaStatus.ready


def test_redelivery_is_answered_while_another_writer_holds_the_catalog(
    api: Api, runs: Runs
) -> None:
    secret = api.secret()
    first = api.webhook(ENTITIES, entity_event("evt_busy"), secret)
    assert first.status_code == 202, first.text
    api.settle()
    # A busy catalog: another transaction holds the write lock the whole time. Answering a
    # redelivery reads only, so it does not queue behind that writer.
    with api.services.writing() as session:
        session.execute(select(WebhookDelivery.id)).all()
        again = api.webhook(ENTITIES, entity_event("evt_busy"), secret)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "duplicate"
    assert again.json()["run_id"] == first.json()["run_id"]
    assert len(runs.cleanups) == 1


def test_same_event_id_in_another_workspace_is_its_own_event(api: Api, runs: Runs) -> None:
    acme, other = api.secret("acme"), api.secret("other")
    assert api.webhook(ENTITIES, entity_event("evt_x"), acme).status_code == 202
    response = api.webhook(ENTITIES, entity_event("evt_x", workspace="other"), other)
    assert response.status_code == 202, response.text
    api.settle()
    assert [job.workspace for job in runs.cleanups] == ["acme", "other"]


def test_two_copies_at_once_make_one_media_and_one_run(api: Api, runs: Runs) -> None:
    secret = api.secret()
    put(api, KEY)
    body = upload_event("evt_twice")
    barrier = threading.Barrier(2)
    answers: list[Any] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        header = sign(secret, body, _now())
        barrier.wait()
        try:
            answers.append(post(api, UPLOADS, body, header))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(a.status_code for a in answers) == [200, 202], [a.text for a in answers]
    accepted = next(a.json() for a in answers if a.status_code == 202)
    duplicate = next(a.json() for a in answers if a.status_code == 200)
    assert duplicate["status"] == "duplicate"
    assert duplicate["media_id"] == accepted["media_id"]
    assert duplicate["run_id"] in (accepted["run_id"], None)  # may answer before dispatch

    api.settle()
    assert len(runs.uploads) == 1
    assert rows(api)["media"] == 1
    assert rows(api)["webhook_deliveries"] == 1
    assert media(api, accepted["media_id"]).status == MediaStatus.ready


def test_upload_with_an_entity_is_attached(api: Api, runs: Runs) -> None:
    secret = api.secret()
    put(api, KEY)
    response = api.webhook(UPLOADS, upload_event(entity=PRODUCT), secret)
    assert response.status_code == 202, response.text
    media_id = uuid.UUID(response.json()["media_id"])
    assert gallery(api, PRODUCT) == [media_id]  # at once, while pending
    api.settle()
    assert media(api, media_id).status == MediaStatus.ready
    assert gallery(api, PRODUCT) == [media_id]


# -- bucket notifications --------------------------------------------------------------------


def test_storage_event_with_url_encoded_key(api: Api, runs: Runs) -> None:
    secret = api.secret()
    put(api, "incoming/acme/red flower.jpg")
    body = storage_event(s3_record("incoming/acme/red+flower.jpg"))
    response = api.webhook(STORAGE, body, secret)
    assert response.status_code == 202, response.text
    (result,) = response.json()["results"]
    assert result["status"] == "accepted"
    media_id = uuid.UUID(result["media_id"])
    assert [job.key for job in runs.uploads] == ["incoming/acme/red flower.jpg"]

    api.settle()
    done = media(api, media_id)
    assert done.status == MediaStatus.ready, (done.error_code, done.error_message)
    assert done.original_filename == "red flower.jpg"
    assert done.flow_run_id == uuid.UUID(result["run_id"])
    assert not api.services.store.exists("incoming/acme/red flower.jpg")

    again = api.webhook(STORAGE, body, secret)
    assert again.status_code == 200, again.text
    (repeat,) = again.json()["results"]
    assert repeat["status"] == "duplicate"
    assert repeat["media_id"] == result["media_id"]
    assert len(runs.uploads) == 1
    assert rows(api)["media"] == 1


def test_storage_keys_are_decoded_exactly_once(api: Api, runs: Runs) -> None:
    """``a+b%20c.jpg`` is sent as ``a%2Bb%2520c.jpg``: one decode, not two."""
    secret = api.secret()
    put(api, "incoming/acme/a+b%20c.jpg")
    body = storage_event(s3_record("incoming/acme/a%2Bb%2520c.jpg"))
    response = api.webhook(STORAGE, body, secret)
    assert response.status_code == 202, response.text
    assert [job.key for job in runs.uploads] == ["incoming/acme/a+b%20c.jpg"]
    assert [job.filename for job in runs.uploads] == ["a+b%20c.jpg"]
    api.settle()
    done = media(api, response.json()["results"][0]["media_id"])
    assert done.status == MediaStatus.ready, (done.error_code, done.error_message)
    assert done.original_filename == "a+b%20c.jpg"


def test_storage_records_that_are_not_new_incoming_objects_are_ignored(
    api: Api, runs: Runs
) -> None:
    secret = api.secret()
    api.secret("other")
    put(api, KEY)
    put(api, "incoming/other/x.jpg")
    body = storage_event(
        s3_record(KEY, event="s3:ObjectRemoved:Delete"),
        s3_record(KEY, event="ObjectRestore:Completed"),
        s3_record("incoming/other/x.jpg"),
        s3_record("published/acme/x.jpg"),
        s3_record("incoming/acme/%2E%2E/other/x.jpg"),
    )
    response = api.webhook(STORAGE, body, secret)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["ignored"] * 5
    assert "not an object-created event" in results[0]["reason"]
    assert all(r["run_id"] is None and r["media_id"] is None for r in results)
    assert rows(api) == {"media": 0, "webhook_deliveries": 0, "attachments": 0}
    assert runs.uploads == []
    assert api.services.store.exists(KEY)


def test_storage_event_with_several_records_starts_one_run_each(api: Api, runs: Runs) -> None:
    secret = api.secret()
    put(api, "incoming/acme/a.jpg", photo_jpeg(320, 240, seed=2))
    put(api, "incoming/acme/b.jpg", photo_jpeg(320, 240, seed=3))
    body = storage_event(
        s3_record("incoming/acme/a.jpg", sequencer="01"),
        s3_record("incoming/acme/a.jpg", sequencer="01"),  # the same record twice
        s3_record("incoming/acme/b.jpg", sequencer="02"),
    )
    response = api.webhook(STORAGE, body, secret)
    assert response.status_code == 202, response.text
    statuses = [r["status"] for r in response.json()["results"]]
    assert statuses == ["accepted", "duplicate", "accepted"]
    api.settle()
    assert len(runs.uploads) == 2
    assert rows(api)["media"] == 2


# -- entity.deleted ---------------------------------------------------------------------------


def test_entity_deleted_detaches_its_media(api: Api, runs: Runs) -> None:
    secret = api.secret()
    put(api, KEY)
    uploaded = api.webhook(UPLOADS, upload_event(entity=PRODUCT), secret)
    assert uploaded.status_code == 202, uploaded.text
    api.settle()
    own = uuid.UUID(uploaded.json()["media_id"])
    assert media(api, own).status == MediaStatus.ready
    # A second media uploaded for another entity, also shown on this one.
    shared = pending_media(api, Entity("product", "7"))
    with api.services.writing() as session:
        attach(session, lock_media(session, shared), PRODUCT, "ana")
    assert set(gallery(api, PRODUCT)) == {own, shared}

    response = api.webhook(ENTITIES, entity_event(), secret)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["status"] == "accepted"
    assert answer["media_id"] is None
    run_id = uuid.UUID(answer["run_id"])
    api.settle()

    assert gallery(api, PRODUCT) == []
    assert media(api, own).status == MediaStatus.deleted  # uploaded for it, now nowhere
    assert media(api, shared).status == MediaStatus.pending  # kept: uploaded for product:7
    assert gallery(api, Entity("product", "7")) == [shared]
    assert [(job.workspace, job.entity) for job in runs.cleanups] == [("acme", "product:42")]

    again = api.webhook(ENTITIES, entity_event(), secret)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "duplicate"
    assert again.json()["run_id"] == str(run_id)
    api.settle()
    assert len(runs.cleanups) == 1


def test_entity_deleted_in_another_workspace_leaves_acme_alone(api: Api, runs: Runs) -> None:
    api.secret("acme")
    other = api.secret("other")
    kept = pending_media(api, PRODUCT, "acme")
    response = api.webhook(ENTITIES, entity_event(workspace="other"), other)
    assert response.status_code == 202, response.text
    api.settle()
    assert [job.workspace for job in runs.cleanups] == ["other"]
    assert gallery(api, PRODUCT, "acme") == [kept]
    assert media(api, kept).status == MediaStatus.pending


# -- URL uploads and SSRF -----------------------------------------------------------------------


@pytest.fixture
def loopback() -> Iterator[tuple[str, list[str]]]:
    """A server on 127.0.0.1 that would hand out a valid JPEG, and the paths it was asked for."""
    asked: list[str] = []
    jpeg = photo_jpeg(64, 48, seed=4)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(jpeg)))
            self.end_headers()
            self.wfile.write(jpeg)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("host", ["{loopback}", "localhost:{port}", "[::1]:{port}"])
def test_url_upload_to_a_loopback_address_is_refused(
    api: Api, runs: Runs, loopback: tuple[str, list[str]], host: str
) -> None:
    address, asked = loopback
    url = f"http://{host.format(loopback=address, port=address.rpartition(':')[2])}/a.jpg"
    secret = api.secret()
    response = api.webhook(UPLOADS, upload_event(key=None, url=url), secret)
    assert response.status_code == 202, response.text
    media_id = response.json()["media_id"]
    api.settle()
    done = media(api, media_id)
    assert done.status == MediaStatus.failed
    assert done.error_code == "forbidden_address", (done.error_code, done.error_message)
    assert asked == []  # refused before connecting
    assert [job.url for job in runs.uploads] == [url]


# -- a run that cannot start ------------------------------------------------------------------


def test_dispatch_failure_is_503_and_the_retry_runs(
    api: Api, runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = api.secret()
    put(api, KEY)
    working = api.dispatcher.ingest_upload

    def broken(job: UploadJob, idempotency_key: str) -> uuid.UUID:
        raise DispatchError("Prefect is down")

    monkeypatch.setattr(api.dispatcher, "ingest_upload", broken)
    response = api.webhook(UPLOADS, upload_event(), secret)
    assert response.status_code == 503, response.text
    assert "Prefect is down" in response.json()["detail"]
    assert response.headers["Retry-After"] == "30"
    with api.services.reading() as session:
        (failed,) = session.scalars(select(Media)).all()
        assert failed.status == MediaStatus.failed
        assert failed.error_code == "dispatch_failed"
    assert rows(api)["webhook_deliveries"] == 0  # forgotten, so the retry is not a duplicate
    assert api.services.store.exists(KEY)

    monkeypatch.setattr(api.dispatcher, "ingest_upload", working)
    retry = api.webhook(UPLOADS, upload_event(), secret)
    assert retry.status_code == 202, retry.text
    api.settle()
    assert media(api, retry.json()["media_id"]).status == MediaStatus.ready
    assert len(runs.uploads) == 1
