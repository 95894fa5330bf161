"""``make bench``: every benchmark of the project, one table, JSON in bench/results/."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def _image_rows(path: Path) -> list[dict[str, Any]]:
    """bench_image_variants rows carry a numeric goal: a ceiling on ratio, else on value."""
    rows = []
    for row in json.loads(path.read_text()):
        goal = row["goal"]
        measured = row["ratio"] if row["baseline"] is not None else row["value"]
        rows.append(
            {
                **row,
                "baseline_name": "naive Pillow, same run" if row["baseline"] is not None else "",
                "goal": ""
                if goal is None
                else (f"<= {goal}x" if row["baseline"] else f"<= {goal}"),
                "ok": None if goal is None else measured <= goal,
            }
        )
    return rows


def _run(script: str, *args: str) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "rows.json"
        subprocess.run(
            [sys.executable, "-m", f"bench.{script}", "--json", str(out), *args],
            cwd=ROOT,
            check=True,
        )
        if script == "bench_image_variants":
            return _image_rows(out)
        rows: list[dict[str, Any]] = json.loads(out.read_text())
        return rows


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", default="200", help="JPEGs in the backfill benchmark")
    args = parser.parse_args()
    rows = (
        _run("bench_image_variants")
        + _run("bench_backfill", "--count", args.count)
        + _run("bench_video")
        + _run("bench_mesh")
        + _run("bench_api")
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(rows, indent=2))
    width = max(len(row["name"]) for row in rows)
    print(f"\n{'benchmark':<{width}}  {'value':>9}  {'baseline':>9}  {'ratio':>7}  goal")
    for row in rows:
        verdict = {True: "ok", False: "MISSED", None: ""}[row.get("ok")]
        print(
            f"{row['name']:<{width}}  {_fmt(row['value']):>9}  {_fmt(row['baseline']):>9}  "
            f"{_fmt(row['ratio']):>7}  {row['goal']} {verdict}"
        )
    print(f"\nrows written to {RESULTS / 'latest.json'}")


if __name__ == "__main__":
    main()
