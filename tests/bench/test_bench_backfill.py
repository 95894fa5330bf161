"""The backfill benchmark's pairing of pipeline runs with the bare runs around them."""

from __future__ import annotations

from bench.bench_backfill import bracketed_pairs


def test_each_pipeline_run_is_set_against_the_bare_runs_either_side_sorted_by_ratio() -> None:
    bare_seconds = iter([10.0, 12.0, 20.0, 10.0])
    pipeline_seconds = {"bench-0": 12.1, "bench-1": 16.0, "bench-2": 15.0}
    order: list[str] = []

    def bare() -> float:
        order.append("bare")
        return next(bare_seconds)

    def pipeline(workspace: str) -> float:
        order.append(workspace)
        return pipeline_seconds[workspace]

    pairs = bracketed_pairs(pipeline, bare, 3)

    assert order == ["bare", "bench-0", "bare", "bench-1", "bare", "bench-2", "bare"]
    # Ratios: 12.1 / 11 = 1.1, 16 / 16 = 1.0, 15 / 15 = 1.0; sorted, the median is in the middle.
    assert pairs == [(16.0, 16.0), (15.0, 15.0), (12.1, 11.0)]
    assert pairs[len(pairs) // 2] == (15.0, 15.0)
