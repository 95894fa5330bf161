"""Decide, in one catalog transaction per batch, what each staged upload needs.

This is where dedupe happens: one blob per (workspace, sha256), claimed before any pixel
work so that identical uploads racing each other end with one blob and one rendering. It is
also where the workspace quota is enforced: a new blob is claimed only once admitted, in
the same transaction (see `mediamill.catalog.quota`), so parallel uploads cannot together
overrun it.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.orm import Session

from mediamill.catalog import lifecycle, uploads
from mediamill.catalog import repository as repo
from mediamill.catalog.models import (
    Blob,
    BlobStatus,
    Media,
    MediaStatus,
    MediaType,
)
from mediamill.catalog.quota import QUOTA_EXCEEDED, QuotaGate
from mediamill.media.sniff import Sniffed
from mediamill.storage.keys import ORIGINAL_VERSION, media_key, original_filename
from mediamill.tasks.context import PipelineContext
from mediamill.tasks.filenames import display_filename
from mediamill.tasks.pixels import missing_variants
from mediamill.tasks.sources import EntityRef, Source
from mediamill.tasks.staging import FileIdentity, Recorded, Staged

UNATTACHED = EntityRef(type="library", id="unattached")
# Failures worth another attempt on a rerun: nothing about the content was wrong.
GONE_BEFORE_PROCESSING = "deleted"
RETRYABLE_CODES = frozenset({"storage_error", "worker_crashed", "unreadable", QUOTA_EXCEEDED})
# A raw SVG must never be served as image/svg+xml from the media domain.
UNSERVABLE_MIMES = frozenset({"image/svg+xml"})
# media.meta key of the file identity a backfill source had when it was hashed.
IDENTITY_KEY = "source_identity"

Outcome = Literal["unchanged", "failed", "duplicate", "render", "waiting"]


@dataclass(frozen=True)
class PlannedRender:
    """A blob this run renders: the whole set, or only what a changed spec lacks."""

    blob_id: int
    workspace_id: int
    sha256: str
    media_type: str
    media_format: str
    extension: str
    key_entity: EntityRef
    original_key: str
    original_mime: str
    path: str | None
    data: bytes | None
    store_original: bool
    only: frozenset[tuple[str, str, str]] | None = None
    identity: FileIdentity | None = None


@dataclass(frozen=True)
class Registration:
    """The catalog's answer for one input, in the run's input order."""

    index: int
    media_id: uuid.UUID | None
    outcome: Outcome
    error_code: str | None = None
    error_message: str | None = None
    render: PlannedRender | None = None
    # Media settled at registration (duplicates, failures), for lifecycle events.
    settled: list[uuid.UUID] = field(default_factory=list)


@dataclass
class _BatchState:
    """What one registration batch has decided so far, so a hash is handled once."""

    blobs: dict[str, Blob]
    handled: dict[str, Blob] = field(default_factory=dict)
    refreshed: set[int] = field(default_factory=set)
    quota: QuotaGate | None = None

    def admit(self, session: Session, workspace_id: int, size: int) -> str | None:
        """Reserve quota for a blob about to be stored; ``None`` when admitted, else why not."""
        if self.quota is None:
            self.quota = QuotaGate(session, workspace_id)
        return self.quota.admit(size)

    def refund(self, size: int) -> None:
        """Give a reservation back: the blob turned out to be stored already."""
        if self.quota is not None:
            self.quota.refund(size)


def recorded_contents(
    ctx: PipelineContext, workspace_id: int, sources: Sequence[Source]
) -> dict[str, Recorded]:
    """What earlier runs recorded of these backfill sources' files, by source key.

    `mediamill.tasks.staging.stage` takes a recorded hash only for a file whose identity
    is still the recorded one.
    """
    keys = [s.source_key for s in sources if s.source_key and s.path is not None]
    if not keys:
        return {}
    with ctx.sessions() as session:
        priors = repo.media_by_source_keys(session, workspace_id, keys)
    found: dict[str, Recorded] = {}
    for key, prior in priors.items():
        identity, sha256 = prior.meta.get(IDENTITY_KEY), prior.meta.get("sha256")
        if (
            isinstance(identity, list)
            and len(identity) == len(FileIdentity._fields)
            and isinstance(sha256, str)
        ):
            found[key] = Recorded(sha256, FileIdentity(*identity))
    return found


def _identity_meta(staged: Staged) -> dict[str, object]:
    """What media.meta keeps of the file a source was read from (nothing, if it was busy)."""
    return {IDENTITY_KEY: list(staged.identity) if staged.identity is not None else None}


def _entity_for(staged: Staged) -> EntityRef:
    return staged.source.entity or UNATTACHED


def _original_key(workspace_id: int, entity: EntityRef, media_type: str, sha: str, ext: str) -> str:
    return media_key(
        workspace_id=workspace_id,
        entity_type=entity.type,
        entity_id=entity.id,
        media_type=media_type,
        version=ORIGINAL_VERSION,
        filename=original_filename(sha, ext),
    )


def _new_media(
    session: Session, workspace_id: int, staged: Staged, flow_run_id: uuid.UUID | None
) -> Media:
    source = staged.source
    media = Media(
        id=uuid.uuid4(),
        workspace_id=workspace_id,
        uploader=source.uploader,
        original_filename=display_filename(source.filename),
        source=source.location[:1024],
        source_key=source.source_key,
        alt_text=source.alt_text,
        flow_run_id=flow_run_id,
        status=MediaStatus.processing,
        meta={},
    )
    session.add(media)
    if source.entity is not None:
        # The catalog's own attach: end of the gallery, audited, and the upload's entity noted.
        lifecycle.attach(
            session, media, lifecycle.Entity(source.entity.type, source.entity.id), source.uploader
        )
    repo.record_audit(
        session,
        workspace_id=workspace_id,
        action="media.created",
        actor=source.uploader,
        media_id=media.id,
        details={"source": media.source, "filename": media.original_filename},
    )
    return media


def _adopt(
    session: Session, workspace_id: int, media_id: uuid.UUID, flow_run_id: uuid.UUID | None
) -> Media | Registration:
    """The pending row the API created for this upload, or why there is nothing to do."""
    media = uploads.pending_media(session, workspace_id, media_id)
    if media is None:
        message = "the media was deleted before it was processed"
        return Registration(0, media_id, "failed", GONE_BEFORE_PROCESSING, message)
    if media.status == MediaStatus.ready:
        return Registration(0, media_id, "unchanged")  # a second run of the same upload
    media.flow_run_id = flow_run_id
    return media


def _fail(session: Session, media: Media, code: str, message: str) -> None:
    media.status = MediaStatus.failed
    media.error_code = code
    media.error_message = message
    repo.record_audit(
        session,
        workspace_id=media.workspace_id,
        action="media.failed",
        actor=media.uploader,
        media_id=media.id,
        details={"code": code, "message": message},
    )


def _is_settled_rerun(prior: Media, staged: Staged) -> bool:
    """A backfill rerun skips a source whose same content already reached an end state."""
    if prior.meta.get("fingerprint") != staged.fingerprint:
        return False
    if prior.status == MediaStatus.ready:
        return True
    return prior.status == MediaStatus.failed and prior.error_code not in RETRYABLE_CODES


def _plan_render(
    workspace_id: int, staged: Staged, blob: Blob, sniffed: Sniffed, entity: EntityRef
) -> PlannedRender:
    source = staged.source
    return PlannedRender(
        blob_id=blob.id,
        workspace_id=workspace_id,
        sha256=blob.sha256,
        media_type=sniffed.kind,
        media_format=sniffed.format,
        extension=sniffed.extension,
        key_entity=entity,
        original_key=blob.original_key or "",
        original_mime=(
            "application/octet-stream" if sniffed.mime in UNSERVABLE_MIMES else sniffed.mime
        ),
        path=str(source.path) if source.path is not None else None,
        data=None,
        store_original=True,
        identity=staged.identity,
    )


def register_batch(
    ctx: PipelineContext,
    workspace_id: int,
    items: list[tuple[int, Staged]],
    flow_run_id: uuid.UUID | None,
) -> list[Registration]:
    """Create or reuse media rows, claim blobs, and say which blobs need rendering."""
    results: list[Registration] = []
    with ctx.writing() as session:
        priors = repo.media_by_source_keys(
            session, workspace_id, [s.source.source_key for _, s in items if s.source.source_key]
        )
        state = _BatchState(
            blobs=repo.blobs_by_sha(session, workspace_id, [s.sha256 for _, s in items if s.sha256])
        )
        for index, staged in items:
            key = staged.source.source_key
            prior = priors.get(key) if key else None
            if prior is not None and _is_settled_rerun(prior, staged):
                if prior.meta.get(IDENTITY_KEY) != _identity_meta(staged)[IDENTITY_KEY]:
                    prior.meta = {**prior.meta, **_identity_meta(staged)}
                blob = state.blobs.get(staged.sha256 or "")
                refresh = None
                if prior.status == MediaStatus.ready and blob is not None and staged.sniffed:
                    refresh = _refresh_plan(
                        ctx, session, blob, staged, staged.sniffed, state.refreshed
                    )
                results.append(Registration(index, prior.id, "unchanged", render=refresh))
                continue
            resumed = prior is not None and prior.meta.get("fingerprint") == staged.fingerprint
            if resumed and prior is not None:
                media = prior
            elif staged.source.media_id is not None:
                adopted = _adopt(session, workspace_id, staged.source.media_id, flow_run_id)
                if isinstance(adopted, Registration):
                    results.append(dataclasses.replace(adopted, index=index))
                    continue
                media = adopted
            else:
                media = _new_media(session, workspace_id, staged, flow_run_id)
            media.status = MediaStatus.processing
            media.error_code = media.error_message = None
            media.meta = {
                **media.meta,
                "fingerprint": staged.fingerprint,
                "sha256": staged.sha256,
                **_identity_meta(staged),
            }
            media.size = staged.size
            if staged.error_code is not None or staged.sniffed is None or staged.sha256 is None:
                code = staged.error_code or "invalid"
                message = staged.error_message or "upload could not be read"
                _fail(session, media, code, message)
                results.append(
                    Registration(index, media.id, "failed", code, message, settled=[media.id])
                )
                continue
            sniffed, sha = staged.sniffed, staged.sha256
            media.media_type = MediaType(sniffed.kind)
            media.mime_type = sniffed.mime
            results.append(
                _link_blob(ctx, session, state, index, staged, media, sniffed, sha, resumed)
            )
    return results


def _link_blob(
    ctx: PipelineContext,
    session: Session,
    state: _BatchState,
    index: int,
    staged: Staged,
    media: Media,
    sniffed: Sniffed,
    sha: str,
    resumed: bool,
) -> Registration:
    """Point ``media`` at the blob for ``sha``: claim it, reuse it, or wait for its owner."""
    workspace_id = media.workspace_id
    entity = _entity_for(staged)
    if sha in state.handled:
        media.blob_id = state.handled[sha].id
        return _settle_against(session, index, media, state.handled[sha])
    blob = state.blobs.get(sha)
    if blob is None:
        refusal = state.admit(session, workspace_id, staged.size)
        if refusal is not None:
            return _refuse(session, index, media, refusal)
        blob, ours = repo.claim_blob(
            session,
            workspace_id=workspace_id,
            sha256=sha,
            size=staged.size,
            mime_type=sniffed.mime,
            media_type=MediaType(sniffed.kind),
            original_key=_original_key(workspace_id, entity, sniffed.kind, sha, sniffed.extension),
            meta={"key_entity": {"type": entity.type, "id": entity.id}},
        )
        if ours:
            state.handled[sha] = blob
            media.blob_id = blob.id
            return Registration(
                index,
                media.id,
                "render",
                render=_plan_render(workspace_id, staged, blob, sniffed, entity),
            )
        state.refund(staged.size)  # another run stored this content meanwhile: no new bytes
    blob = repo.lock_blob(session, blob.id)
    retryable = blob.status == BlobStatus.failed and blob.error_code in RETRYABLE_CODES
    # A failed blob released its reservation: storing it after all takes a new one.
    if retryable and (refusal := state.admit(session, workspace_id, blob.size)) is not None:
        return _refuse(session, index, media, refusal)
    state.handled[sha] = blob
    media.blob_id = blob.id
    abandoned = blob.status == BlobStatus.processing and (
        resumed or repo.lease_expired(blob, ctx.lease)
    )
    if abandoned or retryable:
        repo.reclaim_blob(session, blob)
        key_entity = EntityRef(
            **blob.meta.get("key_entity", {"type": entity.type, "id": entity.id})
        )
        return Registration(
            index,
            media.id,
            "render",
            render=_plan_render(workspace_id, staged, blob, sniffed, key_entity),
        )
    registration = _settle_against(session, index, media, blob)
    if blob.status == BlobStatus.ready:
        refresh = _refresh_plan(ctx, session, blob, staged, sniffed, state.refreshed)
        return dataclasses.replace(registration, render=refresh)
    return registration


def _refresh_plan(
    ctx: PipelineContext,
    session: Session,
    blob: Blob,
    staged: Staged,
    sniffed: Sniffed,
    refreshed: set[int],
) -> PlannedRender | None:
    """Plan the variants a changed spec wants and a ready blob lacks, from its stored original.

    At most once per blob per batch, however many sources share it.
    """
    if blob.id in refreshed:
        return None
    refreshed.add(blob.id)
    have = repo.variant_ids(session, [blob.id])[blob.id]
    missing = missing_variants(ctx.recipe, sniffed.kind, have, bool(blob.meta.get("has_alpha")))
    if not missing:
        return None
    full = _plan_render(
        blob.workspace_id, staged, blob, sniffed, EntityRef(**blob.meta["key_entity"])
    )
    # The original is already stored: render from it, and only what is missing.
    return dataclasses.replace(
        full, path=None, data=None, store_original=False, only=missing, identity=None
    )


def _refuse(session: Session, index: int, media: Media, reason: str) -> Registration:
    """Fail an upload the quota has no room for; it claims no blob and changes nothing else."""
    media.blob_id = None
    _fail(session, media, QUOTA_EXCEEDED, reason)
    return Registration(index, media.id, "failed", QUOTA_EXCEEDED, reason, settled=[media.id])


def _settle_against(session: Session, index: int, media: Media, blob: Blob) -> Registration:
    """A media whose blob exists: ready now, failed now, or waiting for the blob's owner."""
    if blob.status == BlobStatus.ready:
        media.status = MediaStatus.ready
        repo.record_audit(
            session,
            workspace_id=media.workspace_id,
            action="media.ready",
            actor=media.uploader,
            media_id=media.id,
            details={"duplicate_of_blob": blob.id},
        )
        return Registration(index, media.id, "duplicate", settled=[media.id])
    if blob.status == BlobStatus.failed:
        code = blob.error_code or "invalid"
        message = blob.error_message or "this content failed before"
        _fail(session, media, code, message)
        return Registration(index, media.id, "failed", code, message, settled=[media.id])
    return Registration(index, media.id, "waiting")
