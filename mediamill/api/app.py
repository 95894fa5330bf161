"""The FastAPI app: webhooks, GraphQL, upload links, the picker page.

``create_app`` builds the catalog engine, store and dispatcher once (at the edge, as
DESIGN.md asks) and closes them at shutdown; ``mediamill api`` serves it with uvicorn.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from importlib.metadata import version

from fastapi import FastAPI

from mediamill.api import library, uploads, webhooks
from mediamill.api.dispatch import Dispatcher
from mediamill.api.graphql.schema import make_router
from mediamill.api.redispatch import Redispatcher
from mediamill.api.services import Services
from mediamill.settings import Settings, get_settings

# Collector thresholds while serving (CPython's defaults: 700, 10, 10). A library page
# holds a few thousand objects at its peak, nearly all freed by reference counting: at 700
# the collector ran about 4 times a request for nothing, at 5000 about once in 25 requests.
# Full collections a tenth as often: one walks every live object, and a burst of webhooks
# leaves thousands of accepted events waiting for their runs. Measured mid-burst: 289 ms
# walking 569,452 objects to free 814, with every request of the process held meanwhile.
GC_THRESHOLDS = (5000, 10, 100)


@contextmanager
def settled_heap() -> Iterator[None]:
    """Freeze what start-up built and collect less often while serving, restored at shutdown.

    A full collection walks every object of the imported libraries (hundreds of ms on a busy
    machine: the latency tail); frozen objects are skipped until unfrozen. No collection
    before freezing, which would cost as much again on every start (every test's app).
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def create_app(
    settings: Settings | None = None, *, dispatcher: Dispatcher | None = None
) -> FastAPI:
    """The API for ``settings`` (from the environment when omitted)."""
    settings = settings or get_settings()
    services = Services.open(settings, dispatcher)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redispatcher = Redispatcher(services)
        redispatcher.start()
        try:
            with settled_heap():
                yield
        finally:
            redispatcher.stop()
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
