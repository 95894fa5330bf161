"""A bounded fuzzing run of the sniffer and the header validators, as CI's share of fuzzing.

The run is capped by libFuzzer itself (``-max_total_time``, ``-rss_limit_mb``, a per-input
``-timeout``), so CI pays about half a minute. A crash, a timeout, an out-of-memory or a
leak leaves an artifact; its bytes are printed in the failure so it can become a case in
``test_regressions.py``.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 30
ARTIFACTS = ("crash-", "timeout-", "oom-", "leak-", "slow-unit-")


@pytest.mark.slow
def test_a_bounded_fuzzing_run_finds_no_crash(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.hardening.fuzz_sniffer",
            f"-max_total_time={SECONDS}",
            "-rss_limit_mb=2048",
            "-max_len=65536",
            "-timeout=20",
            "-print_final_stats=1",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    found = sorted(p for p in tmp_path.iterdir() if p.name.startswith(ARTIFACTS))
    report = "\n".join(
        f"{p.name}: {base64.b64encode(p.read_bytes()[:4096]).decode()}" for p in found
    )
    tail = "\n".join(result.stderr.splitlines()[-40:])
    assert not found, f"{report}\n{tail}"
    assert result.returncode == 0, tail
    executed = re.search(r"stat::number_of_executed_units:\s*(\d+)", result.stderr)
    rate = re.search(r"stat::average_exec_per_sec:\s*(\d+)", result.stderr)
    assert executed, tail
    assert rate, tail
    print(f"fuzzed {executed[1]} inputs in {SECONDS} s ({rate[1]}/s)")
    assert int(executed[1]) > 0
