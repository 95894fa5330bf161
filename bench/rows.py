"""The one way a benchmark script prints and saves its rows (name, value, baseline, goal)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VERDICTS = {True: "ok", False: "MISSED", None: ""}


def report(rows: list[dict[str, Any]], json_path: Path | None) -> None:
    """A line per row on stdout, and the rows as JSON when ``json_path`` is given."""
    width = max(len(row["name"]) for row in rows)
    for row in rows:
        print(
            f"{row['name']:<{width}} {row['value']:>9} vs {row['baseline']:>9} "
            f"({row['baseline_name']}) = {row['ratio']:.3f}  goal {row['goal']}"
            f"  {VERDICTS[row.get('ok')]}"
        )
    if json_path is not None:
        json_path.write_text(json.dumps(rows, indent=2))
