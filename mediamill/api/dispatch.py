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
import math
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait as wait_for_all
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from mediamill.settings import Settings

logger = logging.getLogger(__name__)
# Run starts the launcher remembers to judge whether an answer should wait for the next.
RECENT_STARTS = 16
# Bounds of the Retry-After a refusal suggests: its estimate of the backlog's drain time.
MIN_RETRY_AFTER_SECONDS = 1
MAX_RETRY_AFTER_SECONDS = 300

INGEST_UPLOAD_DEPLOYMENT = "ingest-upload/ingest-upload"
ENTITY_CLEANUP_DEPLOYMENT = "entity-cleanup/entity-cleanup"
# The kinds of job an accepted event starts, as a delivery keeps them until the run exists.
INGEST_UPLOAD = "ingest-upload"
ENTITY_CLEANUP = "entity-cleanup"


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
    """The run could not be started; the caller answers 503 so the sender retries.

    ``retry_after`` is the seconds the sender should wait, when there is an estimate.
    """

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Dispatcher(Protocol):
    """Starts flows for the API."""

    def ingest_upload(self, job: UploadJob, idempotency_key: str) -> uuid.UUID: ...

    def entity_cleanup(self, job: CleanupJob, idempotency_key: str) -> uuid.UUID: ...

    def close(self) -> None: ...


class _PrefectClient:
    """One Prefect API client for the process, opened on first use.

    A client per call costs a connection and a version check each time: most of a run's
    creation time when the server is idle. httpx's client is safe to share between threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._client: Any = None

    def get(self) -> Any:
        with self._lock:
            if self._client is None:
                from prefect.client.orchestration import get_client

                client = get_client(sync_client=True)
                client.__enter__()
                self._client = client
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.__exit__(None, None, None)
                self._client = None


class DeploymentDispatcher:
    """Creates flow runs of the served deployments (one API call each); workers run them."""

    def __init__(self) -> None:
        self._deployment_ids: dict[str, uuid.UUID] = {}
        self._client = _PrefectClient()

    def _run(self, deployment: str, parameters: dict[str, Any], idempotency_key: str) -> uuid.UUID:
        try:
            client = self._client.get()
            if deployment not in self._deployment_ids:
                self._deployment_ids[deployment] = client.read_deployment_by_name(deployment).id
            run = client.create_flow_run_from_deployment(
                self._deployment_ids[deployment],
                parameters=parameters,
                idempotency_key=idempotency_key,
            )
        except Exception as error:
            raise DispatchError(f"could not start {deployment}: {error}") from error
        return uuid.UUID(str(run.id))

    def ingest_upload(self, job: UploadJob, idempotency_key: str) -> uuid.UUID:
        return self._run(INGEST_UPLOAD_DEPLOYMENT, asdict(job), idempotency_key)

    def entity_cleanup(self, job: CleanupJob, idempotency_key: str) -> uuid.UUID:
        return self._run(ENTITY_CLEANUP_DEPLOYMENT, asdict(job), idempotency_key)

    def close(self) -> None:
        self._client.close()


class EmbeddedDispatcher:
    """Creates flow runs and runs them on this process's threads."""

    def __init__(self, threads: int = 2) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mediamill-run")
        self._client = _PrefectClient()
        self._pending_lock = threading.Lock()
        self._pending: set[Future[Any]] = set()
        self.started = 0

    def _run(self, flow: Any, parameters: dict[str, Any]) -> uuid.UUID:
        from prefect.states import Pending

        try:
            run = self._client.get().create_flow_run(flow, parameters=parameters, state=Pending())
        except Exception as error:
            raise DispatchError(f"could not start {flow.name}: {error}") from error
        started = self._executor.submit(_execute, flow, run, parameters)
        with self._pending_lock:  # runs are started from several request threads at once
            self._pending.add(started)
            self.started += 1
        started.add_done_callback(self._forget)
        return uuid.UUID(str(run.id))

    def _forget(self, future: Future[Any]) -> None:
        with self._pending_lock:
            self._pending.discard(future)

    def ingest_upload(self, job: UploadJob, idempotency_key: str) -> uuid.UUID:
        from mediamill.flows.uploads import ingest_upload

        return self._run(ingest_upload, asdict(job))

    def entity_cleanup(self, job: CleanupJob, idempotency_key: str) -> uuid.UUID:
        from mediamill.flows.lifecycle import entity_cleanup

        return self._run(entity_cleanup, asdict(job))

    def wait(self, timeout: float | None = None) -> None:
        """Block until every run started so far has finished (tests, shutdown)."""
        with self._pending_lock:
            running = list(self._pending)
        for future in running:
            future.exception(timeout=timeout)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=False)
        self._client.close()


class Launcher:
    """Starts runs on background threads, so an answer waits on Prefect for a bounded time.

    A run that Prefect creates within ``wait_seconds`` is answered with its id. A slower
    one (a busy server) is answered without, and ``settle`` records its outcome later, so
    a burst of webhooks is acknowledged at catalog speed instead of queueing on Prefect.

    The answer only waits when the run can be expected in time: a thread is free to start
    it now, and the typical one of the last few starts took no longer than the wait. Else
    waiting would only delay an answer that leaves without the id anyway.

    Two threads by default: Prefect's server creates runs one database transaction at a
    time, and more concurrent creations only contend for it (on its SQLite test server
    here, 13 to 18 runs/s from 2 threads, 8 runs/s from 8).

    A start still waiting is work this process owes (a webhook event's job is also kept in
    the catalog, for `mediamill.api.redispatch`). So once ``max_backlog`` wait, ``admit``
    refuses new events (503 with Retry-After) until Prefect catches up; it checks before the
    event is claimed, so requests already past the check can add a few more. At shutdown
    they get ``shutdown_seconds`` to start; the ones still queued then are settled with
    ``STOPPED_BEFORE_START``, so a stop never hangs on a Prefect that is gone.
    """

    def __init__(
        self,
        wait_seconds: float,
        threads: int = 2,
        clock: Callable[[], float] = time.monotonic,
        max_backlog: int = 256,
        shutdown_seconds: float = 10.0,
    ) -> None:
        self.wait_seconds = wait_seconds
        self.max_backlog = max_backlog
        self.shutdown_seconds = shutdown_seconds
        self._threads = threads
        self._clock = clock
        self._executor = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="mediamill-start"
        )
        self._lock = threading.Lock()
        # Answers that left without their run, until it is settled. A set that forgets
        # each as it settles: a burst can leave thousands waiting, and every launch adds one.
        self._settling: set[Future[None]] = set()
        self._starts: set[Future[uuid.UUID]] = set()
        self._in_flight = 0
        self._recent: deque[float] = deque(maxlen=RECENT_STARTS)

    def launch(
        self,
        start: Callable[[], uuid.UUID],
        settle: Callable[[uuid.UUID | None, DispatchError | None], None],
    ) -> uuid.UUID | None:
        """The run id, or None while it is still being created; DispatchError if it failed."""
        with self._lock:
            wait = self.wait_seconds if self._expect_in_time() else 0.0
            self._in_flight += 1
        try:
            future = self._executor.submit(self._timed, start)
        except RuntimeError:  # shut down: nothing will start it
            with self._lock:
                self._in_flight -= 1
            raise
        with self._lock:
            self._starts.add(future)
        future.add_done_callback(self._forget_start)
        try:
            return future.result(timeout=wait)
        except FutureTimeout:
            settled: Future[None] = Future()

            def finish(done: Future[uuid.UUID]) -> None:
                try:
                    settle(*_outcome(done))
                finally:
                    settled.set_result(None)

            with self._lock:
                self._settling.add(settled)
            settled.add_done_callback(self._forget_settled)
            future.add_done_callback(finish)
            return None

    def admit(self) -> None:
        """Refuse a new event while ``max_backlog`` starts are waiting: DispatchError.

        Called before the event is claimed or anything is written, so the sender's retry
        is a first delivery. Its ``retry_after`` is the time the waiting starts should take.
        """
        with self._lock:
            waiting = self._in_flight
            if waiting < self.max_backlog:
                return
            typical = self._typical_start() or 1.0
        estimate = math.ceil(waiting * typical / self._threads)
        retry_after = min(MAX_RETRY_AFTER_SECONDS, max(MIN_RETRY_AFTER_SECONDS, estimate))
        raise DispatchError(
            f"{waiting} runs are already waiting to start; retry in {retry_after} s",
            retry_after=retry_after,
        )

    def _typical_start(self) -> float | None:
        """The median of the recent start times, if any (called under the lock)."""
        if not self._recent:
            return None
        return sorted(self._recent)[len(self._recent) // 2]

    def _expect_in_time(self) -> bool:
        """Whether a run started now should exist within the wait (called under the lock)."""
        if self._in_flight >= self._threads:
            return False  # it would queue behind the starts already running
        typical = self._typical_start()
        return typical is None or typical <= self.wait_seconds

    def _timed(self, start: Callable[[], uuid.UUID]) -> uuid.UUID:
        began = self._clock()
        try:
            return start()
        finally:
            took = self._clock() - began
            with self._lock:
                self._in_flight -= 1
                self._recent.append(took)

    def _forget_start(self, future: Future[uuid.UUID]) -> None:
        with self._lock:
            self._starts.discard(future)

    @property
    def unsettled(self) -> int:
        """Answers that left without their run and whose outcome is not recorded yet."""
        with self._lock:
            return len(self._settling)

    def _forget_settled(self, settled: Future[None]) -> None:
        with self._lock:
            self._settling.discard(settled)

    def wait(self, timeout: float | None = None) -> None:
        """Block until every launch answered without its run has been settled (tests)."""
        with self._lock:
            settling = list(self._settling)
        for future in settling:
            future.result(timeout=timeout)

    def close(self) -> None:
        """Give the waiting starts ``shutdown_seconds``, then settle the queued ones as failed.

        The starts already running are waited for: each ends within Prefect's client
        timeouts and retries. One still queued would wait behind every other, so it is
        cancelled, and its ``settle`` hears ``STOPPED_BEFORE_START``.
        """
        with self._lock:
            waiting = list(self._starts)
        wait_for_all(waiting, timeout=self.shutdown_seconds)
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.wait()


STOPPED_BEFORE_START = "the API stopped before the run could be created"


class StoppedBeforeStartError(DispatchError):
    """A start still queued when the launcher closed: no run exists, nothing was refused."""

    def __init__(self) -> None:
        super().__init__(STOPPED_BEFORE_START)


def _outcome(future: Future[uuid.UUID]) -> tuple[uuid.UUID | None, DispatchError | None]:
    if future.cancelled():  # still queued when the launcher closed
        return None, StoppedBeforeStartError()
    error = future.exception()
    if error is None:
        return future.result(), None
    if isinstance(error, DispatchError):
        return None, error
    return None, DispatchError(str(error))


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
