"""The app's process-wide settings while it serves."""

from __future__ import annotations

import gc

from mediamill.api.app import GC_THRESHOLDS, settled_heap


def test_settled_heap_freezes_start_up_and_restores_the_collector() -> None:
    before = gc.get_threshold()
    with settled_heap():
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
