"""Quota arithmetic: sizes people type, states against a quota, what admission counts."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from mediamill.catalog import repository as repo
from mediamill.catalog.models import BlobStatus, QuotaState, Workspace
from mediamill.catalog.quota import (
    QuotaGate,
    format_size,
    parse_size,
    quota_state,
    reserved_bytes,
    set_quota,
)
from tests.catalog.factories import add_blob, add_workspace


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1048576", 1_048_576),
        ("0", 0),
        ("5GB", 5_000_000_000),
        ("5 gb", 5_000_000_000),
        ("500MiB", 500 * 2**20),
        ("1.5GiB", 3 * 2**29),
        ("2TB", 2 * 10**12),
        ("10kb", 10_000),
        ("7B", 7),
        ("none", None),
        ("Unlimited", None),
    ],
)
def test_parse_size(text: str, expected: int | None) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "-5GB", "5XB", "GB", "5 G B", "1e9", "five"])
def test_parse_size_refuses_what_is_not_a_size(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_format_size() -> None:
    assert format_size(None) == "unlimited"
    assert format_size(999) == "999 B"
    assert format_size(4_700_000_000) == "4.70 GB"
    assert format_size(500 * 2**20) == "524.29 MB"


@pytest.mark.parametrize(
    ("used", "quota", "state"),
    [
        (10**12, None, QuotaState.unlimited),
        (0, 1000, QuotaState.ok),
        (799, 1000, QuotaState.ok),
        (800, 1000, QuotaState.warning),
        (999, 1000, QuotaState.warning),
        (1000, 1000, QuotaState.exceeded),
        (1001, 1000, QuotaState.exceeded),
        (0, 0, QuotaState.ok),
        (1, 0, QuotaState.exceeded),
    ],
)
def test_quota_state(used: int, quota: int | None, state: QuotaState) -> None:
    assert quota_state(used, quota) is state


def test_set_quota_creates_the_workspace_and_can_lift_it(session: Session) -> None:
    assert set_quota(session, "new", 5000).quota_bytes == 5000
    session.commit()
    set_quota(session, "new", None)
    session.commit()
    found = repo.find_workspace(session, "new")
    assert found is not None
    assert found.quota_bytes is None
    with pytest.raises(ValueError, match="negative"):
        set_quota(session, "new", -1)


def test_reserved_bytes_count_ready_and_processing_originals_of_the_workspace(
    session: Session, workspace: Workspace
) -> None:
    add_blob(session, workspace, "ready", size=100, status=BlobStatus.ready)
    add_blob(session, workspace, "claimed", size=20, status=BlobStatus.processing)
    add_blob(session, workspace, "failed", size=5000, status=BlobStatus.failed)
    add_blob(session, add_workspace(session, "globex"), "other", size=7000)
    session.commit()

    assert reserved_bytes(session, workspace.id) == 120


def test_gate_keeps_a_running_total(session: Session, workspace: Workspace) -> None:
    workspace.quota_bytes = 100
    add_blob(session, workspace, "ready", size=60, status=BlobStatus.ready)
    session.commit()
    gate = QuotaGate(session, workspace.id)

    assert gate.admit(30) is None
    refusal = gate.admit(11)
    assert refusal is not None
    assert "90 B of the 100 B quota is in use (10 B free)" in refusal
    gate.refund(30)
    assert gate.admit(40) is None
