"""Signed webhooks: bucket events, upload-complete and entity-deleted.

Every route reads the raw body, checks its signature with the named workspace's secret,
and only then parses it. An accepted event is remembered by id before its run starts, so
a redelivery (or two copies at once) is acknowledged without a second run.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import unquote_plus, urlsplit

from fastapi import APIRouter, Header, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.concurrency import run_in_threadpool

from mediamill.api import intake
from mediamill.api.dispatch import CleanupJob, DispatchError, UploadJob
from mediamill.api.intake import Event, Started
from mediamill.api.services import Services, services_of
from mediamill.api.signatures import HEADER, SignatureError, verify
from mediamill.catalog import access
from mediamill.catalog.lifecycle import Entity
from mediamill.storage.incoming import filename_hint, incoming_workspace

MAX_BODY_BYTES = 256 * 1024
WORKSPACE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
EVENT_ID = r"^[A-Za-z0-9_.:-]{1,255}$"
ENTITY_TYPE = r"^[a-z][a-z0-9_]{0,63}$"
ENTITY_ID = r"^[A-Za-z0-9_-]{1,128}$"
WEBHOOK_ACTOR = "webhook"

M = TypeVar("M", bound=BaseModel)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


class EntityBody(BaseModel):
    """An entity of the host platform."""

    type: str = Field(pattern=ENTITY_TYPE, examples=["product"])
    id: str = Field(pattern=ENTITY_ID, examples=["42"])

    def as_entity(self) -> Entity:
        return Entity(self.type, self.id)


class UploadCompleted(BaseModel):
    """An upload finished: bytes at ``key`` in the store's incoming area, or at ``url``."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=EVENT_ID, examples=["evt_1"])
    type: Literal["upload.completed"]
    workspace: str = Field(pattern=WORKSPACE)
    key: str | None = Field(None, max_length=1024, examples=["incoming/acme/a.jpg"])
    url: str | None = Field(None, max_length=2048)
    entity: EntityBody | None = None
    filename: str | None = Field(None, max_length=1024)
    alt: str | None = Field(None, max_length=4096)
    user: str | None = Field(None, max_length=255)

    @model_validator(mode="after")
    def _one_source(self) -> UploadCompleted:
        if (self.key is None) == (self.url is None):
            raise ValueError("give exactly one of key and url")
        return self


class EntityDeleted(BaseModel):
    """An entity was deleted on the platform: its media are detached and cleaned up."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=EVENT_ID, examples=["evt_2"])
    type: Literal["entity.deleted"]
    workspace: str = Field(pattern=WORKSPACE)
    entity: EntityBody


class S3Bucket(BaseModel):
    name: str = Field(max_length=255)


class S3Object(BaseModel):
    key: str = Field(max_length=3072, description="URL-encoded, as S3 sends it")
    size: int | None = None
    eTag: str | None = Field(None, max_length=255)  # noqa: N815  (S3's field name)
    sequencer: str | None = Field(None, max_length=255)


class S3Entity(BaseModel):
    bucket: S3Bucket
    object: S3Object


class S3Record(BaseModel):
    eventName: str = Field(max_length=255, examples=["s3:ObjectCreated:Put"])  # noqa: N815
    s3: S3Entity


class StorageEvent(BaseModel):
    """An S3 / MinIO event notification."""

    Records: list[S3Record] = Field(max_length=100)


class Accepted(BaseModel):
    """One event's outcome: started now (202) or accepted before (200, nothing run)."""

    id: str
    status: Literal["accepted", "duplicate", "ignored"]
    run_id: uuid.UUID | None = None
    media_id: uuid.UUID | None = None
    reason: str | None = None


class StorageAccepted(BaseModel):
    """The outcome of each record of a bucket notification."""

    results: list[Accepted]


class Problem(BaseModel):
    detail: str


class Invalid(BaseModel):
    """Why a signed body is not a valid event: a message, or the list of validation errors."""

    detail: str | list[dict[str, Any]]


# Retry-After of a 503 whose cause gives no estimate (Prefect refused or was unreachable).
RETRY_AFTER_SECONDS = 30

_REFUSED: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing, tampered or stale signature"},
    413: {"model": Problem, "description": "Body too large"},
    422: {"model": Invalid, "description": "A signed body that is not a valid event"},
    503: {
        "model": Problem,
        "description": "The run could not be started, or too many wait to start; retry later",
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before sending the event again",
                "schema": {"type": "integer"},
            }
        },
    },
}


def _request_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a route that reads its raw body itself.

    The model's ``$defs`` are inlined: a ``#/$defs/...`` reference inside an OpenAPI document
    points at the document's root, where nothing is defined, so tools (schemathesis) could
    not resolve the body schema and dropped it.
    """
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                siblings = {k: v for k, v in node.items() if k != "$ref"}
                return {**inline(definitions[ref.removeprefix("#/$defs/")]), **inline(siblings)}
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline(schema)}},
        }
    }


@dataclass(frozen=True)
class SignedBody:
    """A body whose signature checked out, with the workspace it is for.

    ``known`` is what the catalog knew of the body's event id when the secrets were read
    (its earlier delivery, if any), so a first delivery costs no second lookup.
    """

    services: Services
    workspace_id: int
    workspace: str
    body: Any
    known: access.WebhookSigning | None = None


async def _accept(
    request: Request, signature: str | None, handle: Callable[[SignedBody], JSONResponse]
) -> JSONResponse:
    """Read the body, then check and handle it in one trip to a worker thread.

    The secrets lookup, the event's claim and the run's launch all block: one hand-off for
    all of them, where each hand-off costs the event loop and the thread a wake-up.
    """
    raw = await _read_body(request)
    services = services_of(request.app.state)
    return await run_in_threadpool(lambda: handle(_verified(services, raw, signature)))


def _verified(services: Services, raw: bytes, signature: str | None) -> SignedBody:
    """The parsed body and its workspace once the signature checks out; 401 otherwise."""
    body = _json_or_none(raw)
    unverified = _claimed_workspace(body)
    event_id = body.get("id") if isinstance(body, dict) else None
    known = None
    found = None
    if unverified is not None:
        with services.reading() as session:
            if isinstance(event_id, str):
                known = access.webhook_signing(session, unverified, event_id)
                found = None if known is None else (known.workspace_id, known.secrets)
            else:
                found = access.webhook_secrets(session, unverified)
    try:
        if signature is None:
            raise SignatureError(f"missing {HEADER} header")
        if found is None or not found[1]:
            raise SignatureError("signature does not match")
        verify(
            signature,
            raw,
            found[1],
            tolerance_seconds=services.settings.webhook_tolerance_seconds,
        )
    except SignatureError as error:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(error)) from error
    assert unverified is not None  # found is None without it
    return SignedBody(services, found[0], unverified, body, known)


async def _read_body(request: Request) -> bytes:
    """The raw body; 413 as soon as it is known to pass MAX_BODY_BYTES, never read to its end."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "body too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "body too large")
    return bytes(body)


def _json_or_none(raw: bytes) -> Any:
    """The body parsed, or None when it is no JSON (it then matches no signature either)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nesting too deep to parse
        return None


def _claimed_workspace(body: Any) -> str | None:
    """The workspace a body says it is for, read only to pick the secret to check with."""
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("workspace"), str):
        return str(body["workspace"])
    records = body.get("Records")
    if isinstance(records, list) and records:
        try:
            key = unquote_plus(str(records[0]["s3"]["object"]["key"]))
        except (KeyError, TypeError):
            return None
        return incoming_workspace(key)
    return None


def _scheme(url: str) -> str | None:
    """The URL's scheme; None for a URL urlsplit cannot even split (``http://[``)."""
    try:
        return urlsplit(url).scheme
    except ValueError:
        return None


def _parse(model: type[M], body: Any) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as error:
        detail = json.loads(error.json(include_url=False, include_context=False))
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from error


def _answer(accepted: Accepted) -> JSONResponse:
    code = status.HTTP_202_ACCEPTED if accepted.status == "accepted" else status.HTTP_200_OK
    return JSONResponse(accepted.model_dump(mode="json"), status_code=code)


def _accepted(event_id: str, started: Started) -> Accepted:
    return Accepted(
        id=event_id, status=started.status, run_id=started.run_id, media_id=started.media_id
    )


def _start_upload(
    services: Services,
    workspace_id: int,
    event: Event,
    job: UploadJob,
    entity: Entity | None,
    known: access.WebhookSigning | None = None,
) -> Accepted:
    """Remember the event, create the pending media, start its run; once per event id."""
    try:
        started = intake.start_upload(services, workspace_id, job, entity, event, known)
    except DispatchError as error:
        raise _unavailable(error) from error
    return _accepted(event.id, started)


def _start_cleanup(
    services: Services,
    workspace_id: int,
    event: Event,
    job: CleanupJob,
    known: access.WebhookSigning | None = None,
) -> Accepted:
    try:
        started = intake.start_cleanup(services, workspace_id, job, event, known)
    except DispatchError as error:
        raise _unavailable(error) from error
    return _accepted(event.id, started)


def _unavailable(error: DispatchError) -> HTTPException:
    """503 with the Retry-After the refusal estimated, or a default when Prefect failed."""
    retry_after = error.retry_after or RETRY_AFTER_SECONDS
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE, str(error), headers={"Retry-After": str(retry_after)}
    )


@router.post(
    "/uploads",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses={200: {"model": Accepted, "description": "Seen before; nothing run"}, **_REFUSED},
    openapi_extra=_request_body(UploadCompleted),
)
async def upload_completed(
    request: Request,
    signature: Annotated[str | None, Header(alias=HEADER)] = None,
) -> JSONResponse:
    """``upload.completed``: ingest the object at ``key`` (or the file at ``url``)."""
    return await _accept(request, signature, _upload_completed)


def _upload_completed(signed: SignedBody) -> JSONResponse:
    event = _parse(UploadCompleted, signed.body)
    if event.key is not None and incoming_workspace(event.key) != event.workspace:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"key must be under incoming/{event.workspace}/ of the store",
        )
    if event.url is not None and _scheme(event.url) not in ("http", "https"):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "url must be http or https")
    job = UploadJob(
        workspace=event.workspace,
        media_id="",
        key=event.key,
        url=event.url,
        filename=event.filename or (filename_hint(event.key) if event.key else None),
        user=event.user or WEBHOOK_ACTOR,
        entity=f"{event.entity.type}:{event.entity.id}" if event.entity else None,
        alt=event.alt,
    )
    entity = event.entity.as_entity() if event.entity else None
    return _answer(
        _start_upload(
            signed.services,
            signed.workspace_id,
            Event(event.id, event.type),
            job,
            entity,
            signed.known,
        )
    )


@router.post(
    "/entities",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses={200: {"model": Accepted, "description": "Seen before; nothing run"}, **_REFUSED},
    openapi_extra=_request_body(EntityDeleted),
)
async def entity_deleted(
    request: Request,
    signature: Annotated[str | None, Header(alias=HEADER)] = None,
) -> JSONResponse:
    """``entity.deleted``: detach the entity's media and clean up what it alone used."""
    return await _accept(request, signature, _entity_deleted)


def _entity_deleted(signed: SignedBody) -> JSONResponse:
    event = _parse(EntityDeleted, signed.body)
    job = CleanupJob(event.workspace, str(event.entity.as_entity()), WEBHOOK_ACTOR)
    return _answer(
        _start_cleanup(
            signed.services, signed.workspace_id, Event(event.id, event.type), job, signed.known
        )
    )


@router.post(
    "/storage",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=StorageAccepted,
    responses={
        200: {"model": StorageAccepted, "description": "Every record seen before"},
        **_REFUSED,
    },
    openapi_extra=_request_body(StorageEvent),
)
async def storage_event(
    request: Request,
    signature: Annotated[str | None, Header(alias=HEADER)] = None,
) -> JSONResponse:
    """An S3 / MinIO notification: ingest each object created under ``incoming/{workspace}/``."""
    return await _accept(request, signature, _storage_event)


def _storage_event(signed: SignedBody) -> JSONResponse:
    event = _parse(StorageEvent, signed.body)
    results = [
        _storage_record(signed.services, signed.workspace_id, signed.workspace, record)
        for record in event.Records
    ]
    started = any(r.status == "accepted" for r in results)
    code = status.HTTP_202_ACCEPTED if started else status.HTTP_200_OK
    return JSONResponse(StorageAccepted(results=results).model_dump(mode="json"), status_code=code)


def _storage_record(
    services: Services, workspace_id: int, workspace: str, record: S3Record
) -> Accepted:
    key = services.store.key_for_event(record.s3.bucket.name, unquote_plus(record.s3.object.key))
    version = record.s3.object.sequencer or record.s3.object.eTag or ""
    event_id = f"s3:{record.s3.bucket.name}/{record.s3.object.key}@{version}"[:255]
    if not record.eventName.removeprefix("s3:").startswith("ObjectCreated:"):
        return Accepted(id=event_id, status="ignored", reason="not an object-created event")
    if key is None or incoming_workspace(key) != workspace:
        return Accepted(
            id=event_id,
            status="ignored",
            reason=f"object is not under incoming/{workspace}/ of the configured store",
        )
    # The key is decoded once already; filename_hint would decode it a second time.
    job = UploadJob(
        workspace=workspace,
        media_id="",
        key=key,
        filename=key.rsplit("/", 1)[-1],
        user=WEBHOOK_ACTOR,
    )
    return _start_upload(
        services, workspace_id, Event(event_id, "storage.object_created"), job, None
    )
