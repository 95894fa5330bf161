"""What every pipeline task needs, built once at a flow's entry and handed down."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from mediamill.catalog import migrate
from mediamill.catalog.engine import begin_immediate, make_engine, make_session_factory
from mediamill.settings import Settings
from mediamill.storage.factory import open_store
from mediamill.storage.store import ObjectStore
from mediamill.tasks import standby
from mediamill.tasks.pixels import PixelLimits, PixelPool, RenderPool
from mediamill.tasks.recipes import Recipe

CLAIM_LEASE = timedelta(minutes=15)


def _open_pool(settings: Settings, workers: int | None, dask_address: str | None) -> RenderPool:
    if dask_address is None:
        size, limits = workers or settings.workers, PixelLimits.from_settings(settings)
        # Workers the command started before loading Prefect, if they fit this run.
        return standby.take(size, limits) or PixelPool(size, limits=limits)
    # Imported only here: distributed loads numpy, which the orchestrator otherwise never does.
    from mediamill.tasks.dask_pool import DaskPixelPool

    return DaskPixelPool(dask_address)


class PipelineContext:
    """Settings, catalog sessions, the object store and the pixel pool of one run.

    A plain class on purpose: Prefect walks dataclass task parameters looking for futures,
    and there is nothing to find in an engine or a process pool.
    """

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        store: ObjectStore,
        pool: RenderPool,
        recipe: Recipe | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.store = store
        self.pool = pool
        self.recipe = recipe or Recipe.from_settings(settings)
        self.lease = CLAIM_LEASE

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        workers: int | None = None,
        dask_address: str | None = None,
    ) -> PipelineContext:
        """Build engine, store and pool from settings: only at the edge of a run.

        Local pixel workers run each job under the settings' decode limits (wall clock,
        memory). With ``dask_address`` the pixel work runs on that Dask cluster instead of
        local processes (``workers`` and their limits are then the cluster's business).
        """
        engine = make_engine(settings.resolved_database_url)
        if not migrate.is_current(engine):
            # A deployment run on a catalog nobody upgraded fails here, saying what to do,
            # not on its first query with "no such table".
            engine.dispose()
            migrate.require_current(settings.resolved_database_url)
        store = open_store(settings)
        try:
            pool = _open_pool(settings, workers, dask_address)
        except BaseException:
            engine.dispose()
            raise
        return cls(settings, make_session_factory(engine), store, pool)

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A write transaction that holds the SQLite write lock from its first statement.

        Our transactions read, then write (is the blob there? claim it); on SQLite such a
        transaction must queue for the lock up front or fail when another writer commits.
        """
        with self.sessions.begin() as session:
            begin_immediate(session)
            yield session

    def close(self) -> None:
        self.pool.close()
        engine = self.sessions.kw.get("bind")
        if engine is not None:
            engine.dispose()
