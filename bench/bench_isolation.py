"""Decode isolation: what the pixel pool's per-job limits cost per asset, same run.

Run ``.venv/bin/python -m bench.bench_isolation [--json out.json]``. The issue (untrusted
decodes run with a time and a memory limit, in a process that may crash or hang) asks for
the overhead this adds per asset, reported, with no goal. Three ways render the same JPEGs,
one worker each, so a figure per asset is the cost of the path and not of parallelism:

- ``PixelPool``: pebble's pool, a timeout per job, the worker's data memory capped
  (RLIMIT_DATA at the default 3072 MB): what a run uses now;
- a plain ``ProcessPoolExecutor`` with the same spawn context and initializer and no
  limits: the pool as it was before, the baseline for what the limits add;
- ``render_job`` called in this process: the baseline for what a worker process costs at all.

Rounds alternate the three so drift on a shared machine hits each alike; each figure is
the median over rounds of the mean time per asset. Render times drift by more than the pool
adds, so one row times jobs that do nothing: the round trip through each pool alone. A last
row renders one 100 MP JPEG under the default cap, for the peak memory it needs against it.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from bench.corpus import big_jpeg, jpeg_folder
from bench.rows import report

# The media and task imports sit inside the functions: workers start by spawn and re-import
# this module, and should pay for what a pixel worker needs, not for the benchmark.

SMALL_SIZE = (400, 300)
# The issue that asked for the figure: decode isolation.
ISSUE: int | None = 7
Runner = Callable[[Sequence[Any]], None]


def _jobs(paths: Sequence[Path]) -> list[Any]:
    """Render jobs reading from files, as a local backfill sends them."""
    from mediamill.tasks.pixels import RenderJob
    from mediamill.tasks.recipes import Recipe

    recipe = Recipe()
    return [
        RenderJob(
            blob_id=index,
            sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
            media_type="image",
            media_format="jpeg",
            recipe=recipe,
            path=str(path),
        )
        for index, path in enumerate(paths)
    ]


def small_jpegs(count: int) -> list[Path]:
    """``count`` distinct small JPEGs, like thumbnails or product shots sent by a webhook."""
    from bench.corpus import CACHE
    from mediamill.media import samples

    folder = CACHE / f"jpeg-{SMALL_SIZE[0]}x{SMALL_SIZE[1]}-{count}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"photo-{i:04d}.jpg" for i in range(count)]
    for seed, path in enumerate(paths):
        if not path.exists():
            path.write_bytes(samples.photo_jpeg(*SMALL_SIZE, seed=seed))
    return paths


def _check(outcomes: Sequence[Any]) -> None:
    failed = [o for o in outcomes if o.rendition is None]
    if failed:
        raise RuntimeError(f"{len(failed)} renders failed: {failed[0].error_message}")


class Paths:
    """The three ways to render, each warmed up before anything is timed."""

    def __init__(self) -> None:
        from mediamill.tasks.pixels import PixelLimits, PixelPool, configure_worker

        self.threads = os.cpu_count() or 1
        configure_worker(self.threads)
        self.limits = PixelLimits()
        self.pool = PixelPool(1, limits=self.limits)
        self.executor = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=configure_worker,
            initargs=(self.threads,),
        )

    def in_process(self, jobs: Sequence[Any]) -> None:
        from mediamill.tasks.pixels import render_job

        _check([render_job(job) for job in jobs])

    def executor_pool(self, jobs: Sequence[Any]) -> None:
        from mediamill.tasks.pixels import render_job

        futures = [self.executor.submit(render_job, job) for job in jobs]
        _check([future.result() for future in as_completed(futures)])

    def pixel_pool(self, jobs: Sequence[Any]) -> None:
        _check(list(self.pool.render(jobs)))

    def runners(self) -> dict[str, Runner]:
        return {
            "pool": self.pixel_pool,
            "executor": self.executor_pool,
            "in_process": self.in_process,
        }

    def close(self) -> None:
        self.pool.close()
        self.executor.shutdown()


def per_asset_ms(paths: Paths, jobs: Sequence[Any], rounds: int) -> dict[str, float]:
    """Median over ``rounds`` of the mean milliseconds per asset, for each way."""
    runners = paths.runners()
    for run in runners.values():  # workers started, modules imported, caches warm
        run(jobs[:2])
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            started = time.perf_counter()
            run(jobs)
            times[name].append((time.perf_counter() - started) * 1000 / len(jobs))
    return {name: statistics.median(values) for name, values in times.items()}


def empty_job(job: Any) -> Any:
    """Runs in a worker instead of ``render_job``: no work, so only the round trip is timed."""
    from mediamill.tasks.pixels import RenderOutcome

    return RenderOutcome(job.blob_id, None, None, None, 0.0)


def round_trip_ms(paths: Paths, jobs: Sequence[Any], rounds: int) -> tuple[float, float]:
    """Median milliseconds per empty job: the limited pool, then the plain executor."""

    def pool() -> None:
        list(paths.pool.render(jobs, empty_job))

    def executor() -> None:
        for future in as_completed([paths.executor.submit(empty_job, job) for job in jobs]):
            future.result()

    times: dict[Callable[[], None], list[float]] = {pool: [], executor: []}
    for _ in range(rounds):
        for run in times:
            started = time.perf_counter()
            run()
            times[run].append((time.perf_counter() - started) * 1000 / len(jobs))
    return statistics.median(times[pool]), statistics.median(times[executor])


def peak_mb(big: Path) -> tuple[float, float]:
    """Peak RSS (MB) of a fresh worker rendering ``big``: limited pool, plain executor."""
    from mediamill.tasks.pixels import PixelPool, configure_worker, render_job

    (job,) = _jobs([big])
    with PixelPool(1) as pool:
        (limited,) = pool.render([job])
    with ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=configure_worker,
        initargs=(os.cpu_count() or 1,),
    ) as executor:
        plain = executor.submit(render_job, job).result()
    _check([limited, plain])
    return limited.peak_rss_bytes / 1e6, plain.peak_rss_bytes / 1e6


def _rows_for(label: str, count: int, ms: dict[str, float], rounds: int) -> list[dict[str, Any]]:
    pool, executor, local = ms["pool"], ms["executor"], ms["in_process"]
    return [
        {
            "name": f"isolated pool, {label} JPEG (ms/asset)",
            "value": round(pool, 1),
            "baseline": round(executor, 1),
            "baseline_name": (
                f"plain ProcessPoolExecutor, no limits, 1 worker, {count} assets "
                f"(median of {rounds})"
            ),
            "ratio": round(pool / executor, 3),
            "added_ms_per_asset": round(pool - executor, 1),
            "issue": ISSUE,
            "goal": "report",
            "ok": None,
        },
        {
            "name": f"isolated pool vs in-process, {label} JPEG (ms/asset)",
            "value": round(pool, 1),
            "baseline": round(local, 1),
            "baseline_name": f"render_job in this process, {count} assets (median of {rounds})",
            "ratio": round(pool / local, 3),
            "added_ms_per_asset": round(pool - local, 1),
            "issue": ISSUE,
            "goal": "report",
            "ok": None,
        },
    ]


def run(small: int = 30, large: int = 5, rounds: int = 5) -> list[dict[str, Any]]:
    """Rows for small and 12 MP JPEGs, then the 100 MP peak against the cap."""
    # The 12 MP corpus first: it is made by a forking pool, which must start before this
    # process loads libvips (a fork of libvips' threads can deadlock).
    large_jobs = _jobs(sorted(jpeg_folder(large).glob("*.jpg")))
    big = big_jpeg(100)
    small_jobs = _jobs(small_jpegs(small))
    paths = Paths()
    try:
        small_ms = per_asset_ms(paths, small_jobs, rounds)
        large_ms = per_asset_ms(paths, large_jobs, rounds)
        empty_pool, empty_executor = round_trip_ms(paths, small_jobs * 10, rounds)
        cap_mb = (paths.limits.memory_bytes or 0) / 1e6
    finally:
        paths.close()
    limited, plain = peak_mb(big)
    side = f"{SMALL_SIZE[0]}x{SMALL_SIZE[1]}"
    return [
        {
            "name": "round trip of an empty job (ms/job)",
            "value": round(empty_pool, 2),
            "baseline": round(empty_executor, 2),
            "baseline_name": (
                f"plain ProcessPoolExecutor, 1 worker, {small * 10} jobs (median of {rounds})"
            ),
            "ratio": round(empty_pool / empty_executor, 3),
            "added_ms_per_asset": round(empty_pool - empty_executor, 2),
            "issue": ISSUE,
            "goal": "report",
            "ok": None,
        },
        *_rows_for(side, small, small_ms, rounds),
        *_rows_for("12 MP", large, large_ms, rounds),
        {
            "name": "peak RSS of a capped worker rendering a 100 MP JPEG (MB)",
            "value": round(limited, 1),
            "baseline": round(plain, 1),
            "baseline_name": "the same render in a plain executor worker",
            "ratio": round(limited / plain, 3),
            "cap_mb": round(cap_mb),
            "issue": ISSUE,
            "goal": "report",
            "ok": None,
        },
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=30, help="400x300 JPEGs per round")
    parser.add_argument("--large", type=int, default=5, help="12 MP JPEGs per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    report(run(args.small, args.large, args.rounds), args.json)


if __name__ == "__main__":
    main()
