"""A throwaway Prefect server on a database of the caller's choice, for tests and benchmarks.

Prefect's ``prefect_test_harness`` runs its server on SQLite. With the API tests' flows
running several at a time, that server once held SQLite's write lock for over a minute
(its task-run recorder failed with ``database is locked`` after the 60 s busy timeout)
and a test timed out waiting for its runs. PostgreSQL has no database-wide write lock,
and it is what a production Prefect server runs on.

`prefect_server_on` does what the harness does, with the database URL given: it starts
Prefect's ephemeral-mode server (the harness's services, no UI) as a subprocess on a free
port, points this process's settings at it, and drains the client's log and event
workers before stopping it.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from bench.postgres import free_port


@contextmanager
def prefect_server_on(database_url: str, startup_timeout: int = 120) -> Iterator[str]:
    """Run a Prefect server on ``database_url`` (asyncpg) and yield its API URL."""
    import prefect.context
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_DATABASE_CONNECTION_URL,
        temporary_settings,
    )
    from prefect.utilities.asyncutils import run_coro_as_sync

    with ExitStack() as stack:
        stack.enter_context(
            temporary_settings(updates={PREFECT_SERVER_DATABASE_CONNECTION_URL: database_url})
        )
        server = SubprocessASGIServer(port=free_port())
        # Code that would start an ephemeral server of its own finds this one instead.
        previous_default = SubprocessASGIServer._instances.get(None)
        SubprocessASGIServer._instances[None] = server
        server.start(timeout=startup_timeout)
        try:
            stack.enter_context(temporary_settings(updates={PREFECT_API_URL: server.api_url}))
            # Threads whose context was copied before this point see these settings too.
            stack.enter_context(
                prefect.context._temporary_global_settings_context(
                    prefect.context.get_settings_context()
                )
            )
            yield server.api_url

            async def drain_workers() -> None:
                try:
                    drained = APILogWorker.instance().drain()
                    if inspect.isawaitable(drained):
                        await drained
                except RuntimeError:
                    pass  # the log worker never started
                drained_events = EventsWorker.drain_all()
                if inspect.isawaitable(drained_events):
                    await drained_events

            run_coro_as_sync(drain_workers())
        finally:
            server.stop()
            if previous_default is None:
                SubprocessASGIServer._instances.pop(None, None)
            else:
                SubprocessASGIServer._instances[None] = previous_default
