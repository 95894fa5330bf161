"""The webhook routes against their own OpenAPI document, with schemathesis.

Two layers, through the ASGI app: generated requests without a valid signature must all
be refused (401, 413 or 422) as documented; generated bodies signed correctly, over the
exact bytes sent, must never produce a 5xx and must answer as documented. Runs are not
executed here (a recording dispatcher stands in): this is about the HTTP contract.
"""

from __future__ import annotations

import copy
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import func, select

from mediamill.api.app import create_app
from mediamill.api.dispatch import CleanupJob, UploadJob
from mediamill.api.services import Services, services_of
from mediamill.api.signatures import HEADER, sign
from mediamill.api.webhooks import WORKSPACE
from mediamill.catalog import access
from mediamill.catalog.models import Media, WebhookDelivery
from mediamill.settings import get_settings

UPLOADS, ENTITIES, STORAGE = "/webhooks/uploads", "/webhooks/entities", "/webhooks/storage"
ROUTES = (UPLOADS, ENTITIES, STORAGE)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 50
HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


class RecordingDispatcher:
    """Starts nothing; remembers what it was asked to start."""

    def __init__(self) -> None:
        self.uploads: list[UploadJob] = []
        self.cleanups: list[CleanupJob] = []

    def ingest_upload(self, job: UploadJob, idempotency_key: str) -> uuid.UUID:
        self.uploads.append(job)
        return uuid.uuid4()

    def entity_cleanup(self, job: CleanupJob, idempotency_key: str) -> uuid.UUID:
        self.cleanups.append(job)
        return uuid.uuid4()

    def close(self) -> None:
        return None


@pytest.fixture
def dispatcher() -> RecordingDispatcher:
    return RecordingDispatcher()


@pytest.fixture
def app(home: Path, dispatcher: RecordingDispatcher) -> Iterator[FastAPI]:
    settings = get_settings(api_public_url="http://testserver")
    yield create_app(settings, dispatcher=dispatcher)
    shutdown_lifespans()  # schemathesis keeps an ASGI app's lifespan running until told


@pytest.fixture
def schema(app: FastAPI) -> schemathesis.BaseSchema:
    loaded: schemathesis.BaseSchema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return loaded.include(path_regex="^/webhooks/")


def cases(schema: schemathesis.BaseSchema, route: str) -> st.SearchStrategy[Case[Any]]:
    operation = schema[route]["POST"]
    return st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )


def counts(services: Services) -> tuple[int, int]:
    with services.reading() as session:
        media = session.scalar(select(func.count()).select_from(Media)) or 0
        deliveries = session.scalar(select(func.count()).select_from(WebhookDelivery)) or 0
        return media, deliveries


def test_the_document_describes_exactly_the_three_webhook_routes(
    schema: schemathesis.BaseSchema, app: FastAPI
) -> None:
    document = app.openapi()
    webhooks = sorted(p for p in document["paths"] if p.startswith("/webhooks/"))
    assert webhooks == sorted(ROUTES)
    for route in ROUTES:
        operation = document["paths"][route]
        assert list(operation) == ["post"]
        post = operation["post"]
        assert {"200", "202", "401", "413", "422", "503"} <= set(post["responses"])
        for code in ("200", "202", "401", "413", "422", "503"):
            # Every answer the route gives has a body schema to hold it to.
            assert "schema" in post["responses"][code]["content"]["application/json"], code
        body_schema = post["requestBody"]["content"]["application/json"]["schema"]
        # Inline: a "#/$defs/..." reference would point at the document root and not resolve.
        assert "$defs" not in json.dumps(body_schema)
        assert body_schema["type"] == "object"
        assert post["requestBody"]["required"] is True
        assert "application/json" in post["requestBody"]["content"]
        header = next(p for p in post["parameters"] if p["in"] == "header")
        assert header["name"] == HEADER
    assert len(list(schema.get_all_operations())) == 3


def test_the_document_is_served_and_valid(app: FastAPI, schema: schemathesis.BaseSchema) -> None:
    from fastapi.testclient import TestClient

    served = TestClient(app).get("/openapi.json")
    assert served.status_code == 200
    assert served.json() == app.openapi()
    schema.validate()


@pytest.mark.parametrize("route", ROUTES)
def test_unsigned_generated_requests_are_refused(
    schema: schemathesis.BaseSchema,
    app: FastAPI,
    dispatcher: RecordingDispatcher,
    route: str,
) -> None:
    statuses: Counter[int] = Counter()

    @HYPOTHESIS
    @given(case=cases(schema, route))
    def check(case: Case[Any]) -> None:
        response = case.call()
        statuses[response.status_code] += 1
        assert response.status_code in (401, 413, 422), response.text
        case.validate_response(response, checks=CHECKS)

    check()
    assert sum(statuses.values()) >= EXAMPLES
    assert statuses[401] > 0
    assert dispatcher.uploads == []
    assert dispatcher.cleanups == []
    assert counts(services_of(app.state)) == (0, 0)


def claimed_workspace(body: Any) -> str | None:
    """The workspace whose secret a correct sender signs ``body`` with."""
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("workspace"), str):
        return str(body["workspace"])
    records = body.get("Records")
    if not isinstance(records, list) or not records or not isinstance(records[0], dict):
        return None
    s3 = records[0].get("s3")
    s3_object = s3.get("object") if isinstance(s3, dict) else None
    key = s3_object.get("key") if isinstance(s3_object, dict) else None
    if not isinstance(key, str):
        return None
    parts = unquote_plus(key).split("/")
    return parts[1] if len(parts) >= 3 and parts[0] == "incoming" else None


def serialize(body: Any) -> bytes:
    """The exact bytes sent: JSON, or as generated for negative cases (none, raw bytes)."""
    if isinstance(body, NotSet):
        return b""
    if isinstance(body, bytes):
        return body
    return json.dumps(body).encode()


def clean_name(value: Any) -> str:
    """A generated string cut down to a plausible object name (spaces, ``+`` and ``%`` kept)."""
    text = value if isinstance(value, str) else ""
    name = "".join(ch for ch in text if ch.isalnum() or ch in " +%._-").strip().lstrip(".")
    return name[:100] or "upload.jpg"


def steer(body: Any, route: str, how: str) -> None:
    """Point a generated event at its workspace's incoming area (or a URL), so runs start.

    Left as generated, almost every upload names neither or both of key and url, and every
    bucket record names a key outside any incoming area: all 422 or 401, which would leave
    the accepted path unexercised.
    """
    if how == "as generated" or not isinstance(body, dict):
        return
    if route == UPLOADS:
        workspace = body.get("workspace")
        if not isinstance(workspace, str) or not re.fullmatch(WORKSPACE, workspace):
            return
        if how == "key":
            body["key"], body["url"] = f"incoming/{workspace}/{clean_name(body.get('key'))}", None
        else:
            body["key"], body["url"] = (
                None,
                f"https://media.example/{quote(clean_name(body.get('url')))}",
            )
    elif route == STORAGE:
        if not isinstance(body.get("Records"), list) or not body["Records"]:
            body["Records"] = [s3_record(str(body.get("Records")))]
        for record in body["Records"]:
            s3 = record.get("s3") if isinstance(record, dict) else None
            s3_object = s3.get("object") if isinstance(s3, dict) else None
            if isinstance(s3_object, dict):
                # URL-encoded, as S3 sends it.
                s3_object["key"] = f"incoming/acme/{quote_plus(clean_name(s3_object.get('key')))}"
                if how == "key":
                    record["eventName"] = "ObjectCreated:Put"


def s3_record(key: str, event: str = "ObjectCreated:Put") -> dict[str, Any]:
    return {
        "eventName": event,
        "s3": {"bucket": {"name": "media"}, "object": {"key": key, "sequencer": "01"}},
    }


# Always run first, so the accepted, duplicate, ignored and invalid answers are each
# checked against the document whatever the generated cases turn out to be.
ACCEPTED_UPLOAD = {
    "id": "evt_example",
    "type": "upload.completed",
    "workspace": "acme",
    "key": "incoming/acme/red flower.jpg",
    "entity": {"type": "product", "id": "42"},
}
ACCEPTED_DELETION = {
    "id": "evt_example",
    "type": "entity.deleted",
    "workspace": "acme",
    "entity": {"type": "product", "id": "42"},
}
ACCEPTED_RECORD = {"Records": [s3_record("incoming/acme/red+flower.jpg")]}
EXPLICIT: dict[str, list[dict[str, Any]]] = {
    UPLOADS: [
        ACCEPTED_UPLOAD,
        ACCEPTED_UPLOAD,  # the redelivery: 200
        {**ACCEPTED_UPLOAD, "id": "evt_other", "key": "incoming/other/x.jpg"},  # 422
        {**ACCEPTED_UPLOAD, "id": "evt_url", "key": None, "url": "http://["},  # 422
        {**ACCEPTED_UPLOAD, "id": "evt_both", "url": "https://media.example/a.jpg"},  # 422
    ],
    ENTITIES: [
        ACCEPTED_DELETION,
        ACCEPTED_DELETION,
        {**ACCEPTED_DELETION, "entity": {"type": "Product", "id": "42"}},
    ],
    STORAGE: [
        ACCEPTED_RECORD,
        ACCEPTED_RECORD,
        {"Records": [s3_record("incoming/acme/x.jpg", "ObjectRemoved:Delete")]},  # 200 ignored
        {"workspace": "acme", "Records": "none"},  # 422
    ],
}


@pytest.mark.parametrize("route", ROUTES)
def test_signed_generated_bodies_answer_as_documented(
    schema: schemathesis.BaseSchema,
    app: FastAPI,
    dispatcher: RecordingDispatcher,
    route: str,
) -> None:
    services = services_of(app.state)
    secrets: dict[str, str] = {}

    def secret_for(workspace: str) -> str:
        if workspace not in secrets:
            with services.writing() as session:
                secrets[workspace] = access.create_webhook_secret(session, workspace)
        return secrets[workspace]

    fallback = secret_for("acme")
    statuses: Counter[int] = Counter()

    def check(case: Case[Any], how: str) -> None:
        body = case.body
        steer(body, route, how)
        raw = serialize(body)
        workspace = claimed_workspace(body)
        known = workspace is not None and re.fullmatch(WORKSPACE, workspace) is not None
        secret = secret_for(workspace) if known and workspace is not None else fallback
        header = sign(secret, raw, int(time.time()))
        response = case.call(headers={HEADER: header, "Content-Type": "application/json"}, data=raw)
        statuses[response.status_code] += 1
        assert response.status_code < 500, response.text
        case.validate_response(response, checks=CHECKS)
        if response.status_code in (200, 202):
            answer = response.json()
            outcomes = (
                {r["status"] for r in answer["results"]}
                if "results" in answer
                else {answer["status"]}
            )
            # 202 exactly when something was started now; 200 when everything was seen or ignored.
            assert ("accepted" in outcomes) == (response.status_code == 202), answer

    operation = schema[route]["POST"]
    run = given(case=cases(schema, route), how=st.sampled_from(["as generated", "key", "url"]))(
        check
    )
    for body in reversed(EXPLICIT[route]):
        explicit = operation.Case(body=copy.deepcopy(body), media_type="application/json")
        run = example(case=explicit, how="as generated")(run)
    HYPOTHESIS(run)()

    assert sum(statuses.values()) >= EXAMPLES + len(EXPLICIT[route])
    assert statuses[202] > 0, statuses
    assert statuses[200] > 0, statuses
    assert statuses[422] > 0, statuses
    started = len(dispatcher.uploads) + len(dispatcher.cleanups)
    assert started >= 1
    media, deliveries = counts(services)
    assert deliveries == started  # one remembered delivery per started run
    assert media == len(dispatcher.uploads)
