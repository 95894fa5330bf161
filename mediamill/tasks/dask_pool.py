"""Pixel work on a Dask cluster: the sibling of the local ``PixelPool`` for large backfills.

Only ``render_job`` runs on the cluster, one Dask task per asset inside the run's per-batch
derive task; reading, dedupe, registering, publishing and catalog writes stay in the flow's
process. A job travels with its bytes, so a worker on another machine needs no access to our
files, only the same mediamill installed.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError
from dataclasses import dataclass
from typing import Any, cast

from distributed import Client, Future, Worker, WorkerPlugin
from distributed.client import ClosedClientError
from distributed.scheduler import KilledWorker

from mediamill.tasks.pixels import (
    PoolUnavailableError,
    RenderJob,
    RenderOutcome,
    configure_worker,
    render_job,
    with_bytes,
)

PLUGIN_NAME = "mediamill-pixels"
# Dask keys share this prefix, so the dashboard groups render jobs as one kind of task.
KEY_PREFIX = "mediamill-render"
# One running and one queued per worker thread, so no thread waits between jobs.
IN_FLIGHT_PER_THREAD = 2
# An original travels inside its task, through the scheduler, which keeps it until the task
# is done so it can rerun the task if its worker dies. This caps those bytes per render call
# (a larger single job still goes alone): a batch of videos never sits there at once.
IN_FLIGHT_BYTES = 512 * 1024 * 1024
# A job lost with the connection (not with its worker) is sent once more before it fails.
ATTEMPTS = 2
CONNECT_TIMEOUT_SECONDS = 30.0
# How a job is lost with the cluster rather than with its worker: the scheduler restarted or
# went away (futures cancelled), the connection dropped, or the client gave up reconnecting.
LOST = (CancelledError, OSError, ClosedClientError)
# How often a wait for results checks that the client has not given up on the scheduler:
# futures submitted while it was reconnecting never finish once it has.
POLL_SECONDS = 2.0


class PixelWorkerSetup(WorkerPlugin):
    """Configures libvips on every worker, including those that join or restart later.

    One libvips thread per job: a Dask worker's threads already stand for its cores.
    """

    def setup(self, worker: Worker) -> None:
        configure_worker(1)


@dataclass(frozen=True)
class _Attempt:
    job: RenderJob
    number: int


def _crashed(job: RenderJob, message: str) -> RenderOutcome:
    """``worker_crashed`` is retried by the next run, as with a local worker that died."""
    return RenderOutcome(job.blob_id, None, "worker_crashed", message, 0.0)


def _first_attempt(job: RenderJob) -> _Attempt | RenderOutcome:
    """The job with its bytes in it, or why its file could not be read."""
    shipped = with_bytes(job)
    return shipped if isinstance(shipped, RenderOutcome) else _Attempt(shipped, 1)


def _has_room(
    running: dict[Future[RenderOutcome], _Attempt], attempt: _Attempt, window: int
) -> bool:
    """Whether ``attempt`` may go now: always when nothing runs, else within both limits."""
    if not running:
        return True
    in_flight = sum(len(other.job.data or b"") for other in running.values())
    return len(running) < window and in_flight + len(attempt.job.data or b"") <= IN_FLIGHT_BYTES


def _retry_or_fail(
    attempt: _Attempt, error: BaseException, ready: deque[_Attempt]
) -> RenderOutcome | None:
    """Queue a job lost with the connection once more; on its last attempt, fail it."""
    if attempt.number < ATTEMPTS:
        ready.append(_Attempt(attempt.job, attempt.number + 1))
        return None
    return _crashed(attempt.job, f"lost contact with the Dask cluster: {error}")


def _settle(
    future: Future[RenderOutcome], attempt: _Attempt, ready: deque[_Attempt]
) -> RenderOutcome | None:
    """The job's outcome, a failure for a dead worker, or ``None`` when it goes again."""
    if not future.done():  # type: ignore[no-untyped-call]
        error = ClosedClientError("the client gave up reconnecting to the scheduler")
        return _retry_or_fail(attempt, error, ready)
    try:
        return future.result()
    except KilledWorker:
        # The scheduler already reran it on other workers; every one of them died.
        return _crashed(attempt.job, "the Dask workers running it died")
    except LOST as error:
        return _retry_or_fail(attempt, error, ready)


class DaskPixelPool:
    """Render jobs on the Dask cluster at ``address``, with the local pool's interface.

    A worker that dies mid-job is the scheduler's to handle: it reruns the job on another
    worker, and after ``distributed.scheduler.allowed-failures`` deaths reports
    ``KilledWorker``, which fails that job alone as ``worker_crashed``. A job lost with the
    connection to the cluster is submitted once more, then fails the same way.
    """

    def __init__(self, address: str, *, timeout: float = CONNECT_TIMEOUT_SECONDS) -> None:
        self.address = address
        try:
            # Typed as Any: most of distributed's Client is unannotated.
            self._client: Any = Client(  # type: ignore[no-untyped-call]
                address, timeout=timeout, set_as_default=False
            )
        except (OSError, ValueError) as error:
            raise PoolUnavailableError(
                f"cannot reach the Dask scheduler at {address}: {error}"
            ) from error
        self._lock = threading.Lock()
        self._ready = False

    @property
    def workers(self) -> int:
        """Threads across the cluster's workers, each running one job at a time."""
        nthreads: dict[str, int] = self._client.nthreads()
        return max(1, sum(nthreads.values()))

    def warm_up(self) -> None:
        """Load libvips on every worker, now and on any worker that starts later."""
        with self._lock:
            if not self._ready:
                self._client.register_plugin(PixelWorkerSetup(), name=PLUGIN_NAME)
                self._ready = True

    def _submit(self, attempt: _Attempt) -> Future[RenderOutcome]:
        key = f"{KEY_PREFIX}-{uuid.uuid4().hex}"
        return cast("Future[RenderOutcome]", self._client.submit(render_job, attempt.job, key=key))

    def render(self, jobs: Sequence[RenderJob]) -> Iterator[RenderOutcome]:
        """Outcomes as they complete; a job whose worker or connection died fails alone.

        Files are read just before their job is sent, and only a few jobs (and bytes) are in
        flight at once, so neither this process nor the scheduler holds a whole batch.
        """
        self.warm_up()
        pending = deque(jobs)
        ready: deque[_Attempt] = deque()
        running: dict[Future[RenderOutcome], _Attempt] = {}
        finished: queue.SimpleQueue[Future[RenderOutcome]] = queue.SimpleQueue()
        window = self.workers * IN_FLIGHT_PER_THREAD
        try:
            while pending or ready or running:
                while pending and not ready:
                    first = _first_attempt(pending.popleft())
                    if isinstance(first, RenderOutcome):
                        yield first
                    else:
                        ready.append(first)
                if ready and _has_room(running, ready[0], window):
                    attempt = ready.popleft()
                    try:
                        future = self._submit(attempt)
                    except LOST as error:
                        if (failed := _retry_or_fail(attempt, error, ready)) is not None:
                            yield failed
                        continue
                    running[future] = attempt
                    future.add_done_callback(finished.put)  # type: ignore[no-untyped-call]
                elif running:
                    future = self._next_finished(finished, running)
                    outcome = _settle(future, running.pop(future), ready)
                    if outcome is not None:
                        yield outcome
        finally:
            if running:
                with contextlib.suppress(*LOST):
                    self._client.cancel(list(running))

    def _next_finished(
        self,
        finished: queue.SimpleQueue[Future[RenderOutcome]],
        running: dict[Future[RenderOutcome], _Attempt],
    ) -> Future[RenderOutcome]:
        """The next future to finish; once the client is closed, any running one."""
        while True:
            try:
                future = finished.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if self._client.status == "closed":
                    return next(iter(running))
                continue
            if future in running:
                return future

    def close(self) -> None:
        """Disconnect; the cluster and its workers belong to whoever started them."""
        self._client.close()

    def __enter__(self) -> DaskPixelPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
