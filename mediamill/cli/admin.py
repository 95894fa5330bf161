"""``db upgrade``, ``config check`` and ``check catalog``: keep the installation sound."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from mediamill.cli.common import console, errors, fail, load_settings, open_catalog, print_json
from mediamill.cli.options import JsonOption


def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply catalog migrations (Alembic) up to REVISION."""
    from mediamill.catalog import migrate
    from mediamill.catalog.engine import make_engine

    settings = load_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        migrate.upgrade(engine, revision)
        console.print(f"catalog at revision {migrate.current_revision(engine)}")
    finally:
        engine.dispose()


def config_check() -> None:
    """Validate the settings, the store and the catalog; exit non-zero when anything is wrong."""
    from mediamill.config_check import run_checks

    settings = load_settings()
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

    settings = load_settings()
    with open_catalog(settings) as session:
        try:
            report = run_suite(
                session.connection(),
                planned_variants=Recipe.from_settings(settings).planned_variants,
                workspace_prefix=workspace_prefix,
                workspace=workspace,
            )
        except NotFound as error:
            raise fail(str(error)) from error
    if as_json:
        print_json(report.as_dict())
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
