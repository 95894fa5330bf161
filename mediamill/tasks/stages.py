"""Prefect tasks for each pipeline stage, one batch of assets per task run.

Batching keeps orchestration a small share of the time: a task run costs milliseconds,
an image's pixel work ~100 ms. Each stage is still its own task, so the UI shows where
every batch is and which stage failed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.exc import OperationalError

from mediamill.catalog import repository as repo
from mediamill.tasks.context import PipelineContext
from mediamill.tasks.publish import Finished, derive_and_publish
from mediamill.tasks.register import Registration, recorded_contents, register_batch
from mediamill.tasks.sources import Source
from mediamill.tasks.staging import Staged, stage

P = ParamSpec("P")
R = TypeVar("R")


def _transient_catalog_error(task: object, task_run: object, state: object) -> bool:
    """Retry a stage only when the catalog blipped (locked, connection dropped)."""
    try:
        state.result()  # type: ignore[attr-defined]
    except OperationalError:
        return True
    except Exception:
        return False
    return False


def catalog_task(name: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """A stage that writes the catalog: retried with backoff and jitter on transient errors."""
    return task(
        name=name,
        cache_policy=NO_CACHE,
        persist_result=False,
        retries=3,
        retry_delay_seconds=[1, 2, 4],
        retry_jitter_factor=0.5,
        retry_condition_fn=_transient_catalog_error,
    )


@catalog_task("ensure-workspace")
def ensure_workspace(ctx: PipelineContext, slug: str) -> int:
    """The workspace id for a slug, creating the workspace on first use."""
    with ctx.writing() as session:
        return repo.ensure_workspace(session, slug).id


@task(name="stage", cache_policy=NO_CACHE, persist_result=False)
def stage_batch(
    ctx: PipelineContext, workspace_id: int, batch: list[tuple[int, Source]]
) -> list[tuple[int, Staged]]:
    """Stream, hash and sniff each source of the batch; unchanged files are only sniffed."""
    recorded = recorded_contents(ctx, workspace_id, [source for _, source in batch])
    limit = ctx.settings.max_upload_bytes
    return [
        (index, stage(source, limit, recorded.get(source.source_key or "")))
        for index, source in batch
    ]


@catalog_task("register")
def register(
    ctx: PipelineContext,
    workspace_id: int,
    staged: list[tuple[int, Staged]],
    flow_run_id: uuid.UUID | None,
) -> list[Registration]:
    """Dedupe against the catalog and claim the blobs this run must render."""
    return register_batch(ctx, workspace_id, staged, flow_run_id)


@catalog_task("derive-and-publish")
def derive(
    ctx: PipelineContext,
    registrations: list[Registration],
    on_finished: Callable[[Finished], None] | None = None,
) -> list[Finished]:
    """Render variants on the pixel pool, store them, then commit each blob."""
    plans = [r.render for r in registrations if r.render is not None]
    return derive_and_publish(ctx, plans, on_finished)
