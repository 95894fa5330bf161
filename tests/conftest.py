"""Shared fixtures: an isolated MEDIAMILL_HOME per test, one Prefect test server per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Embedded defaults (SQLite + file store) under a fresh MEDIAMILL_HOME."""
    path = tmp_path / "home"
    monkeypatch.setenv("MEDIAMILL_HOME", str(path))
    for name in list(os.environ):
        if name.startswith("MEDIAMILL_") and name != "MEDIAMILL_HOME":
            monkeypatch.delenv(name)
    return path


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """A real Prefect server for the session; subprocesses reach it through the env too."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    # The server's telemetry cannot reach the internet here; its failing retries held
    # SQLite's write lock and stalled flow runs for up to a minute.
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    with prefect_test_harness(server_startup_timeout=120):
        url = PREFECT_API_URL.value()
        previous = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = url
        try:
            yield url
        finally:
            if previous is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = previous
