"""Per-workspace concurrency limits on a real Prefect server (the session's test server)."""

from __future__ import annotations

import uuid

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.exceptions import ObjectNotFound

from mediamill.flows.fairness import ensure_workspace_limit, workspace_limit_name, workspace_slot
from mediamill.settings import Settings


def _workspace() -> str:
    return f"ws-{uuid.uuid4().hex[:8]}"


def _limit(name: str) -> tuple[int, int]:
    """(slots, slots in use) of a global concurrency limit."""
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(name)
    return limit.limit, limit.active_slots


def test_a_configured_default_creates_the_limit_and_a_run_holds_one_slot(
    prefect_api: str,
) -> None:
    workspace = _workspace()
    settings = Settings(workspace_concurrency=3)

    with workspace_slot(settings, workspace):
        assert _limit(workspace_limit_name(workspace)) == (3, 1)

    assert _limit(workspace_limit_name(workspace)) == (3, 0)


def test_an_operators_limit_is_kept_and_applies_without_a_default(prefect_api: str) -> None:
    workspace = _workspace()
    name = workspace_limit_name(workspace)
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=8))

    assert ensure_workspace_limit(workspace, 2) == name
    assert _limit(name) == (8, 0)
    with workspace_slot(Settings(workspace_concurrency=0), workspace):
        assert _limit(name) == (8, 1)


def test_without_a_limit_the_block_runs_and_creates_nothing(prefect_api: str) -> None:
    workspace = _workspace()
    ran = False

    with workspace_slot(Settings(workspace_concurrency=0), workspace):
        ran = True

    assert ran
    with get_client(sync_client=True) as client, pytest.raises(ObjectNotFound):
        client.read_global_concurrency_limit_by_name(workspace_limit_name(workspace))


def test_the_slot_is_released_when_the_block_fails(prefect_api: str) -> None:
    workspace = _workspace()
    settings = Settings(workspace_concurrency=1)

    with pytest.raises(RuntimeError, match="boom"), workspace_slot(settings, workspace):
        raise RuntimeError("boom")

    assert _limit(workspace_limit_name(workspace)) == (1, 0)
