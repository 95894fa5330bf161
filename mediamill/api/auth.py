"""Bearer-token authentication: every request acts as one user inside one workspace."""

from __future__ import annotations

from fastapi import HTTPException, Request, status

from mediamill.api.services import services_of
from mediamill.catalog.access import Principal, authenticate

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


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


def require_principal(request: Request) -> Principal:
    """A FastAPI dependency: 401 unless the request carries a valid token."""
    principal = principal_of(request)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "a valid API token is required", _CHALLENGE
        )
    return principal
