"""``make bench``: every benchmark of the project in one table, with JSON, markdown and a chart.

Each script runs in its own process (one's imports and caches do not speed up another)
and writes its rows as JSON; this collects them into ``bench/results/``: ``latest.json``
(the rows), ``latest.md`` (the table, for the README) and ``latest.png`` (the chart).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.table import markdown_table, text_table, write_chart

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# Seconds of load per API line (bench_api's own default is 10): what keeps the whole run,
# the sweeps at 1,000,000 rows included, within 15 minutes on the 2-core machine.
WRK_SECONDS = 6


def _run(script: str, *args: str) -> tuple[list[dict[str, Any]], float]:
    """The rows of one benchmark script, and its wall time."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "rows.json"
        subprocess.run(
            [sys.executable, "-m", f"bench.{script}", "--json", str(out), *args],
            cwd=ROOT,
            check=True,
        )
        rows: list[dict[str, Any]] = json.loads(out.read_text())
    return rows, time.perf_counter() - started


def write_results(
    rows: list[dict[str, Any]], elapsed: float | None, timings: dict[str, float], folder: Path
) -> None:
    """``latest.json``, ``latest.md`` and ``latest.png`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "latest.json").write_text(json.dumps(rows, indent=2) + "\n")
    parts = ", ".join(f"{script} {seconds:.0f} s" for script, seconds in timings.items())
    (folder / "latest.md").write_text(
        markdown_table(rows, elapsed) + (f"\nBy script: {parts}.\n" if parts else "")
    )
    write_chart(rows, folder / "latest.png", title="make bench: measured / baseline, same run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", default="200", help="JPEGs in the backfill benchmark")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="ROWS_JSON",
        help="run nothing: write the table, markdown and chart of saved rows",
    )
    args = parser.parse_args()
    if args.render is not None:
        rows = json.loads(args.render.read_text())
        write_results(rows, None, {}, RESULTS)
        print(text_table(rows))
        return
    started = time.perf_counter()
    rows = []
    timings: dict[str, float] = {}
    for script, script_args in (
        ("bench_image_variants", ()),
        ("bench_backfill", ("--count", args.count)),
        ("bench_video", ()),
        ("bench_mesh", ()),
        ("bench_isolation", ()),
        # How long the machine stalls a ready process: the floor under the API's p99 lines.
        ("bench_stalls", ()),
        # recentMedia and webhooks under load, then the sweeps over the same seeded catalogs.
        ("bench_api", ("--sweeps", "--duration", str(WRK_SECONDS))),
    ):
        found, timings[script] = _run(script, *script_args)
        rows += found
    elapsed = time.perf_counter() - started
    write_results(rows, elapsed, timings, RESULTS)
    print("\n" + text_table(rows, elapsed))
    print("by script: " + ", ".join(f"{s} {t:.0f} s" for s, t in timings.items()))
    written = (RESULTS / name for name in ("latest.json", "latest.md", "latest.png"))
    print("written: " + ", ".join(str(path) for path in written))


if __name__ == "__main__":
    main()
