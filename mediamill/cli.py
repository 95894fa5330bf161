"""The ``mediamill`` command line.

Heavy imports (Prefect, pyvips) happen inside the commands that run flows, so commands
that only read the catalog answer in well under a second.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.console import Console
from rich.table import Table

from mediamill.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

app = typer.Typer(
    name="mediamill",
    help="Media pipeline for commerce: validate, dedupe, optimise and publish uploads.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
media_app = typer.Typer(help="Read the media catalog.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the catalog database.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
server_app = typer.Typer(help="The local Prefect server that runs report to.", no_args_is_help=True)
app.add_typer(media_app, name="media")
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(server_app, name="server")

console = Console()
errors = Console(stderr=True)
log = logging.getLogger("mediamill")

WorkspaceOption = Annotated[str, typer.Option("--workspace", "-w", help="Workspace slug.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
UserOption = Annotated[str | None, typer.Option("--user", "-u", help="Who uploads.")]
EntityOption = Annotated[
    str | None, typer.Option("--entity", "-e", help="Attach to an entity, as TYPE:ID.")
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _settings() -> Settings:
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    try:
        return get_settings()
    except ValidationError as error:
        problems = "; ".join(
            f"MEDIAMILL_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in error.errors()
        )
        raise _fail(f"invalid configuration: {problems}") from error
    except SettingsError as error:
        # pydantic-settings names the field in its message, e.g. "storage_options".
        field = str(error).split('"')[1] if '"' in str(error) else "setting"
        message = f"invalid configuration: MEDIAMILL_{field.upper()} is not valid JSON"
        raise _fail(message) from error


@contextmanager
def _catalog(settings: Settings, *, migrate_embedded: bool = False) -> Iterator[Session]:
    """A session on a migrated catalog; the embedded SQLite one is upgraded on first use."""
    from mediamill.catalog import migrate
    from mediamill.catalog.engine import make_engine, make_session_factory

    engine = make_engine(settings.resolved_database_url)
    try:
        if not migrate.is_current(engine):
            if migrate_embedded and engine.dialect.name == "sqlite":
                migrate.upgrade(engine)
            else:
                raise _fail("the catalog schema is not current: run `mediamill db upgrade`")
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def _url_for(settings: Settings) -> Callable[[str], str]:
    from mediamill.storage.factory import open_store

    return open_store(settings).url


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def _media_table(records: Sequence[dict[str, Any]], title: str) -> Table:
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


def _records(settings: Settings, media_ids: Sequence[str | None]) -> list[dict[str, Any]]:
    """Catalog records for media ids, in the order given."""
    from mediamill.catalog import repository as repo
    from mediamill.catalog.views import media_record

    wanted = [uuid.UUID(m) for m in media_ids if m]
    url_for = _url_for(settings)
    with _catalog(settings) as session:
        return [media_record(m, url_for) for m in repo.get_many_media(session, wanted)]


def _start_prefect(settings: Settings) -> None:
    from mediamill.deployments.local_server import configure_prefect_environment

    with console.status("Starting the local Prefect server (once; reused by later runs)"):
        configure_prefect_environment(settings, start=True)


@contextmanager
def _progress_bar(label: str, enabled: bool) -> Iterator[None]:
    """A rich progress bar fed by the flow's progress listener."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from mediamill.flows import progress as flow_progress

    if not enabled:
        yield
        return
    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    )
    task_id = bar.add_task(label, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task_id, completed=done, total=total)

    flow_progress.set_listener(update)
    try:
        with bar:
            yield
    finally:
        flow_progress.set_listener(None)


def _summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"Ingest summary: workspace {summary['workspace']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for label, key in (
        ("assets", "total"),
        ("ingested", "ingested"),
        ("duplicates (blob reused)", "duplicates"),
        ("unchanged (already ingested)", "unchanged"),
        ("failed", "failed"),
        ("waiting on another run", "waiting"),
    ):
        table.add_row(label, str(summary[key]))
    table.add_row("seconds", f"{summary['seconds']:.2f}")
    table.add_row("assets per second", f"{summary['throughput']:.2f}")
    return table


def _failures_table(failures: Sequence[dict[str, str]]) -> Table:
    table = Table(title="Failed assets")
    for column in ("source", "code", "message"):
        table.add_column(column, overflow="fold")
    for failure in failures:
        table.add_row(failure["source"], failure["code"], failure["message"])
    return table


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files to upload.")],
    workspace: WorkspaceOption,
    user: UserOption = None,
    entity: EntityOption = None,
    alt: Annotated[str | None, typer.Option(help="Alt text for every file.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Upload files: one media record (and one flow run) per file, even for duplicates."""
    settings = _settings()
    _check_entity(entity)
    with _catalog(settings, migrate_embedded=True):
        pass
    _start_prefect(settings)
    from mediamill.flows.delivery import wait_for_delivery
    from mediamill.flows.ingest import ingest_media

    media_ids: list[str | None] = []
    missing = 0
    for path in paths:
        if not path.is_file():
            errors.print(f"[red]error:[/red] {path}: no such file")
            missing += 1
            media_ids.append(None)
            continue
        result = ingest_media(str(path), workspace, user=user, entity=entity, alt=alt)
        media_ids.extend(cast("list[str | None]", result["media_ids"]))
    wait_for_delivery()
    found = iter(_records(settings, media_ids))
    records = [
        next(found) if media_id else _unreadable_record(path, workspace)
        for path, media_id in zip(paths, media_ids, strict=True)
    ]
    if as_json:
        _print_json(records)
    else:
        console.print(_media_table(records, f"Ingested into {workspace}"))
    if missing or any(r["status"] == "failed" for r in records):
        raise typer.Exit(1)


def _unreadable_record(path: Path, workspace: str) -> dict[str, Any]:
    """The JSON of an input that never became an upload: same keys, no catalog row."""
    from mediamill.tasks.filenames import display_filename

    return {
        "id": None,
        "workspace": workspace,
        "media_type": None,
        "status": "failed",
        "error": {"code": "not_found", "message": f"{path}: no such file"},
        "filename": display_filename(str(path)),
        "sha256": None,
        "size": None,
        "mime_type": None,
        "width": None,
        "height": None,
        "placeholder": None,
        "variants": [],
    }


def _check_entity(entity: str | None) -> None:
    if entity is None:
        return
    from mediamill.tasks.sources import EntityRef

    try:
        EntityRef.parse(entity)
    except ValueError as error:
        raise _fail(str(error)) from error


@app.command()
def backfill(
    source: Annotated[
        Path, typer.Argument(help="A directory, or a manifest CSV (path,entity,alt,user).")
    ],
    workspace: WorkspaceOption,
    user: UserOption = None,
    entity: EntityOption = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Assets per task.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Pixel worker processes.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest many files in batches; a rerun adds nothing and finishes what is missing."""
    settings = _settings()
    _check_entity(entity)
    if not source.exists():
        raise _fail(f"{source}: no such file or directory")
    with _catalog(settings, migrate_embedded=True):
        pass
    summary = run_backfill(
        settings, source, workspace, user, entity, batch_size, workers, show_progress=not as_json
    )
    if as_json:
        _print_json(summary)
    else:
        console.print(_summary_table(summary))
        if summary["failures"]:
            console.print(_failures_table(summary["failures"]))
    if summary["failed"]:
        raise typer.Exit(1)


def run_backfill(
    settings: Settings,
    source: Path,
    workspace: str,
    user: str | None,
    entity: str | None,
    batch_size: int | None,
    workers: int | None,
    show_progress: bool,
) -> dict[str, Any]:
    """Run the backfill flow in this process, against the configured or local Prefect API."""
    _start_prefect(settings)
    from mediamill.flows.delivery import wait_for_delivery
    from mediamill.flows.ingest import backfill as backfill_flow
    from mediamill.tasks.sources import SourceError

    try:
        with _progress_bar(f"backfill {source.name}", show_progress):
            return backfill_flow(
                str(source),
                workspace,
                user=user,
                entity=entity,
                batch_size=batch_size,
                workers=workers,
            )
    except SourceError as error:
        raise _fail(str(error)) from error
    finally:
        wait_for_delivery()


@media_app.command("list")
def media_list(
    workspace: WorkspaceOption,
    media_type: Annotated[
        str | None, typer.Option("--type", "-t", help="image, video, model or document.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Recent media of a workspace, newest first."""
    from mediamill.catalog import repository as repo
    from mediamill.catalog.models import MediaType
    from mediamill.catalog.views import media_record

    settings = _settings()
    try:
        wanted_type = MediaType(media_type) if media_type else None
    except ValueError as error:
        raise _fail(f"unknown media type {media_type!r}") from error
    url_for = _url_for(settings)
    with _catalog(settings) as session:
        found = repo.find_workspace(session, workspace)
        rows = (
            repo.recent_media(session, found.id, media_type=wanted_type, limit=limit)
            if found
            else []
        )
        records = [media_record(m, url_for) for m in rows]
    if as_json:
        _print_json(records)
    else:
        console.print(_media_table(records, f"Recent media in {workspace}"))


@media_app.command("show")
def media_show(
    media_id: Annotated[str, typer.Argument(help="A media id, as printed by ingest or list.")],
    workspace: Annotated[
        str | None, typer.Option("--workspace", "-w", help="Only look in this workspace.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """One media record with its variants and their URLs."""
    from mediamill.catalog import repository as repo
    from mediamill.catalog.views import media_record

    settings = _settings()
    try:
        wanted = uuid.UUID(media_id)
    except ValueError as error:
        raise _fail(f"{media_id!r} is not a media id") from error
    url_for = _url_for(settings)
    with _catalog(settings) as session:
        scope = None
        if workspace is not None:
            found = repo.find_workspace(session, workspace)
            scope = found.id if found else -1
        media = repo.get_media(session, wanted, scope)
        record = media_record(media, url_for) if media else None
    if record is None:
        raise _fail(f"no media {media_id}", code=1)
    if as_json:
        _print_json(record)
        return
    console.print(_media_table([record], f"Media {media_id}"))
    if record["metadata"]:
        metadata = Table(title="Metadata")
        metadata.add_column("key")
        metadata.add_column("value", overflow="fold")
        for key, value in record["metadata"].items():
            metadata.add_row(
                key, json.dumps(value) if isinstance(value, list | dict) else str(value)
            )
        console.print(metadata)
    variants = Table(title="Variants")
    for column in ("name", "format", "size", "dimensions", "url"):
        variants.add_column(column, overflow="fold")
    for variant in record["variants"]:
        variants.add_row(
            variant["name"],
            variant["format"],
            f"{variant['size']:,}",
            f"{variant['width']}x{variant['height']}" if variant["width"] else "",
            variant["url"],
        )
    console.print(variants)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply catalog migrations (Alembic) up to REVISION."""
    from mediamill.catalog import migrate
    from mediamill.catalog.engine import make_engine

    settings = _settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        migrate.upgrade(engine, revision)
        console.print(f"catalog at revision {migrate.current_revision(engine)}")
    finally:
        engine.dispose()


@config_app.command("check")
def config_check() -> None:
    """Validate the settings, the store and the catalog; exit non-zero when anything is wrong."""
    from mediamill.config_check import run_checks

    settings = _settings()
    table = Table(title="mediamill configuration")
    for column in ("setting", "value", "check"):
        table.add_column(column, overflow="fold")
    problems = []
    for row in run_checks(settings):
        if not row.ok:
            problems.append(f"{row.name}: {row.problem}")
        mark = "[green]ok[/green]" if row.ok else "[red]problem[/red]"
        table.add_row(row.name, row.value, mark if row.checked else "")
    console.print(table)
    for problem in problems:
        errors.print(f"[red]error:[/red] {problem}", soft_wrap=True)
    if problems:
        raise typer.Exit(1)


@server_app.command("start")
def server_start() -> None:
    """Start the local Prefect server (UI and API) in the background."""
    from mediamill.deployments.local_server import start_server

    info = start_server(_settings())
    console.print(f"Prefect server running at {info.ui_url} (pid {info.pid})")


@server_app.command("stop")
def server_stop() -> None:
    """Stop the local Prefect server."""
    from mediamill.deployments.local_server import stop_server

    stopped = stop_server(_settings())
    console.print("Prefect server stopped" if stopped else "no local Prefect server was running")


@server_app.command("status")
def server_status() -> None:
    """Say whether the local Prefect server is running, and where."""
    from mediamill.deployments.local_server import running_server

    info = running_server(_settings())
    if info is None:
        console.print("no local Prefect server is running")
        raise typer.Exit(1)
    console.print(f"Prefect server running at {info.ui_url} (pid {info.pid})")


@app.command()
def serve() -> None:
    """Prefect server, every deployment in prefect.yaml and a worker, until Ctrl-C."""
    from mediamill.deployments.serve import ServeError
    from mediamill.deployments.serve import serve as run_serve

    settings = _settings()
    with _catalog(settings, migrate_embedded=True):
        pass
    try:
        code = run_serve(settings, console.print)
    except ServeError as error:
        raise _fail(str(error)) from error
    raise typer.Exit(code)


@app.command()
def demo(
    photos: Annotated[int, typer.Option(min=1, max=500, help="Generated photos.")] = 12,
    workspace: Annotated[str, typer.Option("--workspace", "-w")] = "demo",
) -> None:
    """Generate sample media, backfill them, print the summary and write an HTML gallery."""
    from mediamill.demo import run_demo

    settings = _settings()
    with _catalog(settings, migrate_embedded=True):
        pass
    run_demo(settings, console, photos=photos, workspace=workspace, backfill=run_backfill)


if __name__ == "__main__":
    app()
