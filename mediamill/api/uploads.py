"""``PUT /uploads/{ticket}``: where staged uploads land when the store has no presigned URLs.

The bytes go through the configured store, so this works for every backend; the ticket
(see :mod:`mediamill.api.tickets`) is the only permission needed.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from mediamill.api.services import services_of
from mediamill.api.tickets import TicketError, redeem
from mediamill.storage.errors import StorageError

INCOMING_CACHE_CONTROL = "private, no-store"

router = APIRouter(tags=["uploads"])


class Stored(BaseModel):
    """Where the upload landed; pass ``resourceUrl`` from the staged target to ``mediaCreate``."""

    key: str
    size: int


@router.put(
    "/uploads/{ticket}",
    response_model=Stored,
    status_code=status.HTTP_201_CREATED,
    responses={403: {"description": "Bad or expired ticket"}, 413: {"description": "Too large"}},
)
async def put_upload(ticket: str, request: Request) -> Stored:
    """Store the request body at the ticket's incoming key."""
    services = services_of(request.app.state)
    try:
        allowed = redeem(services.ticket_key, ticket)
    except TicketError as error:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(error)) from error
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > allowed.max_bytes:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "upload is too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > allowed.max_bytes:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "upload is too large")
    try:
        await run_in_threadpool(
            services.store.put,
            allowed.key,
            bytes(body),
            content_type=allowed.content_type,
            cache_control=INCOMING_CACHE_CONTROL,
        )
    except StorageError as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "storage unavailable") from error
    return Stored(key=allowed.key, size=len(body))
