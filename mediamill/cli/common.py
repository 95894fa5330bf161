"""What the command modules share: consoles, settings, catalog sessions, JSON and tables.

Every import beyond typer, rich and the settings happens inside the helper that needs it,
so importing the command line stays light.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from mediamill.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

console = Console()
errors = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print an error to stderr; the caller raises the returned exit (2: bad usage)."""
    errors.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def load_settings() -> Settings:
    """The settings, or exit 2 naming the MEDIAMILL_ variable that is wrong."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    try:
        return get_settings()
    except ValidationError as error:
        problems = "; ".join(
            f"MEDIAMILL_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in error.errors()
        )
        raise fail(f"invalid configuration: {problems}") from error
    except SettingsError as error:
        # pydantic-settings names the field in its message, e.g. "storage_options".
        field = str(error).split('"')[1] if '"' in str(error) else "setting"
        message = f"invalid configuration: MEDIAMILL_{field.upper()} is not valid JSON"
        raise fail(message) from error


@contextmanager
def open_catalog(settings: Settings, *, migrate_embedded: bool = False) -> Iterator[Session]:
    """A session on a migrated catalog; the embedded SQLite one is upgraded on first use."""
    from mediamill.catalog import migrate
    from mediamill.catalog.engine import make_engine, make_session_factory

    engine = make_engine(settings.resolved_database_url)
    try:
        if not migrate.is_current(engine):
            if migrate_embedded and engine.dialect.name == "sqlite":
                migrate.upgrade(engine)
            else:
                raise fail("the catalog schema is not current: run `mediamill db upgrade`")
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


@contextmanager
def writing(settings: Settings) -> Iterator[Session]:
    """One write transaction that commits when the block ends without an error."""
    from mediamill.catalog.engine import begin_immediate

    with open_catalog(settings) as session, session.begin():
        begin_immediate(session)
        yield session


@contextmanager
def refusals() -> Iterator[None]:
    """Unknown ids (another workspace's included) and forbidden changes: exit 1, clearly."""
    from mediamill.catalog.errors import NotFound
    from mediamill.catalog.lifecycle import Refused

    try:
        yield
    except (NotFound, Refused) as error:
        raise fail(str(error), code=1) from error


def scope_id(session: Session, workspace: str | None) -> int | None:
    """The workspace to look in; an unknown one matches nothing rather than everything."""
    from mediamill.catalog import repository as repo

    if workspace is None:
        return None
    found = repo.find_workspace(session, workspace)
    return found.id if found else -1


def media_uuid(media_id: str) -> uuid.UUID:
    """A media id from the command line, or exit 2 when it is not one."""
    try:
        return uuid.UUID(media_id)
    except ValueError as error:
        raise fail(f"{media_id!r} is not a media id") from error


def url_maker(settings: Settings) -> Callable[[str], str]:
    """The configured store's object key to URL function, for media records."""
    from mediamill.storage.factory import open_store

    return open_store(settings).url


def start_prefect(settings: Settings) -> None:
    """Before a flow runs: point Prefect at its API, starting the local server if needed."""
    from mediamill.deployments.local_server import configure_prefect_environment

    with console.status("Starting the local Prefect server (once; reused by later runs)"):
        configure_prefect_environment(settings, start=True)


@contextmanager
def loading_flows() -> Iterator[None]:
    """Import the flow stack with the cyclic collector paused, then freeze what it loaded.

    Prefect, SQLAlchemy and the catalog load objects that live as long as the process; the
    collector would scan them again and again while they load, and on every full collection
    of the run that follows. Frozen (``gc.freeze``), they are left out of both.
    """
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


# Prefect's own switches for flow-run heartbeats (the second is its older name).
HEARTBEAT_VARIABLES = ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY")


@contextmanager
def attended_runs() -> Iterator[None]:
    """Flow runs made in this command's own process send no Prefect heartbeats.

    Heartbeats let Prefect mark a run crashed when an unattended worker process dies; a
    command reports its own crash. Prefect's heartbeat thread also holds each run's exit for
    up to a second. Setting ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` keeps them on.
    """
    if any(name in os.environ for name in HEARTBEAT_VARIABLES):
        yield
        return
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def print_json(value: Any) -> None:
    """What ``--json`` prints: indented, with dates and ids as strings."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def media_table(records: Sequence[dict[str, Any]], title: str) -> Table:
    """Media records as a table: the non-JSON output of ingest, media and entity commands."""
    table = Table(title=title)
    for column in ("id", "type", "status", "filename", "size", "dimensions", "variants", "error"):
        table.add_column(column, overflow="fold")
    for record in records:
        dimensions = f"{record['width']}x{record['height']}" if record["width"] else ""
        error = record["error"]
        table.add_row(
            record["id"],
            record["media_type"] or "",
            record["status"],
            record["filename"],
            f"{record['size']:,}" if record["size"] is not None else "",
            dimensions,
            str(len(record["variants"])),
            f"{error['code']}: {error['message']}" if error else "",
        )
    return table
