"""How long this machine keeps a ready process off the CPU: the floor under every p99.

A process spins on the clock and records each gap between two readings longer than
``--gap-ms``: time it was ready to run and did not. It runs twice for ``--seconds``: once
with the other core idle (one busy core), then beside a second spinning process (both cores
busy, as under the API's closed-loop load lines or a backfill). A stall of ``S`` ms during a
load line delays every request in flight by up to ``S``; a few per 10 s line put the p99 of
a line with ~4,000 answers above ``S``, whatever the server does.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from pathlib import Path
from typing import Any

from bench.rows import report

# Gaps shorter than this are ordinary preemption by short kernel work.
GAP_MS = 5.0
# What a line must stay under (the API issue's p99 goal): stalls this long are counted apart.
LONG_MS = 50.0


def stalls(seconds: float, gap_ms: float = GAP_MS) -> list[float]:
    """Every gap longer than ``gap_ms`` (in ms) between two clock readings of a busy loop."""
    gaps = []
    threshold = gap_ms / 1000
    last = started = time.perf_counter()
    while (now := time.perf_counter()) - started < seconds:
        if now - last > threshold:
            gaps.append((now - last) * 1000)
        last = now
    return gaps


def _spin(seconds: float) -> None:
    """The other core's load: a loop that never sleeps."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def with_other_core_busy(seconds: float, gap_ms: float = GAP_MS) -> list[float]:
    """:func:`stalls` while a second process keeps the other core busy."""
    spinner = multiprocessing.get_context("spawn").Process(target=_spin, args=(seconds + 2,))
    spinner.start()
    try:
        time.sleep(0.5)  # the spinner is running before the clock starts
        return stalls(seconds, gap_ms)
    finally:
        spinner.terminate()
        spinner.join()


def summarise(gaps: list[float], seconds: float) -> dict[str, float]:
    """Longest stall, stalls of at least LONG_MS per minute, and the share of time lost."""
    return {
        "longest_ms": round(max(gaps, default=0.0), 1),
        "long_per_minute": round(sum(1 for g in gaps if g >= LONG_MS) * 60 / seconds, 1),
        "lost_percent": round(sum(gaps) / (seconds * 1000) * 100, 2),
    }


def run(seconds: float, gap_ms: float) -> list[dict[str, Any]]:
    alone = summarise(stalls(seconds, gap_ms), seconds)
    busy = summarise(with_other_core_busy(seconds, gap_ms), seconds)
    baseline_name = f"the same, other core idle ({seconds:g} s each)"
    rows = []
    for key, name in (
        ("longest_ms", "longest stall of a busy process, both cores busy (ms)"),
        ("long_per_minute", f"stalls >= {LONG_MS:g} ms per minute, both cores busy"),
        ("lost_percent", f"time lost to stalls > {gap_ms:g} ms, both cores busy (%)"),
    ):
        value, baseline = busy[key], alone[key]
        rows.append(
            {
                "name": name,
                "value": value,
                "baseline": baseline,
                "baseline_name": baseline_name,
                # An idle-core baseline is often 0: no ratio then, only both figures.
                "ratio": round(value / baseline, 3) if baseline else None,
                "goal": "report",
                "issue": None,
                "ok": None,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each measurement")
    parser.add_argument("--gap-ms", type=float, default=GAP_MS, help="shortest gap counted")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    report(run(args.seconds, args.gap_ms), args.json)


if __name__ == "__main__":
    main()
