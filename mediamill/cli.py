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

    from mediamill.catalog.lifecycle import Entity

app = typer.Typer(
    name="mediamill",
    help="Media pipeline for commerce: validate, dedupe, optimise and publish uploads.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
media_app = typer.Typer(help="Read and manage the media catalog.", no_args_is_help=True)
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


# -- quotas: usage per workspace and user, setting a workspace quota ------------------------

quota_app = typer.Typer(help="Workspace storage quotas.", no_args_is_help=True)
app.add_typer(quota_app, name="quota")


@app.command("usage")
def usage_command(
    workspace: WorkspaceOption,
    by_user: Annotated[bool, typer.Option("--by-user", help="Also one row per uploader.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Bytes and media a workspace stores, logical and after dedupe, against its quota."""
    from mediamill.catalog.quota import quota_state
    from mediamill.catalog.usage import as_records, usage

    settings = _settings()
    with _catalog(settings) as session:
        found = as_records(usage(session, workspace))
        users = as_records(usage(session, workspace, by_user=True)) if by_user else None
    if not found:
        raise _fail(f"no workspace {workspace!r}", code=1)
    summary = found[0]
    summary["quota_state"] = quota_state(summary["physical_bytes"], summary["quota_bytes"]).value
    if users is not None:
        summary["users"] = users
    if as_json:
        _print_json(summary)
        return
    console.print(_usage_table(summary))
    if users is not None:
        console.print(_users_table(users))


def _usage_table(summary: dict[str, Any]) -> Table:
    from mediamill.catalog.quota import format_size

    quota = summary["quota_bytes"]
    used = summary["physical_bytes"]
    share = f" ({100 * used / quota:.1f}% used)" if quota else ""
    table = Table(title=f"Usage of {summary['workspace']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("quota", f"{format_size(quota)}{share}: {summary['quota_state']}")
    for label, prefix in (("physical (deduped)", "physical"), ("logical (as owned)", "logical")):
        originals = format_size(summary[f"{prefix}_original_bytes"])
        variants = format_size(summary[f"{prefix}_variant_bytes"])
        total = format_size(summary[f"{prefix}_bytes"])
        table.add_row(label, f"{total} = {originals} originals + {variants} variants")
    table.add_row("media", str(summary["media"]))
    for column in ("images", "videos", "models", "documents"):
        table.add_row(f"  {column}", str(summary[column]))
    table.add_row("blobs", str(summary["blobs"]))
    table.add_row("failed uploads", str(summary["failed"]))
    return table


def _users_table(users: Sequence[dict[str, Any]]) -> Table:
    from mediamill.catalog.quota import format_size

    table = Table(title="Usage by uploader")
    for column in ("user", "media", "blobs", "logical", "physical"):
        table.add_column(column, justify="left" if column == "user" else "right")
    for user in users:
        table.add_row(
            user["user"] or "(unknown)",
            str(user["media"]),
            str(user["blobs"]),
            format_size(user["logical_bytes"]),
            format_size(user["physical_bytes"]),
        )
    return table


@quota_app.command("set")
def quota_set(
    workspace: Annotated[str, typer.Argument(help="Workspace slug.")],
    size: Annotated[str, typer.Argument(help="Bytes, a size such as 5GB or 500MiB, or none.")],
) -> None:
    """Set a workspace's quota (`none` lifts it); uploads that would not fit then fail."""
    from mediamill.catalog.quota import format_size, parse_size, set_quota

    settings = _settings()
    try:
        quota = parse_size(size)
    except ValueError as error:
        raise _fail(str(error)) from error
    with _catalog(settings, migrate_embedded=True) as session:
        set_quota(session, workspace, quota)
        session.commit()
    exact = f" ({quota:,} bytes)" if quota is not None else ""
    console.print(f"quota of {workspace}: {format_size(quota)}{exact}")


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


check_app = typer.Typer(help="Check the catalog's data.", no_args_is_help=True)
app.add_typer(check_app, name="check")


@check_app.command("catalog")
def check_catalog(
    workspace: Annotated[
        str | None, typer.Option("--workspace", "-w", help="Only this workspace.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run the catalog health suite; exit 1 when an expectation fails.

    Runs the Great Expectations suite in this process, without Prefect: the daily
    `catalog-health` flow runs the same suite and publishes it as an artifact.
    """
    from mediamill.catalog.errors import NotFound
    from mediamill.catalog.health import check_catalog as run_suite
    from mediamill.storage.keys import workspace_prefix
    from mediamill.tasks.recipes import Recipe

    settings = _settings()
    with _catalog(settings) as session:
        try:
            report = run_suite(
                session.connection(),
                planned_variants=Recipe.from_settings(settings).planned_variants,
                workspace_prefix=workspace_prefix,
                workspace=workspace,
            )
        except NotFound as error:
            raise _fail(str(error)) from error
    if as_json:
        _print_json(report.as_dict())
    else:
        console.print(_health_table(report.as_dict()))
    if not report.healthy:
        raise typer.Exit(1)


def _health_table(report: dict[str, Any]) -> Table:
    scope = report["workspace"] or "every workspace"
    table = Table(title=f"Catalog health: {scope}")
    for column in ("expectation", "table", "result", "checked", "unexpected", "sample"):
        table.add_column(column, overflow="fold")
    for row in report["expectations"]:
        table.add_row(
            row["expectation"],
            row["table"],
            "[green]ok[/green]" if row["success"] else "[red]failed[/red]",
            str(row["checked"]),
            str(row["unexpected"]),
            "\n".join(row["sample"]),
        )
    return table


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


# -- media lifecycle: attachments, delete and restore, entity cleanup, sweeps --------------

entity_app = typer.Typer(
    help="Media attached to entities of the host platform.", no_args_is_help=True
)
sweep_app = typer.Typer(
    help="Orphan sweep and purge (deployments run them on a schedule).", no_args_is_help=True
)
app.add_typer(entity_app, name="entity")
app.add_typer(sweep_app, name="sweep")

MediaIdArgument = Annotated[str, typer.Argument(help="A media id, as printed by ingest or list.")]
EntityArgument = Annotated[str, typer.Argument(help="The entity, as TYPE:ID.")]
RequiredEntityOption = Annotated[
    str, typer.Option("--entity", "-e", help="The entity, as TYPE:ID.")
]
ScopeOption = Annotated[
    str | None, typer.Option("--workspace", "-w", help="Only act in this workspace.")
]
ActorOption = Annotated[
    str | None, typer.Option("--user", "-u", help="Who acts, for the audit trail.")
]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Report the plan; change nothing.")]


def _entity(text: str) -> Entity:
    from mediamill.catalog.lifecycle import Entity
    from mediamill.tasks.sources import EntityRef

    try:
        ref = EntityRef.parse(text)
    except ValueError as error:
        raise _fail(str(error)) from error
    return Entity(ref.type, ref.id)


def _media_uuid(media_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(media_id)
    except ValueError as error:
        raise _fail(f"{media_id!r} is not a media id") from error


@contextmanager
def _writing(settings: Settings) -> Iterator[Session]:
    """One write transaction that commits when the block ends without an error."""
    from mediamill.catalog.engine import begin_immediate

    with _catalog(settings) as session, session.begin():
        begin_immediate(session)
        yield session


def _scope_id(session: Session, workspace: str | None) -> int | None:
    """The workspace to look in; an unknown one matches nothing rather than everything."""
    from mediamill.catalog import repository as repo

    if workspace is None:
        return None
    found = repo.find_workspace(session, workspace)
    return found.id if found else -1


@contextmanager
def _refusals() -> Iterator[None]:
    """Unknown ids (another workspace's included) and forbidden changes: exit 1, clearly."""
    from mediamill.catalog.errors import NotFound
    from mediamill.catalog.lifecycle import Refused

    try:
        yield
    except (NotFound, Refused) as error:
        raise _fail(str(error), code=1) from error


@app.command()
def attach(
    media_id: MediaIdArgument,
    entity: RequiredEntityOption,
    workspace: ScopeOption = None,
    user: ActorOption = None,
) -> None:
    """Attach a media to an entity, at the end of its gallery; attaching twice is a no-op."""
    from mediamill.catalog import lifecycle as life

    settings = _settings()
    target, wanted = _entity(entity), _media_uuid(media_id)
    with _refusals(), _writing(settings) as session:
        media = life.lock_media(session, wanted, _scope_id(session, workspace))
        attachment, created = life.attach(session, media, target, user)
        position = attachment.position
    verb = "attached" if created else "already attached"
    console.print(f"media {wanted} {verb} to {target} at position {position}")


@app.command()
def detach(
    media_id: MediaIdArgument,
    entity: RequiredEntityOption,
    workspace: ScopeOption = None,
    user: ActorOption = None,
) -> None:
    """Detach a media from an entity; the media itself stays."""
    from mediamill.catalog import lifecycle as life

    settings = _settings()
    target, wanted = _entity(entity), _media_uuid(media_id)
    with _refusals(), _writing(settings) as session:
        media = life.lock_media(session, wanted, _scope_id(session, workspace))
        detached = life.detach(session, media, target, user)
    if not detached:
        raise _fail(f"media {wanted} is not attached to {target}", code=1)
    console.print(f"media {wanted} detached from {target}")


@entity_app.command("media")
def entity_media(
    entity: EntityArgument, workspace: WorkspaceOption, as_json: JsonOption = False
) -> None:
    """The entity's media in gallery order (deleted media left out)."""
    from mediamill.catalog import lifecycle as life
    from mediamill.catalog import repository as repo
    from mediamill.catalog.views import media_record

    settings = _settings()
    target = _entity(entity)
    url_for = _url_for(settings)
    with _catalog(settings) as session:
        found = repo.find_workspace(session, workspace)
        rows = life.entity_media(session, found.id, target) if found else []
        records = [media_record(m, url_for) for m in rows]
    if as_json:
        _print_json(records)
    else:
        console.print(_media_table(records, f"Media of {target} in {workspace}"))


def _report_tables(report: dict[str, Any], title: str) -> list[Table]:
    counts = Table(title=f"{'Dry run: ' if report['dry_run'] else ''}{title}")
    for column in ("action", "planned", "done", "skipped"):
        counts.add_column(column, justify="left" if column == "action" else "right")
    for action, per_status in sorted(report["counts"].items()):
        counts.add_row(action, *(str(per_status.get(s, 0)) for s in ("planned", "done", "skipped")))
    steps = Table(title="Steps")
    for column in ("action", "status", "workspace", "media or object", "reason"):
        steps.add_column(column, overflow="fold")
    for step in report["actions"]:
        target = step["media_id"] or step["subject"] or ""
        steps.add_row(
            step["action"], step["status"], step["workspace"], target, step["reason"] or ""
        )
    return [counts, steps] if report["actions"] else [counts]


def _run_lifecycle_flow(settings: Settings, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a lifecycle flow in this process, against the configured or local Prefect API."""
    with _catalog(settings, migrate_embedded=True):
        pass
    _start_prefect(settings)
    from mediamill.flows.delivery import wait_for_delivery

    try:
        return run()
    finally:
        wait_for_delivery()


def _print_report(report: dict[str, Any], title: str, as_json: bool) -> None:
    if as_json:
        _print_json(report)
        return
    for table in _report_tables(report, title):
        console.print(table)


@entity_app.command("delete")
def entity_delete(
    entity: EntityArgument,
    workspace: WorkspaceOption,
    user: ActorOption = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """The entity was deleted: detach its media, soft-delete those uploaded for it alone."""
    settings = _settings()
    target = _entity(entity)

    def run() -> dict[str, Any]:
        from mediamill.flows.lifecycle import entity_cleanup

        return entity_cleanup(workspace, str(target), actor=user, dry_run=dry_run)

    report = _run_lifecycle_flow(settings, run)
    _print_report(report, f"Entity {target} deleted in {workspace}", as_json)


@media_app.command("delete")
def media_delete(
    media_id: MediaIdArgument,
    workspace: ScopeOption = None,
    user: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Soft-delete a media: hidden at once, restorable for MEDIAMILL_RETENTION_DAYS."""
    from datetime import timedelta

    from mediamill.catalog import lifecycle as life
    from mediamill.catalog.models import MediaStatus
    from mediamill.catalog.repository import utcnow
    from mediamill.catalog.views import media_record

    settings = _settings()
    wanted = _media_uuid(media_id)
    url_for = _url_for(settings)
    with _refusals(), _writing(settings) as session:
        media = life.lock_media(session, wanted, _scope_id(session, workspace))
        if media.status == MediaStatus.purged:
            raise life.Refused(f"media {wanted} was purged")
        deleted = life.soft_delete(session, media, actor=user, now=utcnow(), reason="user")
        until = life.restorable_until(media, timedelta(days=settings.retention_days))
        record = media_record(media, url_for)
    if as_json:
        _print_json(record)
        return
    state = "deleted" if deleted else "already deleted"
    console.print(f"media {wanted} {state}; restorable until {until:%Y-%m-%d %H:%M} UTC")


@media_app.command("restore")
def media_restore(
    media_id: MediaIdArgument,
    workspace: ScopeOption = None,
    user: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Undo a soft delete, within MEDIAMILL_RETENTION_DAYS of it."""
    from datetime import timedelta

    from mediamill.catalog import lifecycle as life
    from mediamill.catalog.repository import utcnow
    from mediamill.catalog.views import media_record

    settings = _settings()
    wanted = _media_uuid(media_id)
    url_for = _url_for(settings)
    retention = timedelta(days=settings.retention_days)
    with _refusals(), _writing(settings) as session:
        media = life.lock_media(session, wanted, _scope_id(session, workspace))
        status = life.restore(session, media, actor=user, now=utcnow(), retention=retention)
        record = media_record(media, url_for)
    if as_json:
        _print_json(record)
    else:
        console.print(f"media {wanted} restored ({status.value})")


@sweep_app.command("orphans")
def sweep_orphans(
    workspace: ScopeOption = None, dry_run: DryRunOption = False, as_json: JsonOption = False
) -> None:
    """Expire never-attached uploads, delete stray objects, flag rows whose objects are gone."""
    settings = _settings()

    def run() -> dict[str, Any]:
        from mediamill.flows.sweeps import orphan_sweep

        return orphan_sweep(workspace, dry_run=dry_run)

    report = _run_lifecycle_flow(settings, run)
    _print_report(report, f"Orphan sweep of {workspace or 'every workspace'}", as_json)


@sweep_app.command("purge")
def sweep_purge(
    workspace: ScopeOption = None, dry_run: DryRunOption = False, as_json: JsonOption = False
) -> None:
    """Purge media deleted longer ago than the retention period, and their unused objects."""
    settings = _settings()

    def run() -> dict[str, Any]:
        from mediamill.flows.sweeps import purge

        return purge(workspace, dry_run=dry_run)

    report = _run_lifecycle_flow(settings, run)
    _print_report(report, f"Purge of {workspace or 'every workspace'}", as_json)


if __name__ == "__main__":
    app()
