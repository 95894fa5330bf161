"""``ingest`` and ``backfill``: files into the catalog, through the ingest flows."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.table import Table

from mediamill.cli.common import (
    attended_runs,
    console,
    errors,
    fail,
    load_settings,
    loading_flows,
    media_table,
    open_catalog,
    print_json,
    start_prefect,
    url_maker,
)
from mediamill.cli.options import JsonOption, WorkspaceOption
from mediamill.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# How long `ingest` waits for another run rendering the same content, and how often it looks.
SETTLE_TIMEOUT_S = 120.0
SETTLE_POLL_S = 0.25
IN_FLIGHT = ("pending", "processing")

UserOption = Annotated[str | None, typer.Option("--user", "-u", help="Who uploads.")]
EntityOption = Annotated[
    str | None, typer.Option("--entity", "-e", help="Attach to an entity, as TYPE:ID.")
]


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files to upload.")],
    workspace: WorkspaceOption,
    user: UserOption = None,
    entity: EntityOption = None,
    alt: Annotated[str | None, typer.Option(help="Alt text for every file.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Upload files: one media record (and one flow run) per file, even for duplicates."""
    settings = load_settings()
    _check_entity(entity)
    with open_catalog(settings, migrate_embedded=True):
        pass
    start_prefect(settings)
    with loading_flows():
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
        with attended_runs():
            result = ingest_media(str(path), workspace, user=user, entity=entity, alt=alt)
        media_ids.extend(cast("list[str | None]", result["media_ids"]))
    wait_for_delivery()
    found = iter(_settled_records(settings, media_ids))
    records = [
        next(found) if media_id else _unreadable_record(path, workspace)
        for path, media_id in zip(paths, media_ids, strict=True)
    ]
    if as_json:
        print_json(records)
    else:
        console.print(media_table(records, f"Ingested into {workspace}"))
    if missing or any(r["status"] == "failed" for r in records):
        raise typer.Exit(1)


def _settled_records(
    settings: Settings, media_ids: Sequence[str | None], timeout: float = SETTLE_TIMEOUT_S
) -> list[dict[str, Any]]:
    """Catalog records for media ids, in the order given, once none is in flight.

    A file whose content another run is rendering right now waits for that run: its media
    turns ready or failed when the other run commits, not when this one ends. After
    ``timeout`` the records are returned as they are.
    """
    from mediamill.catalog import repository as repo
    from mediamill.catalog.views import media_record

    wanted = [uuid.UUID(m) for m in media_ids if m]
    url_for = url_maker(settings)
    deadline = time.monotonic() + timeout
    with open_catalog(settings) as session:

        def read() -> list[dict[str, Any]]:
            session.expire_all()  # each look reads what other runs committed since
            records = [media_record(m, url_for) for m in repo.get_many_media(session, wanted)]
            session.rollback()  # end the read, so SQLite's snapshot moves on
            return records

        records = read()
        if any(r["status"] in IN_FLIGHT for r in records):
            with errors.status("Waiting for another run that is processing the same content"):
                while any(r["status"] in IN_FLIGHT for r in records):
                    if time.monotonic() >= deadline:
                        break
                    time.sleep(SETTLE_POLL_S)
                    records = read()
        return records


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
        raise fail(str(error)) from error


def backfill(
    source: Annotated[
        Path, typer.Argument(help="A directory, or a manifest CSV (path,entity,alt,user).")
    ],
    workspace: WorkspaceOption,
    user: UserOption = None,
    entity: EntityOption = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Assets per task.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Pixel worker processes.")] = None,
    dask: Annotated[
        str | None,
        typer.Option(
            "--dask",
            metavar="ADDRESS",
            help="Render on this Dask cluster (tcp://scheduler:8786) instead of local processes.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest many files in batches; a rerun adds nothing and finishes what is missing."""
    settings = load_settings()
    _check_entity(entity)
    if dask is not None and workers is not None:
        raise fail("--workers sizes the local pool; with --dask the cluster's workers render")
    if not source.exists():
        raise fail(f"{source}: no such file or directory")
    pool_size = workers or settings.workers
    with open_catalog(settings, migrate_embedded=True) as session:
        ahead = None
        if dask is None:
            ahead = _files_to_render_first(session, settings, source, workspace, pool_size)
    with nullcontext() if ahead is None else _pixel_standby(settings, pool_size, ahead):
        summary = run_backfill(
            settings,
            source,
            workspace,
            user,
            entity,
            batch_size,
            workers,
            show_progress=not as_json,
            dask_address=dask,
        )
    if as_json:
        print_json(summary)
    else:
        console.print(_summary_table(summary))
        if summary["failures"]:
            console.print(_failures_table(summary["failures"]))
    if summary["failed"]:
        raise typer.Exit(1)


def _files_to_render_first(
    session: Session, settings: Settings, source: Path, workspace: str, workers: int
) -> list[Path] | None:
    """For a folder backfill that will render: the files its run renders first.

    Then the command starts its pixel workers, and has them render those files, before
    it loads Prefect. ``None`` when the run renders nothing (a rerun of a finished folder),
    and for a manifest, which is left to the run: reading one loads pandas.
    """
    if not source.is_dir():
        return None
    from mediamill.catalog import repository as repo
    from mediamill.tasks.sources import discover
    from mediamill.tasks.standby import first_to_render

    found = repo.find_workspace(session, workspace)
    sources = discover(source, exclude=settings.own_state_paths())
    return first_to_render(session, found.id if found else None, sources, workers)


def _pixel_standby(
    settings: Settings, workers: int, ahead: list[Path]
) -> AbstractContextManager[None]:
    """The run's pixel pool, started now: it loads libvips while this process loads Prefect."""
    from mediamill.tasks.pixels import PixelLimits
    from mediamill.tasks.recipes import Recipe
    from mediamill.tasks.standby import standby

    limits = PixelLimits.from_settings(settings)
    return standby(workers, limits, Recipe.from_settings(settings), ahead)


def run_backfill(
    settings: Settings,
    source: Path,
    workspace: str,
    user: str | None,
    entity: str | None,
    batch_size: int | None,
    workers: int | None,
    show_progress: bool,
    dask_address: str | None = None,
) -> dict[str, Any]:
    """Run the backfill flow in this process, against the configured or local Prefect API."""
    start_prefect(settings)
    with loading_flows():
        from mediamill.flows.delivery import wait_for_delivery
        from mediamill.flows.ingest import backfill as backfill_flow
        from mediamill.tasks.pixels import PoolUnavailableError
        from mediamill.tasks.sources import SourceError

    try:
        with _progress_bar(f"backfill {source.name}", show_progress), attended_runs():
            return backfill_flow(
                str(source),
                workspace,
                user=user,
                entity=entity,
                batch_size=batch_size,
                workers=workers,
                dask_address=dask_address,
            )
    except (SourceError, PoolUnavailableError) as error:
        raise fail(str(error)) from error
    finally:
        wait_for_delivery()


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
