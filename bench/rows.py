"""The one way a benchmark script prints and saves its rows.

A row is a dict: ``name`` (with its unit), ``value``, ``baseline`` (measured in the same
run), ``baseline_name`` (what the baseline is), ``ratio`` (value / baseline), ``goal`` (the
goal's text as the issue that set it words it, or ``report``), ``goal_ratio`` or
``goal_value`` (that goal as a ceiling on the ratio or on the value, for the chart),
``issue`` (the issue that set the goal or asked for the figure) and ``ok`` (True, False, or
None for a figure that is only reported). Extra keys are kept in
the JSON. `bench.table` prints, tabulates and charts them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.table import text_table


def report(rows: list[dict[str, Any]], json_path: Path | None) -> None:
    """The rows as a table on stdout, and as JSON when ``json_path`` is given."""
    print(text_table(rows))
    if json_path is not None:
        json_path.write_text(json.dumps(rows, indent=2))
