"""Scale-out: a Prefect server on PostgreSQL, two process workers on one pool, a shared catalog.

Everything runs as production would: ``prefect server start`` with its database on
PostgreSQL, prefect.yaml's ``ingest-media`` deployment registered with ``prefect deploy``,
two ``prefect worker start`` processes pulling from the same work pool, and the mediamill
catalog on PostgreSQL. Each workspace may have one ingest run working at a time
(``MEDIAMILL_WORKSPACE_CONCURRENCY=1``); Prefect's own concurrency events show it held.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from mediamill.flows.fairness import workspace_limit_name
from mediamill.media import samples
from tests.deployments.test_serve import _free_port, _wait_for
from tests.services.postgres import PostgresServer

BIN = Path(sys.executable).parent
PROJECT = Path(__file__).resolve().parents[2]
POOL = "mediamill-process"
RUNS = {"acme": 4, "globex": 2}
# Runs one worker takes at once: fewer than all six, so both workers must take some.
WORKER_LIMIT = 3
# Prefect's events for a concurrency slot taken and given back.
PHASE = "prefect.concurrency-limit."


def _prefect(*args: str) -> list[str]:
    return [str(BIN / "prefect"), "--no-prompt", *args]


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Cluster:
    """The Prefect API, the workers' logs and the environment they share."""

    api: str
    env: dict[str, str]
    worker_logs: dict[str, Path]
    catalog_url: str

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, f"{self.api}{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def cluster(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("scale-out")
    prefect_db = postgres_server.new_database(driver="asyncpg")
    catalog_url = postgres_server.new_database()
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    base = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PREFECT_", "MEDIAMILL_"))
    }
    server_env = {
        **base,
        "PREFECT_HOME": str(root / "prefect-server"),
        "PREFECT_API_DATABASE_CONNECTION_URL": prefect_db,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env = {
        **base,
        "PREFECT_HOME": str(root / "prefect-client"),
        "PREFECT_API_URL": api,
        "MEDIAMILL_HOME": str(root / "home"),
        "MEDIAMILL_DATABASE_URL": catalog_url,
        "MEDIAMILL_STORAGE_URL": (root / "store").as_uri(),
        "MEDIAMILL_WORKSPACE_CONCURRENCY": "1",
        "MEDIAMILL_WORKERS": "1",
    }
    processes: list[subprocess.Popen[bytes]] = []
    with open(root / "server.log", "wb") as server_log:
        processes.append(
            subprocess.Popen(
                _prefect("server", "start", "--host", "127.0.0.1", "--port", str(port)),
                env=server_env,
                stdout=server_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    try:
        _wait_for("the Prefect server on PostgreSQL", lambda: httpx.get(f"{api}/health").is_success)
        subprocess.run(
            [str(BIN / "mediamill"), "db", "upgrade"], env=env, check=True, capture_output=True
        )
        for command in (
            _prefect("work-pool", "create", POOL, "--type", "process"),
            # Only the deployment under test: a scheduled sweep could fall due mid-test.
            _prefect("deploy", "--name", "ingest-media"),
        ):
            subprocess.run(command, cwd=PROJECT, env=env, check=True, capture_output=True)
        logs = {}
        for name in ("worker-a", "worker-b"):
            logs[name] = root / f"{name}.log"
            with open(logs[name], "wb") as log:
                processes.append(
                    subprocess.Popen(
                        _prefect(
                            "worker",
                            "start",
                            "--pool",
                            POOL,
                            "--name",
                            name,
                            "--limit",
                            str(WORKER_LIMIT),
                        ),
                        cwd=PROJECT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        cluster = Cluster(api=api, env=env, worker_logs=logs, catalog_url=catalog_url)

        def online() -> bool:
            workers = cluster.call("POST", f"/work_pools/{POOL}/workers/filter", {})
            return {w["name"] for w in workers if w["status"] == "ONLINE"} == set(logs)

        # Runs created before both poll could all go to the first; each takes at most three.
        _wait_for("both workers to come online", online)
        yield cluster
    finally:
        for process in reversed(processes):
            _stop(process)


def _ran_by(log: Path) -> set[str]:
    """Flow run ids a worker's log says it submitted and did not have to give up.

    Both workers see every scheduled run; the server lets one of them move it to pending
    and tells the other to abort its submission.
    """
    text = log.read_text()
    submitted = set(re.findall(r"submitting flow run '([0-9a-f-]{36})'", text))
    aborted = set(re.findall(r"Aborted submission of flow run '([0-9a-f-]{36})'", text))
    return submitted - aborted


def _max_held(events: list[dict[str, Any]]) -> int:
    """Replay acquired/released events in order: the most slots held at any moment."""
    held = peak = 0
    for event in sorted(events, key=lambda e: datetime.fromisoformat(e["occurred"])):
        held += 1 if event["event"].endswith(".acquired") else -1
        peak = max(peak, held)
    return peak


def test_two_workers_share_the_runs_and_each_workspace_keeps_to_its_limit(
    cluster: Cluster, tmp_path: Path
) -> None:
    deployment = cluster.call("GET", "/deployments/name/ingest-media/ingest-media")
    run_ids: list[str] = []
    for workspace, count in RUNS.items():
        for index in range(count):
            path = tmp_path / f"{workspace}-{index}.jpg"
            path.write_bytes(samples.photo_jpeg(640, 480, seed=len(run_ids)))
            run = cluster.call(
                "POST",
                f"/deployments/{deployment['id']}/create_flow_run",
                {"parameters": {"source": str(path), "workspace": workspace}},
            )
            run_ids.append(run["id"])

    def finished() -> list[dict[str, Any]] | None:
        runs = [cluster.call("GET", f"/flow_runs/{run_id}") for run_id in run_ids]
        return (
            runs
            if all(run["state"]["type"] in {"COMPLETED", "FAILED", "CRASHED"} for run in runs)
            else None
        )

    runs = _wait_for("every ingest run to finish", finished, timeout=600)
    assert [run["state"]["type"] for run in runs] == ["COMPLETED"] * len(run_ids)

    # Both workers ran runs from the one pool, and no run ran twice.
    ran = {name: _ran_by(log) & set(run_ids) for name, log in cluster.worker_logs.items()}
    assert all(ran.values()), ran
    assert set.union(*ran.values()) == set(run_ids)
    assert not set.intersection(*ran.values())

    # Every media is ready in the shared PostgreSQL catalog, in its own workspace.
    engine = sa.create_engine(cluster.catalog_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT w.slug, m.status, count(*) FROM media m "
                    "JOIN workspaces w ON w.id = m.workspace_id GROUP BY w.slug, m.status"
                )
            ).all()
    finally:
        engine.dispose()
    assert {(slug, status): count for slug, status, count in rows} == {
        ("acme", "ready"): RUNS["acme"],
        ("globex", "ready"): RUNS["globex"],
    }

    # Each workspace's limit was taken once per run and never held twice at once.
    for workspace, count in RUNS.items():
        name = workspace_limit_name(workspace)

        def events(name: str = name, count: int = count) -> list[dict[str, Any]] | None:
            page = cluster.call(
                "POST",
                "/events/filter",
                {
                    "filter": {
                        "event": {"name": [f"{PHASE}acquired", f"{PHASE}released"]},
                        "resource": {"labels": {"prefect.resource.name": [name]}},
                    },
                    "limit": 50,
                },
            )
            found: list[dict[str, Any]] = page["events"]
            return found if len(found) == 2 * count else None

        seen = _wait_for(f"the concurrency events of {workspace}", events, timeout=120)
        assert sum(e["event"].endswith(".acquired") for e in seen) == count
        assert _max_held(seen) == 1
        limit = cluster.call("POST", "/v2/concurrency_limits/filter", {})
        assert {item["name"]: item["limit"] for item in limit}[name] == 1
