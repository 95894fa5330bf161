"""What every request needs, built once per app at start-up: catalog, store, dispatcher."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from mediamill.api.dispatch import Dispatcher, Launcher, make_dispatcher
from mediamill.api.tickets import server_key
from mediamill.catalog import migrate
from mediamill.catalog.engine import (
    begin_immediate,
    make_autocommit_session_factory,
    make_engine,
    make_read_session_factory,
    make_session_factory,
)
from mediamill.catalog.errors import CatalogNotMigrated
from mediamill.catalog.writers import WriterTurns
from mediamill.settings import Settings
from mediamill.storage.factory import open_store
from mediamill.storage.keys import url_path
from mediamill.storage.store import ObjectStore


@dataclass
class Services:
    """The app's long-lived collaborators; engines and stores are built here, at the edge."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]
    store: ObjectStore
    dispatcher: Dispatcher
    launcher: Launcher
    ticket_key: bytes
    # Without a CDN, a local store's objects are served by this API's ``/files/``: a
    # browser showing the picker cannot load the store's own file:// URLs.
    files_base: str | None = None
    # SQLite's writers (this process's and the other API processes') take turns here
    # instead of polling for its lock; None on PostgreSQL.
    writer_turns: WriterTurns | None = None
    # Deliveries whose run this process is still starting (the launcher may queue them for
    # long under a raised backlog): not to be started a second time by its own redispatch.
    starting: set[int] = field(default_factory=set)
    # PostgreSQL's autocommit sessions, for writes of one statement; None on SQLite.
    single_statements: sessionmaker[Session] | None = None

    @classmethod
    def open(cls, settings: Settings, dispatcher: Dispatcher | None = None) -> Services:
        """Connect to a migrated catalog (the embedded SQLite one is upgraded on first use)."""
        engine = make_engine(settings.resolved_database_url)
        if not migrate.is_current(engine):
            if engine.dialect.name != "sqlite":
                engine.dispose()
                raise CatalogNotMigrated(
                    "the catalog schema is not current: run `mediamill db upgrade`"
                )
            migrate.upgrade(engine)
        store = open_store(settings)
        local = store.root_url.startswith(("file://", "memory://"))
        files_base = None
        if settings.cdn_base_url is None and local:
            files_base = f"{settings.api_public_url.rstrip('/')}/files"
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            read_sessions=make_read_session_factory(engine),
            store=store,
            dispatcher=dispatcher or make_dispatcher(settings),
            launcher=Launcher(
                wait_seconds=settings.dispatch_wait_ms / 1000,
                max_backlog=settings.dispatch_backlog,
                shutdown_seconds=settings.dispatch_shutdown_seconds,
            ),
            ticket_key=server_key(settings),
            files_base=files_base,
            writer_turns=WriterTurns.for_engine(engine),
            single_statements=make_autocommit_session_factory(engine),
        )

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for queries only (see `make_read_session_factory`)."""
        with self.read_sessions() as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A write transaction, committed on success; it queues for SQLite's write lock."""
        with self.writer_turns or nullcontext(), self.sessions.begin() as session:
            begin_immediate(session)
            yield session

    @contextmanager
    def writing_one_statement(self) -> Iterator[Session]:
        """A session for a write of one statement, which commits as it runs.

        On PostgreSQL the statement is its own transaction: one round trip instead of three.
        Elsewhere it is `writing`'s transaction, taking its turn for SQLite's write lock.
        """
        if self.single_statements is None:
            with self.writing() as session:
                yield session
            return
        with self.single_statements() as session:
            yield session

    def url_for(self, key: str) -> str:
        """The URL a client fetches a published object from."""
        if self.files_base is not None:
            return f"{self.files_base}/{url_path(key)}"
        return self.store.url(key)

    def close(self) -> None:
        self.launcher.close()
        self.dispatcher.close()
        self.engine.dispose()
        if self.writer_turns is not None:
            self.writer_turns.close()


def services_of(app_state: Any) -> Services:
    """The Services stored on ``app.state`` at start-up."""
    services: Services = app_state.services
    return services
