"""The one table of ``make bench``: text, markdown and chart from rows of the common shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.__main__ import write_results
from bench.table import goal_on_ratio, markdown_table, number, text_table, write_chart

ROWS: list[dict[str, Any]] = [
    {
        "name": "JPEG + WebP variants of a 12 MP JPEG, one core (s)",
        "value": 0.174,
        "baseline": 0.435,
        "baseline_name": "naive Pillow",
        "ratio": 0.4,
        "goal": "<= 0.45x",
        "goal_ratio": 0.45,
        "issue": 2,
        "ok": True,
    },
    {
        "name": "recentMedia(first: 20, after: <middle cursor>) p99, sqlite, 1,000,000 media (ms)",
        "value": 122.0,
        "baseline": 22.0,
        "baseline_name": "GET /healthz p99 | same load",
        "ratio": 5.546,
        "goal": "p99 < 50 ms",
        "goal_value": 50.0,
        "issue": 5,
        "ok": False,
    },
    {
        "name": "purge of every workspace, sqlite, 1,000,000 media (s)",
        "value": 2.5,
        "baseline": 0.25,
        "baseline_name": "same, 10,000-media catalog seeded alike",
        "ratio": 10.0,
        "goal": "report",
        "ok": None,
    },
    {
        "name": "a figure without a baseline (s)",
        "value": 1.0,
        "baseline": None,
        "baseline_name": "",
        "ratio": None,
        "goal": "",
        "ok": None,
    },
]


def test_goal_sits_on_the_ratio_axis_whether_set_on_ratio_or_value() -> None:
    assert goal_on_ratio(ROWS[0]) == 0.45
    assert goal_on_ratio(ROWS[1]) == 50.0 / 22.0
    assert goal_on_ratio(ROWS[2]) is None
    assert goal_on_ratio(ROWS[3]) is None


def test_number_keeps_the_digits_that_matter() -> None:
    assert number(0.17371) == "0.174"
    assert number(2.9812) == "2.98"
    assert number(30.17) == "30.2"
    assert number(1234.5) == "1,234"
    assert number(None) == ""


def test_text_table_has_every_row_with_baseline_goal_and_verdict() -> None:
    text = text_table(ROWS, elapsed=754)
    lines = text.splitlines()
    assert lines[0].split()[:5] == ["benchmark", "value", "baseline", "ratio", "goal"]
    assert "goal (issue)" in lines[0]
    for row in ROWS:
        assert row["name"] in text
    recent = next(line for line in lines if line.startswith("recentMedia"))
    assert "122" in recent
    assert "5.55x" in recent
    assert "p99 < 50 ms (#5)" in recent
    assert "MISSED" in recent
    assert "GET /healthz" in recent
    assert "ok" in lines[2]
    assert text.endswith("total: 12 min 34 s")


def test_markdown_table_is_one_line_per_row_and_escapes_pipes() -> None:
    markdown = markdown_table(ROWS, elapsed=59)
    lines = markdown.splitlines()
    assert lines[0].startswith("| benchmark |")
    body = [line for line in lines[2:] if line.startswith("|")]
    assert len(body) == len(ROWS)
    assert all(line.count(" | ") == 5 for line in body)
    assert "GET /healthz p99 \\| same load" in body[1]
    assert "**MISSED**" in body[1]
    assert "after: &lt;middle cursor>" in body[1]
    assert "&lt;=" not in markdown
    assert "0.435: naive Pillow" in body[0]
    assert "<= 0.45x (#2)" in body[0]
    assert "Total time: 59 s." in markdown


def test_chart_draws_a_bar_per_row_with_a_baseline(tmp_path: Path) -> None:
    path = tmp_path / "chart.png"
    assert write_chart(ROWS, path) == 3
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 10_000


def test_results_are_written_side_by_side(tmp_path: Path) -> None:
    write_results(ROWS, 120.0, {"bench_video": 60.0}, tmp_path)
    assert json.loads((tmp_path / "latest.json").read_text()) == ROWS
    markdown = (tmp_path / "latest.md").read_text()
    assert "Total time: 2 min 00 s." in markdown
    assert "bench_video 60 s" in markdown
    assert (tmp_path / "latest.png").stat().st_size > 0
