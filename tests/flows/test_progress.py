"""Run progress: every asset reaches the CLI's listener, coarse steps reach the UI's artifact."""

from __future__ import annotations

import uuid

import pytest
from prefect import flow
from prefect.artifacts import update_progress_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterId

from mediamill.flows import progress


@flow
def _advance(total: int, counts: list[int]) -> str | None:
    """A run that finishes ``counts`` assets at a time; returns its progress artifact's id."""
    tracker = progress.ProgressTracker(total, key="progress-test")
    for count in counts:
        tracker.advance(count)
    return str(tracker._artifact) if tracker._artifact is not None else None


@pytest.fixture
def reported(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The percentages sent to Prefect, still sent for real."""
    sent: list[float] = []

    def recording(artifact_id: uuid.UUID, value: float) -> object:
        sent.append(value)
        return update_progress_artifact(artifact_id, value)

    monkeypatch.setattr(progress, "update_progress_artifact", recording)
    return sent


@pytest.mark.usefixtures("prefect_api")
def test_every_asset_reaches_the_listener_and_every_fifth_percent_the_artifact(
    reported: list[float],
) -> None:
    heard: list[tuple[int, int]] = []
    progress.set_listener(lambda done, total: heard.append((done, total)))
    try:
        artifact_id = _advance(40, [1] * 40)
    finally:
        progress.set_listener(None)

    assert heard == [(done, 40) for done in range(1, 41)]
    assert reported == [
        float(p) for p in range(progress.ARTIFACT_STEP, 101, progress.ARTIFACT_STEP)
    ]
    assert artifact_id is not None
    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(id=ArtifactFilterId(any_=[uuid.UUID(artifact_id)]))
        )
    assert artifact.type == "progress"
    assert float(str(artifact.data)) == 100.0


@pytest.mark.usefixtures("prefect_api")
def test_a_run_finishing_more_than_its_total_stops_at_one_hundred(reported: list[float]) -> None:
    _advance(3, [1, 5, 3])  # the run's final advance counts every asset once more
    assert reported == [33.0, 100.0]


@pytest.mark.usefixtures("prefect_api")
def test_an_empty_run_has_no_artifact(reported: list[float]) -> None:
    assert _advance(0, [0]) is None
    assert reported == []
