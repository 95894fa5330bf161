"""The catalog health flow under a real Prefect server: artifact, event, return value."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from sqlalchemy import text

from mediamill.flows.delivery import wait_for_delivery
from mediamill.flows.health import ARTIFACT_KEY, UNHEALTHY_EVENT, catalog_health
from mediamill.flows.ingest import backfill
from mediamill.media import samples

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture
def ingested(catalog: Any, tmp_path: Path) -> Any:
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in range(2):
        (folder / f"{seed}.jpg").write_bytes(samples.photo_jpeg(320, 240, seed=seed))
    summary = backfill(str(folder), "acme", entity="product:1")
    assert summary["ingested"] == 2
    return catalog


def _artifact_rows(flow_run_id: uuid.UUID) -> list[dict[str, Any]]:
    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    assert artifact.key == ARTIFACT_KEY
    assert isinstance(artifact.data, str)
    rows: list[dict[str, Any]] = json.loads(artifact.data)
    return rows


def _unhealthy_events(resource_id: str, timeout: float = 20.0) -> list[Any]:
    """The server stores events shortly after they arrive: poll for them."""
    wait_for_delivery()
    wanted = EventFilter(
        event=EventNameFilter(name=[UNHEALTHY_EVENT]),
        resource=EventResourceFilter(id=[resource_id]),
    )
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            events = client.read_events(filter=wanted, limit=50).events
            if events or time.monotonic() > deadline:
                return list(events)
            time.sleep(0.25)


def test_a_healthy_catalog_publishes_its_results_and_raises_no_alarm(ingested: Any) -> None:
    state = catalog_health(return_state=True)

    result = state.result()
    assert result["healthy"] is True
    assert len(result["expectations"]) == 14
    rows = _artifact_rows(state.state_details.flow_run_id)
    assert len(rows) == 14
    assert all(row["success"] for row in rows)
    assert _unhealthy_events("mediamill.catalog", timeout=1.0) == []


def test_a_broken_catalog_is_reported_and_signalled(ingested: Any) -> None:
    workspace = f"acme-{uuid.uuid4().hex[:8]}"
    with ingested.begin() as session:
        session.execute(
            text("UPDATE workspaces SET slug = :slug WHERE slug = 'acme'"), {"slug": workspace}
        )
        session.execute(text("UPDATE variants SET size = 0"))

    state = catalog_health(workspace, return_state=True)

    result = state.result()
    assert result["healthy"] is False
    failed = [e for e in result["expectations"] if not e["success"]]
    assert [e["expectation"] for e in failed] == ["variant sizes are positive"]
    rows = _artifact_rows(state.state_details.flow_run_id)
    assert rows[0]["expectation"] == "variant sizes are positive"  # failures come first
    assert rows[0]["success"] is False
    (event,) = _unhealthy_events(f"mediamill.catalog.{workspace}")
    assert event.resource["mediamill.workspace"] == workspace
    assert [f["expectation"] for f in event.payload["failed"]] == ["variant sizes are positive"]
