"""The entity-deleted flow, and the events and artifacts every lifecycle flow publishes.

``entity_cleanup`` is what a deployment runs when the host platform emits
``mediamill.entity.deleted`` with ``workspace``, ``entity``, ``actor``: the entity's media
are detached, and the ones uploaded for it and now attached nowhere are soft-deleted
(restorable for ``retention_days``; the purge flow removes their objects afterwards).
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_table_artifact
from prefect.events import emit_event

from mediamill.catalog.lifecycle import Entity
from mediamill.catalog.repository import utcnow
from mediamill.settings import get_settings
from mediamill.tasks.cleanup import (
    ENTITY_CLEANUP_ACTOR,
    MAX_REPORTED_ACTIONS,
    Action,
    CleanupContext,
    Report,
    clean_entity_task,
)
from mediamill.tasks.sources import EntityRef


def _resource(action: Action) -> dict[str, str]:
    """The Prefect resource an event is about: the media, else the blob or object named."""
    if action.media_id is not None:
        resource_id = f"mediamill.media.{action.media_id}"
    else:
        kind = action.action.partition(".")[0]  # "blob" or "object"
        resource_id = f"mediamill.{kind}.{(action.subject or '').removeprefix(kind + ':')}"
    return {"prefect.resource.id": resource_id, "mediamill.workspace": action.workspace}


def emit_actions(report: Report) -> None:
    """One ``mediamill.<action>`` event per step taken (``mediamill.media.deleted``, ...).

    Nothing for a dry run or for skipped steps: automations follow what happened. The run
    itself ends with one summary event, dry run or not.
    """
    if not report.dry_run:
        for action in report.actions:
            if action.status == "done":
                payload = {"reason": action.reason, "subject": action.subject, **action.details}
                emit_event(
                    event=f"mediamill.{action.action}", resource=_resource(action), payload=payload
                )
    emit_event(
        event=f"mediamill.{report.job}.completed",
        resource={
            "prefect.resource.id": f"mediamill.{report.job}",
            "mediamill.workspace": report.workspace or "*",
        },
        payload={"dry_run": report.dry_run, "counts": report.counts()},
    )


def publish_report(report: Report, description: str) -> None:
    """Table artifacts: the counts per action (always, zeros included) and the steps."""
    statuses = ("planned", "done", "skipped")
    counts = [
        {"action": action, **{status: per_status.get(status, 0) for status in statuses}}
        for action, per_status in sorted(report.counts().items())
    ] or [{"action": "(nothing to do)", **dict.fromkeys(statuses, 0)}]
    prefix = "Dry run: " if report.dry_run else ""
    create_table_artifact(
        key=f"{report.job}-summary", table=counts, description=prefix + description
    )
    rows = [_row(a) for a in report.actions[:MAX_REPORTED_ACTIONS]]
    if rows:
        create_table_artifact(
            key=f"{report.job}-steps", table=rows, description=prefix + description
        )


def _row(action: Action) -> dict[str, Any]:
    return {
        "action": action.action,
        "status": action.status,
        "workspace": action.workspace,
        "media": action.media_id or "",
        "subject": action.subject or "",
        "reason": action.reason or "",
    }


@flow(name="entity-cleanup")
def entity_cleanup(
    workspace: str, entity: str, actor: str | None = None, dry_run: bool = False
) -> dict[str, Any]:
    """Detach a deleted entity's media; soft-delete those uploaded for it and left alone."""
    ref = EntityRef.parse(entity)
    now = utcnow()
    ctx = CleanupContext.open(get_settings())
    try:
        actions = clean_entity_task(
            ctx,
            workspace,
            Entity(ref.type, ref.id),
            actor=actor or ENTITY_CLEANUP_ACTOR,
            now=now,
            dry_run=dry_run,
        )
    finally:
        ctx.close()
    report = Report("entity-cleanup", workspace, dry_run, now, actions)
    publish_report(report, f"Entity `{ref}` deleted in workspace `{workspace}`")
    emit_actions(report)
    return {**report.as_dict(), "entity": str(ref)}
