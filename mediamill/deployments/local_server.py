"""A local Prefect server that the CLI starts once and reuses.

Prefect's ephemeral mode starts and kills a temporary SQLite-backed server inside every
command: ~7 s of start-up each time, and writes still in flight at exit end in
``database is locked`` tracebacks. Instead, when no ``PREFECT_API_URL`` is configured,
mediamill runs one server under ``MEDIAMILL_HOME/prefect`` in the background, reuses it
across commands (its UI shows every run), and stops it on ``mediamill server stop``.

This module must not import Prefect: it sets the environment Prefect reads at import.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mediamill.processes import pid_running
from mediamill.settings import Settings

STARTUP_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0
SERVER_NICENESS = 10

# Quiet, local-only server: no telemetry, no remote UI assets, logs in a file.
SERVER_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
}


@dataclass(frozen=True)
class ServerInfo:
    """Where a running local server listens."""

    pid: int
    port: int

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def prefect_home(settings: Settings) -> Path:
    """Prefect's own state (database, profiles, results) lives beside the catalog."""
    return settings.home / "prefect"


def _state_file(settings: Settings) -> Path:
    return prefect_home(settings) / "server.json"


def _log_file(settings: Settings) -> Path:
    return prefect_home(settings) / "server.log"


def _healthy(api_url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def running_server(settings: Settings) -> ServerInfo | None:
    """The local server recorded under HOME, if it is alive and answering."""
    try:
        state = json.loads(_state_file(settings).read_text())
        info = ServerInfo(pid=int(state["pid"]), port=int(state["port"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pid_running(info.pid) and _healthy(info.api_url):
        return info
    return None


def start_server(settings: Settings) -> ServerInfo:
    """Start the local server in its own session, or return the one already running."""
    existing = running_server(settings)
    if existing is not None:
        return existing
    home = prefect_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    port = settings.prefect_port if _port_free(settings.prefect_port) else _free_port()
    env = {**os.environ, **SERVER_ENV, "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    prefect_cli = Path(sys.executable).with_name("prefect")
    command = [str(prefect_cli), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    nice = shutil.which("nice")
    if nice is not None:
        # Bookkeeping yields to pixel work: runs never wait on the server for task states
        # (the client reports them as events), so it can catch up in the gaps.
        command = [nice, "-n", str(SERVER_NICENESS), *command]
    with _log_file(settings).open("ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=home,
            start_new_session=True,
        )
    info = ServerInfo(pid=process.pid, port=port)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the local Prefect server exited with code {process.returncode}; "
                f"see {_log_file(settings)}"
            )
        if _healthy(info.api_url):
            _state_file(settings).write_text(json.dumps({"pid": info.pid, "port": info.port}))
            return info
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGTERM)
    raise RuntimeError(f"the local Prefect server did not answer within {STARTUP_TIMEOUT_S:.0f} s")


def stop_server(settings: Settings) -> bool:
    """Stop the recorded local server and its children; False if none was running."""
    state_file = _state_file(settings)
    try:
        pid = int(json.loads(state_file.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    stopped = False
    if pid_running(pid):
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while pid_running(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.1)
        if pid_running(pid):
            os.killpg(pid, signal.SIGKILL)
        stopped = True
    state_file.unlink(missing_ok=True)
    return stopped


def _reap(pid: int) -> None:
    """Collect the exit status when the server is our own child, so it does not linger."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def configure_prefect_environment(settings: Settings, *, start: bool) -> str | None:
    """Point Prefect at an API before it is imported; returns the API URL in use.

    An explicit ``PREFECT_API_URL`` (a shared server in production, the test harness) wins.
    Otherwise the local server is reused, or started when ``start`` is true.
    """
    os.environ.setdefault("PREFECT_HOME", str(prefect_home(settings)))
    # The CLI shows its own progress; Prefect's per-task console lines still reach the UI.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        return configured
    info = start_server(settings) if start else running_server(settings)
    if info is None:
        return None
    os.environ["PREFECT_API_URL"] = info.api_url
    return info.api_url
