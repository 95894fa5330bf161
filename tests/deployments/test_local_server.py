"""The local Prefect server the CLI starts once and reuses: a real server process."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mediamill.deployments import local_server
from mediamill.settings import Settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    # configure_prefect_environment writes these; monkeypatch restores them afterwards.
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-client"))
    monkeypatch.setenv("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    return Settings(home=tmp_path / "home", prefect_port=_free_port())


def test_start_reuse_and_stop(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert local_server.running_server(settings) is None
    try:
        started = local_server.start_server(settings)
        assert started.port == settings.prefect_port
        assert local_server.running_server(settings) == started
        assert local_server.start_server(settings) == started  # reused, not a second one

        url = local_server.configure_prefect_environment(settings, start=False)
        assert url == started.api_url
    finally:
        stopped = local_server.stop_server(settings)
    assert stopped
    assert local_server.running_server(settings) is None
    assert not local_server.stop_server(settings)


def test_an_explicit_api_url_wins(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:1/api")
    assert local_server.configure_prefect_environment(settings, start=True) == (
        "http://127.0.0.1:1/api"
    )
    assert local_server.running_server(settings) is None


def test_a_busy_port_moves_the_server_elsewhere(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", settings.prefect_port))
        squatter.listen()
        try:
            started = local_server.start_server(settings)
            assert started.port != settings.prefect_port
        finally:
            local_server.stop_server(settings)
