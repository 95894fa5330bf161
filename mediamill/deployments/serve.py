"""``mediamill serve``: a Prefect server, every deployment of prefect.yaml, a worker, the API.

The deployments are registered with Prefect's own ``prefect deploy --all``, so what runs
locally is exactly what a production server gets from the same file: schedules, event
triggers and the process work pool. The API (``mediamill api``) starts its runs as
deployment runs, which the worker picks up. Ctrl-C stops the API and the worker, and the
server too when this command started it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mediamill.deployments.local_server import (
    configure_prefect_environment,
    running_server,
    stop_server,
)
from mediamill.settings import Settings

WORK_POOL = "mediamill-process"
STOP_TIMEOUT_S = 20.0


class ServeError(RuntimeError):
    """Serving cannot start: no prefect.yaml, or Prefect refused the deployments."""


@dataclass(frozen=True)
class Served:
    """What ``prepare`` set up: the API, the project folder and who owns the server."""

    api_url: str
    project: Path
    started_server: bool


def project_root() -> Path:
    """The checkout holding prefect.yaml; the package is installed from it in editable mode."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "prefect.yaml").is_file():
        raise ServeError(f"no prefect.yaml in {root}: run mediamill serve from a checkout")
    return root


def _prefect(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("prefect")), "--no-prompt", *args]


def _run(command: list[str], project: Path, what: str) -> None:
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise ServeError(f"{what} failed: " + " | ".join(detail))


def prepare(settings: Settings) -> Served:
    """Start or reuse the server, create the work pool, and deploy every deployment."""
    project = project_root()
    own_server = not os.environ.get("PREFECT_API_URL") and running_server(settings) is None
    api_url = configure_prefect_environment(settings, start=True)
    assert api_url is not None
    pools = subprocess.run(
        _prefect("work-pool", "inspect", WORK_POOL),
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    if pools.returncode != 0:
        _run(
            _prefect("work-pool", "create", WORK_POOL, "--type", "process"),
            project,
            f"creating work pool {WORK_POOL}",
        )
    _run(_prefect("deploy", "--all"), project, "prefect deploy --all")
    return Served(api_url=api_url, project=project, started_server=own_server)


def start_worker(served: Served) -> subprocess.Popen[bytes]:
    """A process worker on the pool, in its own process group so it can be stopped whole."""
    return subprocess.Popen(
        _prefect("worker", "start", "--pool", WORK_POOL, "--type", "process"),
        cwd=served.project,
        start_new_session=True,
    )


def start_api(served: Served, host: str, port: int) -> subprocess.Popen[bytes]:
    """``mediamill api``, creating deployment runs on the served Prefect server."""
    env = {**os.environ, "PREFECT_API_URL": served.api_url, "MEDIAMILL_DISPATCH": "deployments"}
    command = [str(Path(sys.executable).with_name("mediamill")), "api", "--host", host]
    return subprocess.Popen(
        [*command, "--port", str(port)], cwd=served.project, env=env, start_new_session=True
    )


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process group at once, then SIGKILL whatever is left after the grace.

    All at once, so Ctrl-C waits for the slowest child, not for the sum of them.
    """
    running = [process for process in processes if process.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def serve(
    settings: Settings,
    announce: Callable[[str], None],
    api_host: str = "127.0.0.1",
    api_port: int = 8000,
) -> int:
    """Run until Ctrl-C (or SIGTERM); a non-zero exit code if the worker or the API died."""
    served = prepare(settings)
    announce(f"Deployments registered with {served.api_url} from {served.project / 'prefect.yaml'}")
    announce(f"Prefect UI: {served.api_url.removesuffix('/api')}; worker on pool {WORK_POOL}")
    announce(f"API: http://{api_host}:{api_port} (picker: /library, GraphQL: /graphql)")
    children = [start_worker(served), start_api(served, api_host, api_port)]

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        return next(child.returncode for child in children if child.returncode is not None)
    except KeyboardInterrupt:
        announce("Stopping the API and the worker")
        return 0
    finally:
        stop_processes(children)
        signal.signal(signal.SIGTERM, previous)
        if served.started_server:
            announce("Stopping the Prefect server this command started")
            stop_server(settings)
