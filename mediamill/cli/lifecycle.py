"""Media lifecycle: ``attach``, ``detach``, ``entity media`` and ``delete``, ``sweep``.

Attachments are written here directly; entity cleanup and the sweeps run their flows in
this process. Deleting and restoring one media live with the other ``media`` commands.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from mediamill.cli.common import (
    attended_runs,
    console,
    fail,
    load_settings,
    loading_flows,
    media_table,
    media_uuid,
    open_catalog,
    print_json,
    refusals,
    scope_id,
    start_prefect,
    url_maker,
    writing,
)
from mediamill.cli.options import (
    ActorOption,
    JsonOption,
    MediaIdArgument,
    ScopeOption,
    WorkspaceOption,
)
from mediamill.settings import Settings

if TYPE_CHECKING:
    from mediamill.catalog.lifecycle import Entity

EntityArgument = Annotated[str, typer.Argument(help="The entity, as TYPE:ID.")]
RequiredEntityOption = Annotated[
    str, typer.Option("--entity", "-e", help="The entity, as TYPE:ID.")
]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Report the plan; change nothing.")]


def _entity(text: str) -> Entity:
    from mediamill.catalog.lifecycle import Entity
    from mediamill.tasks.sources import EntityRef

    try:
        ref = EntityRef.parse(text)
    except ValueError as error:
        raise fail(str(error)) from error
    return Entity(ref.type, ref.id)


def attach(
    media_id: MediaIdArgument,
    entity: RequiredEntityOption,
    workspace: ScopeOption = None,
    user: ActorOption = None,
) -> None:
    """Attach a media to an entity, at the end of its gallery; attaching twice is a no-op."""
    from mediamill.catalog import lifecycle as life

    settings = load_settings()
    target, wanted = _entity(entity), media_uuid(media_id)
    with refusals(), writing(settings) as session:
        media = life.lock_media(session, wanted, scope_id(session, workspace))
        attachment, created = life.attach(session, media, target, user)
        position = attachment.position
    verb = "attached" if created else "already attached"
    console.print(f"media {wanted} {verb} to {target} at position {position}")


def detach(
    media_id: MediaIdArgument,
    entity: RequiredEntityOption,
    workspace: ScopeOption = None,
    user: ActorOption = None,
) -> None:
    """Detach a media from an entity; the media itself stays."""
    from mediamill.catalog import lifecycle as life

    settings = load_settings()
    target, wanted = _entity(entity), media_uuid(media_id)
    with refusals(), writing(settings) as session:
        media = life.lock_media(session, wanted, scope_id(session, workspace))
        detached = life.detach(session, media, target, user)
    if not detached:
        raise fail(f"media {wanted} is not attached to {target}", code=1)
    console.print(f"media {wanted} detached from {target}")


def entity_media(
    entity: EntityArgument, workspace: WorkspaceOption, as_json: JsonOption = False
) -> None:
    """The entity's media in gallery order (deleted media left out)."""
    from mediamill.catalog import lifecycle as life
    from mediamill.catalog import repository as repo
    from mediamill.catalog.views import media_record

    settings = load_settings()
    target = _entity(entity)
    url_for = url_maker(settings)
    with open_catalog(settings) as session:
        found = repo.find_workspace(session, workspace)
        rows = life.entity_media(session, found.id, target) if found else []
        records = [media_record(m, url_for) for m in rows]
    if as_json:
        print_json(records)
    else:
        console.print(media_table(records, f"Media of {target} in {workspace}"))


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
    with open_catalog(settings, migrate_embedded=True):
        pass
    start_prefect(settings)
    with loading_flows():
        from mediamill.flows.delivery import wait_for_delivery

    try:
        with attended_runs():
            return run()
    finally:
        wait_for_delivery()


def _print_report(report: dict[str, Any], title: str, as_json: bool) -> None:
    if as_json:
        print_json(report)
        return
    for table in _report_tables(report, title):
        console.print(table)


def entity_delete(
    entity: EntityArgument,
    workspace: WorkspaceOption,
    user: ActorOption = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """The entity was deleted: detach its media, soft-delete those uploaded for it alone."""
    settings = load_settings()
    target = _entity(entity)

    def run() -> dict[str, Any]:
        from mediamill.flows.lifecycle import entity_cleanup

        return entity_cleanup(workspace, str(target), actor=user, dry_run=dry_run)

    report = _run_lifecycle_flow(settings, run)
    _print_report(report, f"Entity {target} deleted in {workspace}", as_json)


def sweep_orphans(
    workspace: ScopeOption = None, dry_run: DryRunOption = False, as_json: JsonOption = False
) -> None:
    """Expire never-attached uploads, delete stray objects, flag rows whose objects are gone."""
    settings = load_settings()

    def run() -> dict[str, Any]:
        from mediamill.flows.sweeps import orphan_sweep

        return orphan_sweep(workspace, dry_run=dry_run)

    report = _run_lifecycle_flow(settings, run)
    _print_report(report, f"Orphan sweep of {workspace or 'every workspace'}", as_json)


def sweep_purge(
    workspace: ScopeOption = None, dry_run: DryRunOption = False, as_json: JsonOption = False
) -> None:
    """Purge media deleted longer ago than the retention period, and their unused objects."""
    settings = load_settings()

    def run() -> dict[str, Any]:
        from mediamill.flows.sweeps import purge

        return purge(workspace, dry_run=dry_run)

    report = _run_lifecycle_flow(settings, run)
    _print_report(report, f"Purge of {workspace or 'every workspace'}", as_json)
