"""Render planned blobs, write their objects, then commit them to the catalog.

Objects are fully written before the catalog points at them; a crash in between leaves
only unreferenced objects, which the orphan sweep removes. Keys are content-addressed, so a
rerun rewrites the same bytes to the same keys.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mediamill.catalog import repository as repo
from mediamill.catalog.models import BlobStatus, MediaStatus
from mediamill.media.rendition import RenderedVariant, Rendition
from mediamill.storage.errors import StorageError
from mediamill.storage.headers import IMMUTABLE
from mediamill.storage.keys import media_key, variant_filename
from mediamill.storage.objects import NewObject
from mediamill.storage.store import ObjectStore
from mediamill.tasks.context import PipelineContext
from mediamill.tasks.pixels import RenderJob, RenderOutcome
from mediamill.tasks.register import PlannedRender
from mediamill.tasks.storage_retry import retry_transient_storage


@dataclass(frozen=True)
class Finished:
    """How one rendered blob ended, and which media it settled."""

    blob_id: int
    ok: bool
    media_ids: list[uuid.UUID]
    error_code: str | None
    error_message: str | None
    seconds: float
    peak_rss_bytes: int = 0


@retry_transient_storage
def _put_many(store: ObjectStore, objects: list[NewObject]) -> None:
    """A retried attempt rewrites the same bytes to the same keys."""
    store.put_many(objects, cache_control=IMMUTABLE)


def _store_objects(store: ObjectStore, objects: list[NewObject]) -> None:
    """One retried call where the store commits a batch at once (a local store); one per
    object elsewhere, so a throttling bucket has only the refused object sent again."""
    batches = [objects] if store.writes_batches else [[item] for item in objects]
    for batch in batches:
        _put_many(store, batch)


@retry_transient_storage
def _get(store: ObjectStore, key: str) -> bytes:
    return store.get(key)


def _variant_key(plan: PlannedRender, rendered: RenderedVariant) -> str:
    return media_key(
        workspace_id=plan.workspace_id,
        entity_type=plan.key_entity.type,
        entity_id=plan.key_entity.id,
        media_type=plan.media_type,
        version=rendered.spec_version,
        filename=variant_filename(plan.sha256, rendered.name, rendered.extension),
    )


def _job(ctx: PipelineContext, plan: PlannedRender) -> RenderJob:
    data = plan.data
    if plan.path is None and data is None:
        data = _get(ctx.store, plan.original_key)
    return RenderJob(
        blob_id=plan.blob_id,
        sha256=plan.sha256,
        media_type=plan.media_type,
        media_format=plan.media_format,
        recipe=ctx.recipe,
        path=plan.path,
        data=data,
        only=plan.only,
        identity=plan.identity,
    )


def _write_objects(
    ctx: PipelineContext, plan: PlannedRender, rendition: Rendition, versions: dict[str, str]
) -> list[repo.NewVariant]:
    """Put the original and every variant; returns the catalog rows to add."""
    objects = []
    if plan.store_original:
        assert plan.path is not None  # an original to store is always a staged local file
        objects.append(NewObject(plan.original_key, plan.original_mime, source=Path(plan.path)))
    rows = []
    for rendered in rendition.variants:
        key = _variant_key(plan, rendered)
        objects.append(NewObject(key, rendered.mime, data=rendered.data))
        rows.append(
            repo.NewVariant(
                name=rendered.name,
                format=rendered.format,
                spec_version=rendered.spec_version,
                mime_type=rendered.mime,
                width=rendered.width,
                height=rendered.height,
                size=len(rendered.data),
                key=key,
                encoder=rendered.encoder,
                library_versions=versions,
            )
        )
    _store_objects(ctx.store, objects)
    return rows


def _commit_success(
    ctx: PipelineContext, plan: PlannedRender, rendition: Rendition, rows: list[repo.NewVariant]
) -> list[uuid.UUID]:
    """Statements straight on the transaction's connection: this runs once per blob on the
    process that feeds the pixel workers, where the unit of work's bookkeeping shows."""
    with ctx.writing() as session:
        blob = repo.lock_blob_for_finish(session, plan.blob_id)
        finished: dict[str, object] = {
            "status": BlobStatus.ready,
            "claimed_at": None,
            "error_code": None,
            "error_message": None,
        }
        if plan.only is None:
            finished |= {
                "width": rendition.width,
                "height": rendition.height,
                "placeholder": rendition.placeholder,
                "metadata": {
                    **blob.meta,
                    **rendition.metadata,
                    "format": rendition.format,
                    "has_alpha": rendition.has_alpha,
                },
            }
        repo.add_variants(session, blob.id, rows)
        repo.update_blob(session, blob.id, finished)
        return repo.settle_waiting_media(
            session, blob, status=MediaStatus.ready, details={"variants": len(rows)}
        )


def _commit_failure(
    ctx: PipelineContext, plan: PlannedRender, code: str, message: str
) -> list[uuid.UUID]:
    with ctx.writing() as session:
        blob = repo.lock_blob_for_finish(session, plan.blob_id)
        if plan.only is not None:
            # The blob is ready with an older spec: it stays served; nothing to fail.
            return []
        repo.update_blob(
            session,
            blob.id,
            {
                "status": BlobStatus.failed,
                "claimed_at": None,
                "error_code": code,
                "error_message": message,
            },
        )
        return repo.settle_waiting_media(
            session, blob, status=MediaStatus.failed, error_code=code, error_message=message
        )


def derive_and_publish(
    ctx: PipelineContext,
    plans: Sequence[PlannedRender],
    on_finished: Callable[[Finished], None] | None = None,
) -> list[Finished]:
    """Render on the pixel pool, then store and commit each blob as soon as it is done."""
    by_blob = {plan.blob_id: plan for plan in plans}
    jobs: list[RenderJob] = []
    unavailable: list[RenderOutcome] = []
    for plan in plans:
        try:
            jobs.append(_job(ctx, plan))
        except StorageError as error:
            message = f"original unavailable: {error}"
            unavailable.append(RenderOutcome(plan.blob_id, None, "storage_error", message, 0.0))
    finished = []
    for outcome in itertools.chain(unavailable, ctx.pool.render(jobs)):
        plan = by_blob[outcome.blob_id]
        result = _finish(ctx, plan, outcome)
        finished.append(result)
        if on_finished is not None:
            on_finished(result)
    return finished


def _finish(ctx: PipelineContext, plan: PlannedRender, outcome: RenderOutcome) -> Finished:
    if outcome.rendition is not None:
        try:
            versions = outcome.library_versions or {}
            rows = _write_objects(ctx, plan, outcome.rendition, versions)
        except (StorageError, OSError) as error:
            code, message = "storage_error", f"could not store objects: {error}"
        else:
            settled = _commit_success(ctx, plan, outcome.rendition, rows)
            return Finished(
                plan.blob_id, True, settled, None, None, outcome.seconds, outcome.peak_rss_bytes
            )
    else:
        code = outcome.error_code or "processing_error"
        message = outcome.error_message or "rendering failed"
    settled = _commit_failure(ctx, plan, code, message)
    return Finished(
        plan.blob_id, False, settled, code, message, outcome.seconds, outcome.peak_rss_bytes
    )
