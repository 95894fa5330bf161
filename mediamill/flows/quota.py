"""The quota sweep: snapshot each workspace's usage, and say which are near or over quota.

Run daily by a deployment. Uploads are refused at the quota already (admission counts
originals, see `mediamill.catalog.quota`); the sweep sees what admission cannot, variants
included, and tells the platform through events, which automations can turn into emails
or plan upgrades:

- ``mediamill.quota.warning`` from 80% of the quota,
- ``mediamill.quota.exceeded`` from 100%,

once per sweep for as long as the state lasts, with the previous sweep's state in the
payload so an automation can react to changes only. A table artifact shows every workspace.
"""

from __future__ import annotations

import uuid
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.events import emit_event
from prefect.runtime import flow_run

from mediamill.catalog import migrate
from mediamill.catalog.engine import begin_immediate, make_engine, make_session_factory
from mediamill.catalog.models import QuotaSnapshot, QuotaState
from mediamill.catalog.quota import format_size
from mediamill.catalog.usage import latest_states, record_snapshots, usage
from mediamill.settings import Settings, get_settings

__all__ = ["QUOTA_EVENTS", "quota_sweep", "take_snapshots"]

# Which states raise an event, and its name.
QUOTA_EVENTS = {
    QuotaState.warning: "mediamill.quota.warning",
    QuotaState.exceeded: "mediamill.quota.exceeded",
}


@flow(name="quota-sweep")
def quota_sweep(workspace: str | None = None) -> list[dict[str, Any]]:
    """Snapshot the usage of ``workspace`` (every workspace when ``None``) against its quota.

    Returns one row per workspace: its state, the previous sweep's, and the figures.
    """
    _, previous, snapshots = take_snapshots(get_settings(), workspace, _flow_run_id())
    rows = [_row(slug, snap, previous.get(slug)) for slug, snap in snapshots.items()]
    if workspace is not None and not rows:
        get_run_logger().warning("no workspace %r: nothing to sweep", workspace)
    for row in rows:
        _emit(row)
    _publish(rows)
    return rows


def take_snapshots(
    settings: Settings, workspace: str | None, flow_run_id: uuid.UUID | None
) -> tuple[pd.DataFrame, dict[str, QuotaState], dict[str, QuotaSnapshot]]:
    """The sweep's catalog work: the usage sums, then one snapshot per workspace.

    Returns the usage frame, each workspace's previous state and its new snapshot.
    """
    engine = make_engine(settings.resolved_database_url)
    try:
        migrate.require_current(engine)
        sessions = make_session_factory(engine)
        # Read outside the write lock: the sums may take a while, and uploads keep going.
        with sessions() as session:
            frame = usage(session, workspace)
        with sessions.begin() as session:
            begin_immediate(session)
            previous = latest_states(session, list(frame["workspace"]))
            snapshots = record_snapshots(session, frame, flow_run_id)
    finally:
        engine.dispose()
    return frame, previous, snapshots


def _flow_run_id() -> uuid.UUID | None:
    run_id = flow_run.get_id()
    return uuid.UUID(run_id) if run_id else None


def _row(slug: str, snapshot: QuotaSnapshot, previous: QuotaState | None) -> dict[str, Any]:
    quota = snapshot.quota_bytes
    return {
        "workspace": slug,
        "state": snapshot.state.value,
        "previous_state": previous.value if previous else None,
        "quota_bytes": quota,
        "physical_bytes": snapshot.physical_bytes,
        "logical_bytes": snapshot.logical_bytes,
        "used_fraction": round(snapshot.physical_bytes / quota, 4) if quota else None,
        "media": snapshot.media_count,
        "blobs": snapshot.blob_count,
    }


def _emit(row: dict[str, Any]) -> None:
    event = QUOTA_EVENTS.get(QuotaState(row["state"]))
    if event is None:
        return
    slug = row["workspace"]
    emit_event(
        event=event,
        resource={
            "prefect.resource.id": f"mediamill.workspace.{slug}",
            "prefect.resource.name": slug,
            "mediamill.workspace": slug,
        },
        payload={key: value for key, value in row.items() if key != "workspace"},
    )


def _publish(rows: list[dict[str, Any]]) -> None:
    create_table_artifact(
        key="quota-sweep",
        table=[
            {
                "workspace": row["workspace"],
                "state": row["state"],
                "used": format_size(row["physical_bytes"]),
                "quota": format_size(row["quota_bytes"]),
                "used %": (
                    round(100 * row["used_fraction"], 1) if row["used_fraction"] is not None else ""
                ),
                "logical": format_size(row["logical_bytes"]),
                "media": row["media"],
            }
            for row in rows
        ],
        description="Usage against quota: physical bytes (originals and variants, after "
        "dedupe); logical bytes count every media, duplicates again.",
    )
