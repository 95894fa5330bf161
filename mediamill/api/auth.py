"""Bearer-token authentication: every request acts as one user inside one workspace."""

from __future__ import annotations

from fastapi import Request

from mediamill.api.services import services_of
from mediamill.catalog.access import Principal, authenticate


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def principal_of(request: Request) -> Principal | None:
    """The caller's principal, or None for a missing or unknown token."""
    token = bearer_token(request)
    if token is None:
        return None
    with services_of(request.app.state).reading() as session:
        return authenticate(session, token)
