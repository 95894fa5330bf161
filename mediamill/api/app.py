"""The FastAPI app: webhooks, GraphQL, upload links, the picker page.

``create_app`` builds the catalog engine, store and dispatcher once (at the edge, as
DESIGN.md asks) and closes them at shutdown; ``mediamill api`` serves it with uvicorn.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI

from mediamill.api import library, uploads, webhooks
from mediamill.api.dispatch import Dispatcher
from mediamill.api.graphql.schema import make_router
from mediamill.api.services import Services
from mediamill.settings import Settings, get_settings


def create_app(
    settings: Settings | None = None, *, dispatcher: Dispatcher | None = None
) -> FastAPI:
    """The API for ``settings`` (from the environment when omitted)."""
    settings = settings or get_settings()
    services = Services.open(settings, dispatcher)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        services.close()

    app = FastAPI(
        title="mediamill",
        version=version("mediamill"),
        summary="Webhooks, GraphQL media library and media picker of the mediamill pipeline.",
        lifespan=lifespan,
    )
    app.state.services = services
    app.include_router(webhooks.router)
    app.include_router(uploads.router)
    app.include_router(make_router(settings), prefix="/graphql", include_in_schema=False)
    app.include_router(library.router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
