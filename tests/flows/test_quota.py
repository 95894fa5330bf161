"""The quota sweep under a real Prefect test server: snapshots, events, the table artifact."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.events.filters import EventFilter, EventNameFilter, EventRelatedFilter
from sqlalchemy import select

from mediamill.catalog.models import BlobStatus, MediaStatus, MediaType, QuotaSnapshot, QuotaState
from mediamill.catalog.quota import set_quota
from mediamill.flows.delivery import wait_for_delivery
from mediamill.flows.quota import quota_sweep
from tests.catalog.factories import add_blob, add_media, add_workspace, new_variant

pytestmark = pytest.mark.usefixtures("prefect_api")

QUOTA = 1000
# workspace -> (quota, original bytes, variant bytes)
WORKSPACES = {
    "calm": (QUOTA, 100, 0),
    "near": (QUOTA, 700, 100),  # exactly 80%: a warning
    "over": (QUOTA, 900, 150),  # the original fits, its variants take it over
    "free": (None, 5000, 500),
}


@pytest.fixture
def workspaces(catalog: Any) -> None:
    with catalog.begin() as session:
        for slug, (quota, original, variants) in WORKSPACES.items():
            workspace = add_workspace(session, slug)
            workspace.quota_bytes = quota
            blob = add_blob(session, workspace, slug, size=original, status=BlobStatus.ready)
            if variants:
                session.add(new_variant(blob, size=variants))
            add_media(
                session, workspace, blob, media_type=MediaType.image, status=MediaStatus.ready
            )


def snapshots(catalog: Any) -> list[QuotaSnapshot]:
    with catalog() as session:
        return list(session.scalars(select(QuotaSnapshot).order_by(QuotaSnapshot.id)))


def events_of(flow_run_id: uuid.UUID, expected: int, timeout: float = 60) -> list[Any]:
    """The quota events the run emitted, read back from the Prefect server."""
    wait_for_delivery()
    wanted = EventFilter(
        event=EventNameFilter(prefix=["mediamill.quota."]),
        related=EventRelatedFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
    )
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            events = client.read_events(wanted, limit=50).events
            if len(events) >= expected or time.monotonic() > deadline:
                return events
            time.sleep(0.5)


@pytest.mark.usefixtures("workspaces")
def test_sweep_snapshots_every_workspace_and_raises_events_at_80_and_100_percent(
    catalog: Any,
) -> None:
    rows = quota_sweep()

    states = {row["workspace"]: row["state"] for row in rows}
    assert states == {"calm": "ok", "near": "warning", "over": "exceeded", "free": "unlimited"}
    by_slug = {row["workspace"]: row for row in rows}
    assert by_slug["near"]["used_fraction"] == 0.8
    assert by_slug["over"]["physical_bytes"] == 1050
    assert by_slug["free"]["used_fraction"] is None
    assert all(row["previous_state"] is None for row in rows)

    history = snapshots(catalog)
    assert len(history) == 4
    run_ids = {snapshot.flow_run_id for snapshot in history}
    assert len(run_ids) == 1
    over = next(s for s in history if s.state is QuotaState.exceeded)
    assert (over.quota_bytes, over.physical_original_bytes, over.physical_variant_bytes) == (
        QUOTA,
        900,
        150,
    )
    assert (over.media_count, over.blob_count, over.media_by_type["image"]) == (1, 1, 1)

    flow_run_id = run_ids.pop()
    assert flow_run_id is not None
    events = events_of(flow_run_id, expected=2)
    seen = {(event.event, event.resource["mediamill.workspace"]) for event in events}
    assert seen == {("mediamill.quota.warning", "near"), ("mediamill.quota.exceeded", "over")}
    exceeded = next(e for e in events if e.event == "mediamill.quota.exceeded")
    assert exceeded.resource.id == "mediamill.workspace.over"
    assert exceeded.payload["quota_bytes"] == QUOTA
    assert exceeded.payload["physical_bytes"] == 1050

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    (artifact,) = [a for a in artifacts if a.key == "quota-sweep"]
    assert artifact.type == "table"
    assert all(slug in str(artifact.data) for slug in WORKSPACES)


@pytest.mark.usefixtures("workspaces")
def test_a_second_sweep_keeps_history_and_reports_the_previous_state(catalog: Any) -> None:
    quota_sweep()
    with catalog.begin() as session:
        set_quota(session, "calm", 100)  # lowered below what it already stores

    rows = {row["workspace"]: row for row in quota_sweep()}

    assert (rows["calm"]["previous_state"], rows["calm"]["state"]) == ("ok", "exceeded")
    assert (rows["near"]["previous_state"], rows["near"]["state"]) == ("warning", "warning")
    assert len(snapshots(catalog)) == 8


@pytest.mark.usefixtures("workspaces")
def test_sweep_of_one_workspace_snapshots_only_that_one(catalog: Any) -> None:
    rows = quota_sweep("near")

    assert [row["workspace"] for row in rows] == ["near"]
    assert [s.state for s in snapshots(catalog)] == [QuotaState.warning]
    assert quota_sweep("nobody") == []
