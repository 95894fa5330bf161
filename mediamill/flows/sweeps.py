"""Scheduled sweeps: ``orphan_sweep`` (hourly) and ``purge`` (daily).

Both plan first and then execute the plan step by step, re-checking each step on locked
rows (see :mod:`mediamill.tasks.cleanup`); a dry run stops after the plan and changes
nothing: no row, no object, no audit event. Each run publishes table artifacts and emits
one event per step taken plus a ``mediamill.<job>.completed`` summary.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from mediamill.catalog.repository import utcnow
from mediamill.flows.lifecycle import emit_actions, publish_report
from mediamill.settings import get_settings
from mediamill.tasks.cleanup import (
    ORPHAN_SWEEP_ACTOR,
    PURGE_ACTOR,
    CleanupContext,
    Report,
    execute_orphan_sweep_task,
    execute_purge_task,
    plan_orphan_sweep_task,
    plan_purge_task,
)


def _scope(workspace: str | None) -> str:
    return f"workspace `{workspace}`" if workspace else "every workspace"


@flow(name="orphan-sweep")
def orphan_sweep(workspace: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Expire never-attached uploads, delete stray objects, flag rows whose objects are gone.

    Temporary uploads older than ``upload_ttl_hours`` are soft-deleted; objects under a
    workspace prefix that no blob or variant points at, older than
    ``orphan_grace_minutes``, are deleted, and so are the temp files and orphaned metadata
    that killed writers left there; ready blobs missing objects are flagged in their
    metadata (``missing_objects``).
    """
    now = utcnow()
    ctx = CleanupContext.open(get_settings())
    try:
        plan = plan_orphan_sweep_task(ctx, workspace, now)
        actions = (
            plan.planned() if dry_run else execute_orphan_sweep_task(ctx, plan, ORPHAN_SWEEP_ACTOR)
        )
    finally:
        ctx.close()
    report = Report("orphan-sweep", workspace, dry_run, now, actions)
    publish_report(report, f"Orphan sweep of {_scope(workspace)}")
    emit_actions(report)
    return report.as_dict()


@flow(name="purge")
def purge(workspace: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Purge media soft-deleted more than ``retention_days`` ago, and objects nothing uses.

    A blob's original and every variant are deleted, and its row removed, only once no
    media points at it any more; purged media keep their hash in ``meta.sha256``. Webhook
    deliveries received more than ``delivery_retention_days`` ago whose run was started
    are forgotten.
    """
    now = utcnow()
    ctx = CleanupContext.open(get_settings())
    try:
        plan = plan_purge_task(ctx, workspace, now)
        actions = plan.planned() if dry_run else execute_purge_task(ctx, plan, PURGE_ACTOR)
    finally:
        ctx.close()
    report = Report("purge", workspace, dry_run, now, actions)
    publish_report(report, f"Purge of {_scope(workspace)}")
    emit_actions(report)
    return report.as_dict()
