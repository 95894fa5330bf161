"""The ``mediamill`` command run as a user runs it: a subprocess on the test's own HOME."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

MEDIAMILL = str(Path(sys.executable).with_name("mediamill"))

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(home: Path) -> Run:
    """Run ``mediamill ARGS``; asserts the exit code unless ``check`` is None."""

    def run(*args: str, check: int | None = 0, env: dict[str, str] | None = None) -> Any:
        result = subprocess.run(
            [MEDIAMILL, *args],
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=300,
        )
        if check is not None:
            assert result.returncode == check, result.stdout + result.stderr
        return result

    return run
