"""Start the flow an accepted API event asks for, and answer with its Prefect run id.

Two ways, chosen by ``MEDIAMILL_DISPATCH``:

- ``deployments``: create a flow run of the deployment (``ingest-upload``,
  ``entity-cleanup``) on the Prefect server; a worker of the work pool runs it. The
  event id is the run's idempotency key, so a redelivery never makes a second run.
- ``embedded``: create the flow run, then run it on a thread of this process. For a
  laptop or a test, where no worker is running.

``auto`` picks ``deployments`` when ``PREFECT_API_URL`` points at a server, else
``embedded``. The run is created before the response is sent, so the caller gets its id.
"""

from __future__ import annotations

import logging
import os
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from mediamill.settings import Settings

logger = logging.getLogger(__name__)

INGEST_UPLOAD_DEPLOYMENT = "ingest-upload/ingest-upload"
ENTITY_CLEANUP_DEPLOYMENT = "entity-cleanup/entity-cleanup"


@dataclass(frozen=True)
class UploadJob:
    """Parameters of one ``ingest-upload`` run."""

    workspace: str
    media_id: str
    key: str | None = None
    url: str | None = None
    filename: str | None = None
    user: str | None = None
    entity: str | None = None
    alt: str | None = None


@dataclass(frozen=True)
class CleanupJob:
    """Parameters of one ``entity-cleanup`` run."""

    workspace: str
    entity: str
    actor: str | None = None


class DispatchError(RuntimeError):
    """The run could not be started; the caller answers 503 so the sender retries."""


class Dispatcher(Protocol):
    """Starts flows for the API."""

    def ingest_upload(self, job: UploadJob, idempotency_key: str) -> uuid.UUID: ...

    def entity_cleanup(self, job: CleanupJob, idempotency_key: str) -> uuid.UUID: ...

    def close(self) -> None: ...


class DeploymentDispatcher:
    """Creates flow runs of the served deployments; workers pick them up."""

    def __init__(self) -> None:
        self._deployment_ids: dict[str, uuid.UUID] = {}

    def _run(self, deployment: str, parameters: dict[str, Any], idempotency_key: str) -> uuid.UUID:
        from prefect.client.orchestration import get_client

        try:
            with get_client(sync_client=True) as client:
                if deployment not in self._deployment_ids:
                    self._deployment_ids[deployment] = client.read_deployment_by_name(deployment).id
                run = client.create_flow_run_from_deployment(
                    self._deployment_ids[deployment],
                    parameters=parameters,
                    idempotency_key=idempotency_key,
                )
        except Exception as error:
            raise DispatchError(f"could not start {deployment}: {error}") from error
        return run.id

    def ingest_upload(self, job: UploadJob, idempotency_key: str) -> uuid.UUID:
        return self._run(INGEST_UPLOAD_DEPLOYMENT, asdict(job), idempotency_key)

    def entity_cleanup(self, job: CleanupJob, idempotency_key: str) -> uuid.UUID:
        return self._run(ENTITY_CLEANUP_DEPLOYMENT, asdict(job), idempotency_key)

    def close(self) -> None:
        return None


class EmbeddedDispatcher:
    """Creates flow runs and runs them on this process's threads."""

    def __init__(self, threads: int = 2) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mediamill-run")
        self.pending: list[Future[Any]] = []

    def _run(self, flow: Any, parameters: dict[str, Any]) -> uuid.UUID:
        from prefect.client.orchestration import get_client
        from prefect.states import Pending

        try:
            with get_client(sync_client=True) as client:
                run = client.create_flow_run(flow, parameters=parameters, state=Pending())
        except Exception as error:
            raise DispatchError(f"could not start {flow.name}: {error}") from error
        self.pending = [f for f in self.pending if not f.done()]
        self.pending.append(self._executor.submit(_execute, flow, run, parameters))
        return run.id

    def ingest_upload(self, job: UploadJob, idempotency_key: str) -> uuid.UUID:
        from mediamill.flows.uploads import ingest_upload

        return self._run(ingest_upload, asdict(job))

    def entity_cleanup(self, job: CleanupJob, idempotency_key: str) -> uuid.UUID:
        from mediamill.flows.lifecycle import entity_cleanup

        return self._run(entity_cleanup, asdict(job))

    def wait(self, timeout: float | None = None) -> None:
        """Block until every run started so far has finished (tests, shutdown)."""
        for future in list(self.pending):
            future.exception(timeout=timeout)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=False)


def _execute(flow: Any, run: Any, parameters: dict[str, Any]) -> None:
    """Run one flow run to its end; its failure is recorded by Prefect, not raised here."""
    from prefect.flow_engine import run_flow

    try:
        run_flow(flow, flow_run=run, parameters=parameters, return_type="state")
    except BaseException:
        logger.exception("flow run %s crashed", run.id)


def make_dispatcher(settings: Settings) -> Dispatcher:
    """The dispatcher ``MEDIAMILL_DISPATCH`` asks for."""
    mode = settings.dispatch
    if mode == "auto":
        mode = "deployments" if os.environ.get("PREFECT_API_URL") else "embedded"
    if mode == "deployments":
        return DeploymentDispatcher()
    return EmbeddedDispatcher()
