"""Write resolvers, Shopify style: input problems come back as ``userErrors``, not errors.

Every mutation on an existing media locks it within the caller's workspace first; an id
from another workspace is answered exactly like an id that does not exist.

Every write runs in a worker thread: it may wait for the catalog's write lock or start a
flow run, and the event loop must keep answering the process's other requests meanwhile.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import strawberry
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from mediamill.api import intake, tickets
from mediamill.api.dispatch import DispatchError, UploadJob
from mediamill.api.graphql.context import Info, require
from mediamill.api.graphql.queries import parse_media_id
from mediamill.api.graphql.types import (
    EntityInput,
    MediaCreateInput,
    MediaNode,
    MediaPayload,
    StagedUploadHeader,
    StagedUploadInput,
    StagedUploadsCreatePayload,
    StagedUploadTarget,
    UserError,
)
from mediamill.api.services import Services
from mediamill.catalog import lifecycle
from mediamill.catalog import repository as repo
from mediamill.catalog.access import Principal
from mediamill.catalog.errors import NotFound
from mediamill.catalog.lifecycle import Entity, Refused
from mediamill.catalog.models import Media
from mediamill.catalog.views import media_record
from mediamill.storage.errors import ObjectNotFound, StorageError
from mediamill.storage.incoming import new_incoming_key
from mediamill.tasks.filenames import display_filename
from mediamill.tasks.sources import EntityRef

MAX_STAGED_PER_CALL = 50
MAX_ALT_LENGTH = 4096
UPLOAD_CONTENT_TYPE = "application/octet-stream"


class _Refusal(Exception):  # noqa: N818  (control flow: rolls the transaction back)
    """Leave the transaction with a user error; nothing the mutation did is kept."""

    def __init__(self, error: UserError) -> None:
        super().__init__(error.message)
        self.error = error


def _error(field: list[str] | None, code: str, message: str) -> UserError:
    return UserError(field=field, code=code, message=message)


def _failed(*errors: UserError) -> MediaPayload:
    return MediaPayload(media=None, user_errors=list(errors))


NOT_FOUND = _error(["id"], "NOT_FOUND", "media not found")


def _entity(entity: EntityInput, field: str = "entity") -> Entity:
    try:
        ref = EntityRef.parse(f"{entity.type}:{entity.id}")
    except ValueError as error:
        raise _Refusal(_error([field], "INVALID", str(error))) from error
    return Entity(ref.type, ref.id)


def _alt(alt: str | None) -> str | None:
    if alt is not None and len(alt) > MAX_ALT_LENGTH:
        raise _Refusal(_error(["alt"], "TOO_LONG", f"alt is over {MAX_ALT_LENGTH} characters"))
    return alt


def _edit(info: Info, id: str, change: Callable[[Session, Media, Principal], None]) -> MediaPayload:
    """Lock one media of the caller's workspace, apply ``change``, answer with the media."""
    principal = require(info, "write")
    media_id = parse_media_id(id)
    if media_id is None:
        return _failed(NOT_FOUND)
    services = info.context.services
    try:
        with services.writing() as session:
            media = lifecycle.lock_media(session, media_id, principal.workspace_id)
            change(session, media, principal)
            session.flush()
            record = media_record(media, services.url_for)
    except NotFound:
        return _failed(NOT_FOUND)
    except Refused as refused:
        return _failed(_error(["id"], "REFUSED", str(refused)))
    except _Refusal as refusal:
        return _failed(refusal.error)
    return MediaPayload(media=MediaNode.from_record(record), user_errors=[])


def _created(services: Services, principal: Principal, media_id: uuid.UUID) -> MediaPayload:
    with services.reading() as session:
        media = repo.get_media(session, media_id, principal.workspace_id)
        if media is None:
            return _failed(NOT_FOUND)
        return MediaPayload(
            media=MediaNode.from_record(media_record(media, services.url_for)), user_errors=[]
        )


def _start(
    info: Info,
    job: UploadJob,
    entity: EntityInput | None,
) -> MediaPayload:
    """Create the pending media and start its ``ingest-upload`` run."""
    principal = info.context.principal
    services = info.context.services
    try:
        target = _entity(entity) if entity is not None else None
        _alt(job.alt)
    except _Refusal as refusal:
        return _failed(refusal.error)
    try:
        started = intake.start_upload(services, principal.workspace_id, job, target)
    except DispatchError as error:
        return _failed(_error(None, "UNAVAILABLE", f"processing could not start: {error}"))
    assert started.media_id is not None
    return _created(services, principal, started.media_id)


def _staged_key(info: Info, principal: Principal, source: str) -> tuple[str, str | None]:
    """The incoming key a ``resourceUrl`` names, if this workspace staged it."""
    services = info.context.services
    prefix = f"{services.settings.api_public_url.rstrip('/')}/uploads/"
    field = ["input", "originalSource"]
    if not source.startswith(prefix):
        raise _Refusal(_error(field, "INVALID", "originalSource is not a staged upload URL"))
    try:
        ticket = tickets.redeem(services.ticket_key, source[len(prefix) :], check_expiry=False)
    except tickets.TicketError as error:
        raise _Refusal(_error(field, "INVALID", str(error))) from error
    if ticket.workspace != principal.workspace:
        raise _Refusal(_error(field, "NOT_FOUND", "staged upload not found"))
    try:
        size = services.store.head(ticket.key).size
    except ObjectNotFound as error:
        raise _Refusal(
            _error(field, "NOT_UPLOADED", "nothing was uploaded to this target yet")
        ) from error
    except StorageError as error:
        raise _Refusal(_error(field, "UNAVAILABLE", "storage unavailable")) from error
    if size > ticket.max_bytes:
        # A presigned PUT goes straight to the bucket, which cannot hold it to the size
        # declared in stagedUploadsCreate; the object is dropped here instead.
        with contextlib.suppress(StorageError):
            services.store.delete_many([ticket.key])
        raise _Refusal(
            _error(field, "TOO_LARGE", f"the upload is larger than its {ticket.max_bytes:,} bytes")
        )
    return ticket.key, ticket.filename


async def _store_file(info: Info, principal: Principal, upload: object) -> tuple[str, str | None]:
    """Put a multipart upload into the workspace's incoming area."""
    services = info.context.services
    limit = services.settings.max_upload_bytes
    read = upload.read  # type: ignore[attr-defined]
    data = await read(limit + 1)
    if len(data) > limit:
        raise _Refusal(_error(["input", "file"], "TOO_LARGE", f"file is over {limit:,} bytes"))
    key = new_incoming_key(principal.workspace)
    await run_in_threadpool(
        services.store.put,
        key,
        data,
        content_type=UPLOAD_CONTENT_TYPE,
        cache_control="private, no-store",
    )
    return key, getattr(upload, "filename", None)


def _staged_targets(
    info: Info, principal: Principal, items: list[StagedUploadInput]
) -> list[StagedUploadTarget]:
    """One target per file: a presigned PUT to the bucket where the store has them.

    ``resourceUrl`` is always the API's own signed link, whatever ``url`` is: it names the
    incoming key and the workspace for ``mediaCreate``, and it accepts the PUT as well.
    """
    services = info.context.services
    settings = services.settings
    lifetime = timedelta(minutes=settings.staged_upload_ttl_minutes)
    expires = datetime.now(UTC) + lifetime
    base = settings.api_public_url.rstrip("/")
    targets = []
    for item in items:
        ticket = tickets.UploadTicket(
            key=new_incoming_key(principal.workspace),
            workspace=principal.workspace,
            max_bytes=item.file_size,
            content_type=UPLOAD_CONTENT_TYPE,
            expires=int(expires.timestamp()),
            filename=display_filename(item.filename),
        )
        resource_url = f"{base}/uploads/{tickets.issue(services.ticket_key, ticket)}"
        presigned = services.store.upload_target(
            ticket.key, content_type=UPLOAD_CONTENT_TYPE, expires_in=lifetime
        )
        if presigned is None:
            url, headers, expires_at = resource_url, {"Content-Type": UPLOAD_CONTENT_TYPE}, expires
        else:
            url, headers, expires_at = presigned.url, presigned.headers, presigned.expires_at
        targets.append(
            StagedUploadTarget(
                url=url,
                method="PUT",
                resource_url=resource_url,
                headers=[StagedUploadHeader(name=k, value=v) for k, v in headers.items()],
                expires_at=expires_at,
            )
        )
    return targets


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Upload targets for files the client sends itself.")
    async def staged_uploads_create(
        self, info: Info, input: list[StagedUploadInput]
    ) -> StagedUploadsCreatePayload:
        principal = require(info, "write")
        settings = info.context.services.settings
        if len(input) > MAX_STAGED_PER_CALL:
            error = _error(["input"], "TOO_MANY", f"at most {MAX_STAGED_PER_CALL} per call")
            return StagedUploadsCreatePayload(staged_targets=[], user_errors=[error])
        errors = [
            _error(
                ["input", str(i), "fileSize"],
                "TOO_LARGE",
                f"fileSize must be between 0 and {settings.max_upload_bytes:,} bytes",
            )
            for i, item in enumerate(input)
            if not 0 <= item.file_size <= settings.max_upload_bytes
        ]
        if errors:
            return StagedUploadsCreatePayload(staged_targets=[], user_errors=errors)
        try:
            # Signing may call the cloud provider (GCS without a key signs through IAM).
            targets = await run_in_threadpool(_staged_targets, info, principal, input)
        except StorageError:
            error = _error(None, "UNAVAILABLE", "upload targets could not be made: storage error")
            return StagedUploadsCreatePayload(staged_targets=[], user_errors=[error])
        return StagedUploadsCreatePayload(staged_targets=targets, user_errors=[])

    @strawberry.mutation(description="Create a media from a staged upload or a multipart file.")
    async def media_create(self, info: Info, input: MediaCreateInput) -> MediaPayload:
        principal = require(info, "write")
        if (input.original_source is None) == (input.file is None):
            error = _error(["input"], "INVALID", "give exactly one of originalSource and file")
            return _failed(error)
        try:
            # Checked before a multipart file is stored: a refusal must not strand it.
            if input.entity is not None:
                _entity(input.entity)
            _alt(input.alt)
            if input.original_source is not None:
                key, staged_name = await run_in_threadpool(
                    _staged_key, info, principal, input.original_source
                )
            else:
                key, staged_name = await _store_file(info, principal, input.file)
        except _Refusal as refusal:
            return _failed(refusal.error)
        job = UploadJob(
            workspace=principal.workspace,
            media_id="",
            key=key,
            filename=input.filename or staged_name,
            user=principal.user,
            entity=f"{input.entity.type}:{input.entity.id}" if input.entity else None,
            alt=input.alt,
        )
        return await run_in_threadpool(_start, info, job, input.entity)

    @strawberry.mutation(description="Create a media from a public http(s) URL, fetched safely.")
    async def media_create_from_url(
        self, info: Info, url: str, alt: str | None = None, entity: EntityInput | None = None
    ) -> MediaPayload:
        principal = require(info, "write")
        problem = url_problem(url)
        if problem is not None:
            return _failed(_error(["url"], "INVALID_URL", problem))
        job = UploadJob(
            workspace=principal.workspace,
            media_id="",
            url=url,
            filename=None,
            user=principal.user,
            entity=f"{entity.type}:{entity.id}" if entity else None,
            alt=alt,
        )
        return await run_in_threadpool(_start, info, job, entity)

    @strawberry.mutation(description="Change a media's alt text.")
    async def media_update(
        self, info: Info, id: strawberry.ID, alt: str | None = None
    ) -> MediaPayload:
        def change(session: Session, media: Media, principal: Principal) -> None:
            media.alt_text = _alt(alt)
            repo.record_audit(
                session,
                workspace_id=media.workspace_id,
                action="media.updated",
                actor=principal.user,
                media_id=media.id,
                details={"alt": alt},
            )

        return await run_in_threadpool(_edit, info, id, change)

    @strawberry.mutation(description="Attach a media at the end of an entity's gallery.")
    async def media_attach(
        self, info: Info, id: strawberry.ID, entity: EntityInput
    ) -> MediaPayload:
        def change(session: Session, media: Media, principal: Principal) -> None:
            lifecycle.attach(session, media, _entity(entity), principal.user)

        return await run_in_threadpool(_edit, info, id, change)

    @strawberry.mutation(description="Remove a media from an entity's gallery.")
    async def media_detach(
        self, info: Info, id: strawberry.ID, entity: EntityInput
    ) -> MediaPayload:
        def change(session: Session, media: Media, principal: Principal) -> None:
            if not lifecycle.detach(session, media, _entity(entity), principal.user):
                raise _Refusal(_error(["entity"], "NOT_ATTACHED", "media is not attached there"))

        return await run_in_threadpool(_edit, info, id, change)

    @strawberry.mutation(description="Soft-delete a media; restorable for the retention period.")
    async def media_delete(self, info: Info, id: strawberry.ID) -> MediaPayload:
        def change(session: Session, media: Media, principal: Principal) -> None:
            lifecycle.soft_delete(
                session, media, actor=principal.user, now=datetime.now(UTC), reason="user"
            )

        return await run_in_threadpool(_edit, info, id, change)

    @strawberry.mutation(description="Undo a soft delete within the retention period.")
    async def media_restore(self, info: Info, id: strawberry.ID) -> MediaPayload:
        retention = timedelta(days=info.context.services.settings.retention_days)

        def change(session: Session, media: Media, principal: Principal) -> None:
            lifecycle.restore(
                session, media, actor=principal.user, now=datetime.now(UTC), retention=retention
            )

        return await run_in_threadpool(_edit, info, id, change)


def url_problem(url: str) -> str | None:
    """Why ``url`` can never be fetched, found without a network call; None if it may be."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises for a malformed port)
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "only http and https URLs can be fetched"
    if not parts.hostname:
        return "the URL names no host"
    if parts.username or parts.password:
        return "URLs with credentials are not fetched"
    return None
