"""The stall meter's arithmetic (the measurement itself runs in bench/, not here)."""

from __future__ import annotations

import pytest

from bench import bench_stalls
from bench.bench_stalls import LONG_MS, stalls, summarise


def test_summarise_reports_the_longest_stall_the_long_ones_per_minute_and_time_lost() -> None:
    gaps = [6.0, 100.0, LONG_MS, 20.0]
    summary = summarise(gaps, seconds=30.0)
    assert summary["longest_ms"] == 100.0
    # Two stalls of at least LONG_MS in 30 s: four a minute.
    assert summary["long_per_minute"] == 4.0
    # 176 ms of 30,000 ms.
    assert summary["lost_percent"] == 0.59


def test_summarise_of_no_stalls_is_all_zero() -> None:
    assert summarise([], seconds=10.0) == {
        "longest_ms": 0.0,
        "long_per_minute": 0.0,
        "lost_percent": 0.0,
    }


def test_stalls_returns_only_gaps_longer_than_the_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The loop's clock readings, in seconds: 1 ms steps, one 2 ms step (under the 5 ms
    # threshold) and one 120 ms stall, then past the 0.2 s the measurement lasts.
    readings = iter([0.0, 0.0, 0.001, 0.003, 0.123, 0.124, 0.3])
    monkeypatch.setattr(bench_stalls.time, "perf_counter", lambda: next(readings))
    assert stalls(0.2, gap_ms=5.0) == pytest.approx([120.0])
