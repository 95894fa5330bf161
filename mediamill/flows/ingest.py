"""The ingest flows: one upload (``ingest_media``) and many (``backfill``).

Both run the same stages over batches: stage (stream, hash, sniff) -> register (dedupe,
claim) -> derive-and-publish (pixels on the pool, objects, catalog). Batches flow through
the stages independently, so the pixel pool starts on the first batch while later ones
are still being read.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar, cast

from prefect import flow
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.utilities.annotations import opaque

from mediamill.flows.fairness import workspace_slot
from mediamill.flows.progress import ProgressTracker
from mediamill.flows.report import RunSummary, emit_media_event, publish_summary
from mediamill.settings import Settings, get_settings
from mediamill.tasks import standby
from mediamill.tasks.context import PipelineContext
from mediamill.tasks.filenames import display_filename
from mediamill.tasks.publish import Finished
from mediamill.tasks.register import Registration
from mediamill.tasks.sources import EntityRef, Source, discover, file_source
from mediamill.tasks.stages import derive, ensure_workspace, register, stage_batch

T = TypeVar("T")

TASK_THREADS = 6
# Batches read and registered ahead of the pixel work: enough to keep the pool fed, few
# enough that a huge backfill starts rendering at once instead of reading everything first.
READ_AHEAD_BATCHES = 3


def _task_runner() -> TaskRunner[PrefectFuture[Any]]:
    """Threads for batches in different stages; pixel work has its own processes."""
    return cast("TaskRunner[PrefectFuture[Any]]", ThreadPoolTaskRunner(max_workers=TASK_THREADS))


def _unwalked(value: T) -> T:
    """A task argument Prefect resolves (if a future) but does not walk into.

    By default Prefect visits every element of every argument, and of every upstream result,
    looking for futures; a batch of sources or registrations holds none, and walking them
    cost the orchestrating process about 0.2 CPU-s over a 200-file backfill. The dependency
    on an upstream future is still drawn in the UI.
    """
    return cast(T, opaque(value))


def _current_flow_run_id() -> uuid.UUID | None:
    run_id = flow_run.get_id()
    return uuid.UUID(run_id) if run_id else None


def run_pipeline(
    ctx: PipelineContext, workspace: str, sources: Sequence[Source], batch_size: int
) -> RunSummary:
    """Push every source through the stages, in batches; never raises for a bad asset."""
    started = time.perf_counter()
    summary = RunSummary(workspace=workspace, total=len(sources))
    summary.media_ids = [None] * len(sources)
    if not sources:
        return summary
    progress = ProgressTracker(len(sources), key="ingest-progress")
    workspace_id = ensure_workspace(ctx, workspace)
    run_id = _current_flow_run_id()
    with ctx.sessions() as session:
        if standby.expects_pixel_work(session, workspace_id, sources):
            ctx.pool.warm_up()  # workers import libvips while the first batches are read

    def on_finished(result: Finished) -> None:
        kind = "ready" if result.ok else "failed"
        payload = {} if result.ok else {"code": result.error_code, "message": result.error_message}
        for media_id in result.media_ids:
            emit_media_event(kind, media_id, workspace, payload)
        progress.advance(len(result.media_ids))

    indexed = list(enumerate(sources))
    batches = iter(batch_bounds(len(indexed), batch_size, first=ctx.pool.workers))
    ahead: deque[PrefectFuture[list[Registration]]] = deque()

    def read_ahead() -> None:
        bounds = next(batches, None)
        if bounds is not None:
            # Prefect resolves a future passed as an argument and draws the dependency in the UI.
            staged = stage_batch.submit(
                ctx, workspace_id, _unwalked(indexed[bounds[0] : bounds[1]])
            )
            # Batches register in input order (they queue for the catalog's write lock
            # anyway), so an entity's gallery lists a backfill's uploads in source order.
            previous = [ahead[-1]] if ahead else []
            ahead.append(
                register.submit(
                    ctx,
                    workspace_id,
                    _unwalked(cast(Any, staged)),
                    run_id,
                    return_state=False,
                    wait_for=previous,
                )
            )

    for _ in range(READ_AHEAD_BATCHES):
        read_ahead()
    registrations: list[Registration] = []
    rendering: list[PrefectFuture[list[Finished]]] = []
    while ahead:
        registered = ahead.popleft()
        batch_registrations = registered.result()
        registrations.extend(batch_registrations)
        progress.advance(sum(1 for r in batch_registrations if r.settled))
        _announce_settled(batch_registrations, workspace)
        if any(r.render is not None for r in batch_registrations):
            # Only batches with pixel work get a derive task; the workers start here at the
            # latest (a rerun of changed files), and a rerun of unchanged ones never starts them.
            if not rendering:
                ctx.pool.warm_up()
            rendering.append(derive.submit(ctx, _unwalked(cast(Any, registered)), on_finished))
        read_ahead()
    finished = [result for future in rendering for result in future.result()]
    _summarise(summary, registrations, finished, sources)
    summary.seconds = time.perf_counter() - started
    progress.advance(summary.total)
    publish_summary(summary)
    return summary


def batch_bounds(total: int, size: int, first: int) -> list[tuple[int, int]]:
    """(start, end) of each batch: one asset per worker first, then doubling up to ``size``.

    A full first batch would keep every core idle while it is read, hashed and registered;
    a full second one, while the first few renders finish. Doubling keeps each next batch
    small enough to be read and registered while the one before it renders.
    """
    size = max(1, size)
    step = max(1, min(first, size))
    bounds = []
    start = 0
    while start < total:
        end = min(total, start + step)
        bounds.append((start, end))
        start, step = end, min(size, 2 * step)
    return bounds


def _announce_settled(registrations: list[Registration], workspace: str) -> None:
    """Events for media settled at registration: duplicates and early failures."""
    for registration in registrations:
        kind = "failed" if registration.outcome == "failed" else "ready"
        payload = (
            {"code": registration.error_code, "message": registration.error_message}
            if kind == "failed"
            else {}
        )
        for media_id in registration.settled:
            emit_media_event(kind, media_id, workspace, payload)


def _summarise(
    summary: RunSummary,
    registrations: list[Registration],
    finished: list[Finished],
    sources: Sequence[Source],
) -> None:
    """Count each input once by how it ended; failures keep their reason."""
    by_blob = {result.blob_id: result for result in finished}
    settled_by_run = {media_id for result in finished for media_id in result.media_ids}
    summary.pixel_seconds = sum(result.seconds for result in finished)
    summary.peak_worker_rss_bytes = max((r.peak_rss_bytes for r in finished), default=0)
    for registration in registrations:
        summary.media_ids[registration.index] = (
            str(registration.media_id) if registration.media_id else None
        )
        code, message = registration.error_code, registration.error_message
        outcome = registration.outcome
        if outcome == "render" and registration.render is not None:
            result = by_blob.get(registration.render.blob_id)
            if result is not None and not result.ok:
                outcome, code, message = "failed", result.error_code, result.error_message
        if outcome == "waiting" and registration.media_id in settled_by_run:
            outcome = "duplicate"
        if outcome == "render":
            summary.ingested += 1
        elif outcome == "duplicate":
            summary.duplicates += 1
        elif outcome == "unchanged":
            summary.unchanged += 1
        elif outcome == "waiting":
            summary.waiting += 1
        else:
            summary.failed += 1
            summary.failures.append(
                {
                    "source": display_filename(sources[registration.index].filename),
                    "code": code or "",
                    "message": message or "",
                }
            )


def run_sources(
    settings: Settings,
    workspace: str,
    sources: Sequence[Source],
    batch_size: int | None,
    workers: int | None,
    dask_address: str | None = None,
) -> RunSummary:
    """Run the pipeline over ``sources`` inside the current flow run."""
    if not sources:
        return RunSummary(workspace=workspace)
    with workspace_slot(settings, workspace):
        ctx = PipelineContext.open(settings, workers=workers, dask_address=dask_address)
        try:
            return run_pipeline(ctx, workspace, sources, batch_size or settings.batch_size)
        finally:
            ctx.close()


@flow(name="ingest-media", task_runner=_task_runner())
def ingest_media(
    source: str,
    workspace: str,
    filename: str | None = None,
    user: str | None = None,
    entity: str | None = None,
    alt: str | None = None,
) -> dict[str, object]:
    """Ingest one upload from a local path; ``filename`` is the name the uploader gave it."""
    entity_ref = EntityRef.parse(entity) if entity else None
    item = file_source(Path(source), entity=entity_ref, uploader=user, alt_text=alt)
    if filename is not None:
        item = replace(item, filename=filename, location=f"upload:{display_filename(filename)}")
    summary = run_sources(get_settings(), workspace, [item], batch_size=1, workers=1)
    return summary.as_dict()


def ingest_bytes(
    data: bytes,
    filename: str,
    workspace: str,
    *,
    user: str | None = None,
    entity: str | None = None,
    alt: str | None = None,
) -> dict[str, object]:
    """Ingest bytes held in memory (an API upload, a notebook).

    The bytes are staged to a private file first: a flow parameter is stored by Prefect's
    server and shown in its UI, and an upload's content belongs in neither.
    """
    staging = get_settings().staging_dir
    staging.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=staging, prefix="upload-") as staged:
        staged.write(data)
        staged.flush()
        return ingest_media(
            staged.name, workspace, filename=filename, user=user, entity=entity, alt=alt
        )


@flow(name="backfill", task_runner=_task_runner())
def backfill(
    source: str,
    workspace: str,
    user: str | None = None,
    entity: str | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    dask_address: str | None = None,
) -> dict[str, object]:
    """Ingest a directory or a manifest CSV; a rerun adds nothing and finishes what is missing.

    ``dask_address`` (``tcp://scheduler:8786``) renders on that Dask cluster instead of local
    processes; reading, dedupe, publishing and catalog writes still run here.
    """
    entity_ref = EntityRef.parse(entity) if entity else None
    settings = get_settings()
    sources = discover(
        Path(source), entity=entity_ref, uploader=user, exclude=settings.own_state_paths()
    )
    summary = run_sources(settings, workspace, sources, batch_size, workers, dask_address)
    return summary.as_dict()
