"""The one table ``make bench`` prints, and its markdown and chart twins.

Every benchmark script writes rows of one shape (see `bench.rows`): ``name``, ``value``,
``baseline`` (measured in the same run) and ``baseline_name`` (what it is), ``ratio``
(value / baseline), ``goal`` (the text of the goal the issue set, or ``report``), ``issue``
(the number of that issue) and ``ok`` (met, missed, or None for a reported figure). A goal
is a ceiling on the ratio (``goal_ratio``) or on the value (``goal_value``); either way the
chart draws it on the ratio axis, which is the one axis every row shares.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "goal_on_ratio",
    "goal_text",
    "markdown_table",
    "number",
    "text_table",
    "verdict",
    "write_chart",
]

Row = dict[str, Any]

COLOURS = {True: "#2e7d32", False: "#c62828", None: "#78909c"}
LABELS = {True: "goal met", False: "goal missed", None: "reported (no goal)"}


def verdict(row: Row) -> str:
    """``ok``, ``MISSED``, or blank for a figure the issues only asked to report."""
    return {True: "ok", False: "MISSED", None: ""}[row.get("ok")]


def number(value: float | None) -> str:
    """A figure with the digits that matter at its size; blank for none."""
    if value is None:
        return ""
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _ratio(row: Row) -> str:
    ratio = row.get("ratio")
    return "" if ratio is None or row.get("baseline") is None else f"{number(ratio)}x"


def goal_on_ratio(row: Row) -> float | None:
    """The goal as a ceiling on the ratio, where the chart draws it; None without one."""
    if row.get("goal_ratio") is not None:
        return float(row["goal_ratio"])
    baseline = row.get("baseline")
    if row.get("goal_value") is not None and baseline:
        return float(row["goal_value"]) / float(baseline)
    return None


def goal_text(row: Row) -> str:
    """The goal as the issue words it, and which issue: ``<= 1.15x (#2)``."""
    goal = str(row.get("goal") or "")
    issue = row.get("issue")
    return f"{goal} (#{issue})" if goal and issue else goal


def _cells(row: Row) -> list[str]:
    return [
        row["name"],
        number(row.get("value")),
        number(row.get("baseline")),
        _ratio(row),
        goal_text(row),
        verdict(row),
        str(row.get("baseline_name") or ""),
    ]


HEADER = ["benchmark", "value", "baseline", "ratio", "goal (issue)", "", "baseline is (same run)"]


def text_table(rows: Sequence[Row], elapsed: float | None = None) -> str:
    """Fixed-width columns for the terminal; the total time at the end when given."""
    table = [HEADER, *(_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    right = {1, 2, 3}
    lines = []
    for line in table:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "-" * len(lines[0]))
    if elapsed is not None:
        lines.append(f"\ntotal: {_duration(elapsed)}")
    return "\n".join(lines)


def markdown_table(rows: Sequence[Row], elapsed: float | None = None) -> str:
    """The same table in GitHub markdown, for the README to quote."""
    lines = [
        "| benchmark | value | baseline (same run) | ratio | goal (issue) | |",
        "|---|---:|---|---:|---|---|",
    ]
    for row in rows:
        name, value, baseline, ratio, goal, ok, baseline_name = (
            _escape(cell) for cell in _cells(row)
        )
        described = f"{baseline}: {baseline_name}" if baseline else baseline_name
        ok = "**MISSED**" if ok == "MISSED" else ok
        lines.append(f"| {name} | {value} | {described} | {ratio} | {goal} | {ok} |")
    if elapsed is not None:
        lines.append(f"\nTotal time: {_duration(elapsed)}.")
    return "\n".join(lines) + "\n"


def _escape(cell: str) -> str:
    """A cell as text: pipes would split it, ``<word`` would read as an HTML tag."""
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", cell.replace("|", "\\|"))


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def write_chart(rows: Sequence[Row], path: Path, title: str = "make bench") -> int:
    """A horizontal bar per row with a baseline: its ratio, on a log axis, with the goal
    drawn as a marker and the bar coloured by its verdict. Returns the bars drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.artist import Artist
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, LogLocator

    charted = [row for row in rows if row.get("baseline") and row.get("ratio")]
    height = 1.6 + 0.32 * max(1, len(charted))
    figure, axes = plt.subplots(figsize=(12, height), dpi=110)
    try:
        positions = list(range(len(charted)))[::-1]  # the first row at the top
        ratios = [float(row["ratio"]) for row in charted]
        axes.barh(
            positions,
            ratios,
            color=[COLOURS[row.get("ok")] for row in charted],
            height=0.7,
        )
        goals = [(p, goal_on_ratio(row)) for p, row in zip(positions, charted, strict=True)]
        marked = [(p, g) for p, g in goals if g is not None]
        if marked:
            axes.scatter(
                [g for _, g in marked],
                [p for p, _ in marked],
                marker="|",
                s=260,
                linewidths=2.5,
                color="black",
                zorder=3,
            )
        for (position, goal), ratio in zip(goals, ratios, strict=True):
            axes.annotate(
                f"{number(ratio)}x",
                (max(ratio, goal or 0.0), position),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
        axes.set_yticks(positions, [_short(row["name"]) for row in charted], fontsize=7)
        axes.set_ylim(-0.6, len(charted) - 0.4)
        axes.set_xscale("log")
        axes.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 3.0)))
        axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}x"))
        values = ratios + [g for _, g in marked]
        if values:
            axes.set_xlim(min(values) / 2, max(values) * 3)
        axes.axvline(1.0, color="#9e9e9e", linewidth=0.8, linestyle="--", zorder=0)
        axes.set_xlabel("measured / baseline (log scale; dashed: equal to the baseline)")
        axes.set_title(title, fontsize=10)
        axes.grid(axis="x", which="both", color="#eeeeee", linewidth=0.5)
        axes.set_axisbelow(True)
        legend: list[Artist] = [
            Patch(color=COLOURS[key], label=LABELS[key]) for key in (True, False, None)
        ]
        legend.append(
            Line2D([], [], marker="|", linestyle="", color="black", markersize=12, label="goal")
        )
        figure.legend(
            handles=legend, loc="lower center", ncol=len(legend), fontsize=7, frameon=False
        )
        figure.tight_layout(rect=(0, 0.35 / height, 1, 1))
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path)
    finally:
        plt.close(figure)
    return len(charted)


def _short(name: str, width: int = 95) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"
