"""``mediamill serve`` against a real Prefect server: deployments, an event trigger, a worker.

Everything runs as a user would run it: the command in a subprocess, the server it starts,
``prefect deploy --all`` from prefect.yaml, a process worker, and an event emitted with
Prefect's own CLI.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediamill.api.signatures import sign
from mediamill.deployments import local_server, serve
from mediamill.media import samples
from mediamill.settings import get_settings
from mediamill.storage.factory import open_store

BIN = Path(sys.executable).parent
WAIT_S = 240.0
# What Ctrl-C may take by design: the children's grace period, then the server's, then exit.
STOP_BUDGET_S = serve.STOP_TIMEOUT_S + local_server.STOP_TIMEOUT_S + 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _hear_ctrl_c() -> None:
    """In the child before exec: SIGINT back to its default, which Python turns into Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for(what: str, probe: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = probe()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


class Served:
    """A running ``mediamill serve`` and the API of the server it started."""

    def __init__(
        self, process: subprocess.Popen[bytes], api: str, env: dict[str, str], mediamill: str
    ):
        self.process = process
        self.api = api
        self.env = env
        self.mediamill = mediamill  # the mediamill API that `serve` started

    def post(self, path: str, body: dict[str, Any]) -> Any:
        response = httpx.post(f"{self.api}{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def deployment(self, name: str) -> dict[str, Any] | None:
        found = self.post("/deployments/filter", {"deployments": {"name": {"any_": [name]}}})
        return found[0] if found else None

    def finished_runs(self, deployment_id: str) -> list[dict[str, Any]]:
        runs = self.post(
            "/flow_runs/filter",
            {"flow_runs": {"deployment_id": {"any_": [deployment_id]}}},
        )
        return [run for run in runs if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED")]

    def prefect(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "prefect"), *args],
            env={**self.env, "PREFECT_API_URL": self.api},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    home = tmp_path / "home"
    port = _free_port()
    api_port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "MEDIAMILL_"))
    }
    env |= {
        "MEDIAMILL_HOME": str(home),
        "MEDIAMILL_PREFECT_PORT": str(port),
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_WORKER_PREFETCH_SECONDS": "2",
        # Answers wait for their run, so the webhook test can compare run ids.
        "MEDIAMILL_DISPATCH_WAIT_MS": "60000",
    }
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [str(BIN / "mediamill"), "serve", "--api-port", str(api_port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # As in a terminal: a test run started in the background (`make test &`) inherits
        # SIGINT ignored, and so would `serve`, which then could not be stopped by Ctrl-C.
        preexec_fn=_hear_ctrl_c,
    )
    running = Served(process, f"http://127.0.0.1:{port}/api", env, f"http://127.0.0.1:{api_port}")
    try:
        _wait_for("the deployments", lambda: running.deployment("backfill"))
        _wait_for(
            "the API", lambda: httpx.get(f"{running.mediamill}/healthz", timeout=2).is_success
        )
        yield running
    finally:
        if process.poll() is None:
            # SIGTERM lets `serve` stop the worker and the API it started (each in a process
            # group of its own); SIGKILL only if it does not exit.
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_BUDGET_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        subprocess.run(
            [str(BIN / "mediamill"), "server", "stop"], env=env, capture_output=True, check=False
        )
        log.close()


def _left(served: Served) -> str:
    """The processes of this serve still alive, with their state, for a failure message."""
    try:
        listing = subprocess.run(
            ["ps", "-eo", "pid,ppid,pgid,stat,etime,args"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.splitlines()
    except FileNotFoundError:
        return "(no ps on this machine to list them)"
    home = served.env["MEDIAMILL_HOME"]
    mine = [row for row in listing[1:] if home in row or str(served.process.pid) in row.split()]
    return "\n".join([*listing[:1], *mine])


def _media(home: Path) -> list[dict[str, Any]]:
    listed = subprocess.run(
        [str(BIN / "mediamill"), "media", "list", "-w", "acme", "--json"],
        env={**os.environ, "MEDIAMILL_HOME": str(home)},
        capture_output=True,
        text=True,
        check=True,
    )
    records: list[dict[str, Any]] = json.loads(listed.stdout)
    return records


def test_an_upload_event_triggers_an_ingest_and_ctrl_c_stops_everything(
    served: Served, tmp_path: Path
) -> None:
    upload = tmp_path / "upload-7f3a.jpg"
    upload.write_bytes(samples.photo_jpeg(640, 480, seed=5))
    deployment = served.deployment("ingest-media")
    assert deployment is not None

    payload = {"path": str(upload), "workspace": "acme", "filename": "red shoe.jpg"}
    served.prefect(
        "event",
        "emit",
        "mediamill.upload.received",
        "--resource-id",
        "mediamill.upload.7f3a",
        "--payload",
        json.dumps(payload),
    )

    (run,) = _wait_for("the triggered run", lambda: served.finished_runs(deployment["id"]))
    assert run["state_type"] == "COMPLETED", run
    assert run["parameters"]["workspace"] == "acme"
    assert run["parameters"]["filename"] == "red shoe.jpg"
    assert run["parameters"]["entity"] is None
    (media,) = _media(Path(served.env["MEDIAMILL_HOME"]))
    assert (media["filename"], media["status"]) == ("red shoe.jpg", "ready")

    served.process.send_signal(signal.SIGINT)
    try:
        code = served.process.wait(timeout=STOP_BUDGET_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"serve still running {STOP_BUDGET_S:.0f} s after Ctrl-C:\n{_left(served)}")
    assert code == 0
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{served.api}/health", timeout=2)


def test_deployments_run_on_demand_and_sweeps_carry_their_schedules(
    served: Served, tmp_path: Path
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    for seed in range(2):
        (folder / f"{seed}.jpg").write_bytes(samples.photo_jpeg(320, 240, seed=seed))
    deployment = served.deployment("backfill")
    assert deployment is not None

    served.prefect(
        "deployment",
        "run",
        "backfill/backfill",
        "--param",
        f"source={folder}",
        "--param",
        "workspace=acme",
    )

    (run,) = _wait_for("the backfill run", lambda: served.finished_runs(deployment["id"]))
    assert run["state_type"] == "COMPLETED", run
    assert len(_media(Path(served.env["MEDIAMILL_HOME"]))) == 2

    sweep = served.deployment("orphan-sweep")
    assert sweep is not None
    assert [s["schedule"]["cron"] for s in sweep["schedules"]] == ["0 * * * *"]
    served.prefect("deployment", "run", "orphan-sweep/orphan-sweep", "--param", "dry_run=true")
    (swept,) = _wait_for("the sweep run", lambda: served.finished_runs(sweep["id"]))
    assert swept["state_type"] == "COMPLETED", swept
    assert swept["parameters"]["dry_run"] is True
    assert len(_media(Path(served.env["MEDIAMILL_HOME"]))) == 2


def test_a_signed_upload_webhook_runs_the_ingest_upload_deployment(served: Served) -> None:
    home = Path(served.env["MEDIAMILL_HOME"])
    secret = subprocess.run(
        [str(BIN / "mediamill"), "webhook-secret", "create", "-w", "acme"],
        env=served.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    store = open_store(get_settings(home=home))
    store.put(
        "incoming/acme/red shoe.jpg",
        samples.photo_jpeg(640, 480, seed=7),
        content_type="image/jpeg",
        cache_control="private, no-store",
    )
    body = json.dumps(
        {
            "id": "evt_1",
            "type": "upload.completed",
            "workspace": "acme",
            "key": "incoming/acme/red shoe.jpg",
        }
    ).encode()
    headers = {"Mediamill-Signature": sign(secret, body, int(time.time()))}

    accepted = httpx.post(f"{served.mediamill}/webhooks/uploads", content=body, headers=headers)
    again = httpx.post(f"{served.mediamill}/webhooks/uploads", content=body, headers=headers)

    assert accepted.status_code == 202, accepted.text
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    run_id = accepted.json()["run_id"]
    deployment = served.deployment("ingest-upload")
    assert deployment is not None
    (run,) = _wait_for("the upload run", lambda: served.finished_runs(deployment["id"]))
    assert (run["id"], run["state_type"]) == (run_id, "COMPLETED"), run
    (media,) = _media(home)
    assert media["id"] == accepted.json()["media_id"]
    assert (media["filename"], media["status"]) == ("red shoe.jpg", "ready")
    assert not store.exists("incoming/acme/red shoe.jpg")
