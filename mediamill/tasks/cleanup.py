"""Lifecycle work that joins the catalog and the store: entity cleanup, orphan sweep, purge.

Each job is split in two. A *plan* reads the catalog and lists the store and changes
nothing: it is all a dry run does. *Executing* the plan takes every step in its own short
write transaction that first re-reads the rows involved under a lock and re-checks the
reason for the step, then acts. So a media attached after the plan was made is never
deleted, a blob an upload started using is never purged, and an object a blob came to
reference is never removed: the plan is a list of candidates, not of verdicts.

Objects are deleted inside the transaction that holds the lock and re-checked the
references, before it commits: a writer that would start referencing them (a new upload of
the same bytes, a restore) waits for that transaction and then finds the row gone or the
media purged. An object of a blob still ``processing`` is never deleted (its upload is in
flight and may reference it), nor one modified within ``orphan_grace_minutes``. A staged
upload under ``incoming/{workspace}/`` is swept once it is older than ``upload_ttl_hours``
and no media waiting to be processed will be made from it. What a killed writer left in the
store (temp files, metadata of objects never stored) goes once older than the grace period:
no key can name it, so nothing can reference it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any, Literal

from sqlalchemy.orm import Session, sessionmaker

from mediamill.catalog import access, migrate, uploads
from mediamill.catalog import lifecycle as life
from mediamill.catalog import repository as repo
from mediamill.catalog.engine import begin_immediate, make_engine, make_session_factory
from mediamill.catalog.errors import NotFound
from mediamill.catalog.models import Blob, BlobStatus
from mediamill.settings import Settings
from mediamill.storage.errors import StorageError
from mediamill.storage.factory import open_store
from mediamill.storage.incoming import INCOMING, incoming_prefix
from mediamill.storage.keys import workspace_prefix
from mediamill.storage.objects import Leftover, ListedObject
from mediamill.storage.store import ObjectStore
from mediamill.tasks.stages import catalog_task
from mediamill.tasks.storage_retry import (
    retry_transient_storage,
    retry_transient_storage_briefly,
)

# Who the audit trail names when no person asked for the step.
ORPHAN_SWEEP_ACTOR = "mediamill:orphan-sweep"
PURGE_ACTOR = "mediamill:purge"
ENTITY_CLEANUP_ACTOR = "mediamill:entity-cleanup"
# Report and artifact rows are capped; the counts always cover everything.
MAX_REPORTED_ACTIONS = 1000

# Every key's filename starts with the hash of the blob it belongs to (storage.keys builds
# originals as "{sha256}.{ext}" and variants as "{sha256}_{variant}.{ext}").
_BLOB_FILENAME = re.compile(r"([0-9a-f]{64})(?:_[a-z0-9_-]{1,64})?\.[a-z0-9]{1,8}")

Status = Literal["planned", "done", "skipped"]
# Webhook deliveries forgotten per transaction by the purge.
DELIVERY_BATCH = 5000


class CleanupContext:
    """Settings, catalog sessions and the object store of one lifecycle run (no pixel pool)."""

    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], store: ObjectStore
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.store = store

    @classmethod
    def open(cls, settings: Settings) -> CleanupContext:
        """Build engine and store from settings: only at the edge of a run.

        A deployment run on a catalog nobody upgraded fails here, saying what to do.
        """
        engine = make_engine(settings.resolved_database_url)
        if not migrate.is_current(engine):
            engine.dispose()
            migrate.require_current(settings.resolved_database_url)
        return cls(settings, make_session_factory(engine), open_store(settings))

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """One write transaction holding SQLite's write lock from its first statement."""
        with self.sessions.begin() as session:
            begin_immediate(session)
            yield session

    @property
    def retention(self) -> timedelta:
        return timedelta(days=self.settings.retention_days)

    @property
    def delivery_retention(self) -> timedelta:
        return timedelta(days=self.settings.delivery_retention_days)

    @property
    def upload_ttl(self) -> timedelta:
        return timedelta(hours=self.settings.upload_ttl_hours)

    @property
    def grace(self) -> timedelta:
        return timedelta(minutes=self.settings.orphan_grace_minutes)

    def close(self) -> None:
        engine = self.sessions.kw.get("bind")
        if engine is not None:
            engine.dispose()


@dataclass(frozen=True)
class Action:
    """One lifecycle step, planned, taken or skipped: a report row, an audit row, an event.

    ``action`` is the audit action and the event name after ``mediamill.``.
    """

    action: str
    workspace: str
    status: Status
    media_id: str | None = None
    subject: str | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    """What a lifecycle run planned or did; the flow's return value and the CLI's JSON."""

    job: str
    workspace: str | None
    dry_run: bool
    now: datetime
    actions: list[Action] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per action, how many were planned, done or skipped."""
        counts: dict[str, dict[str, int]] = {}
        for action in self.actions:
            per_status = counts.setdefault(action.action, {})
            per_status[action.status] = per_status.get(action.status, 0) + 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "workspace": self.workspace,
            "dry_run": self.dry_run,
            "now": self.now.isoformat(),
            "counts": self.counts(),
            "actions": [a.as_dict() for a in self.actions[:MAX_REPORTED_ACTIONS]],
            "truncated": max(0, len(self.actions) - MAX_REPORTED_ACTIONS),
        }


def blob_hash_of_key(key: str) -> str | None:
    """The hash of the blob a key belongs to, read from its filename; None for foreign keys."""
    match = _BLOB_FILENAME.fullmatch(key.rpartition("/")[2])
    return match.group(1) if match else None


def _list_all(store: ObjectStore, prefix: str) -> list[ListedObject]:
    return list(store.list_prefix(prefix))


def _list_leftovers(store: ObjectStore, prefix: str) -> list[Leftover]:
    return store.list_leftovers(prefix)


# Planning holds no lock: a blip re-lists, patiently, rather than failing the whole sweep.
_listing = retry_transient_storage(_list_all)
_leftovers = retry_transient_storage(_list_leftovers)

# Steps run under a catalog transaction's locks, which other writers wait for: brief
# retries, and a step that still fails is skipped for the next sweep to take again.
_relisting = retry_transient_storage_briefly(_list_all)
_leftovers_now = retry_transient_storage_briefly(_list_leftovers)


@retry_transient_storage_briefly
def _delete_objects(store: ObjectStore, keys: list[str]) -> int:
    return store.delete_many(keys)


@retry_transient_storage_briefly
def _delete_leftover_file(store: ObjectStore, key: str) -> bool:
    return store.delete_leftover(key)


@retry_transient_storage_briefly
def _exists(store: ObjectStore, key: str) -> bool:
    return store.exists(key)


def _modified_now(store: ObjectStore, key: str) -> datetime | None:
    """The object's modification time read again now; None if it is gone."""
    for listed in _relisting(store, key):
        if listed.key == key:
            return listed.modified
    return None


# -- entity deleted ---------------------------------------------------------------------


def clean_entity(
    ctx: CleanupContext,
    workspace: str,
    entity: life.Entity,
    *,
    actor: str | None,
    now: datetime,
    dry_run: bool,
) -> list[Action]:
    """Detach the entity's media, soft-delete those uploaded for it that are left alone."""
    status: Status = "planned" if dry_run else "done"
    if dry_run:
        with ctx.sessions() as session:
            found = repo.find_workspace(session, workspace)
            if found is None:
                return []
            result = life.cleanup_entity(
                session, found.id, entity, actor=actor, now=now, apply=False
            )
    else:
        with ctx.writing() as session:
            found = repo.find_workspace(session, workspace)
            if found is None:
                return []
            result = life.cleanup_entity(
                session, found.id, entity, actor=actor, now=now, apply=True
            )
    subject = str(entity)
    actions = [
        Action("media.detached", workspace, status, str(m), subject) for m in result.detached
    ]
    actions += [
        Action("media.deleted", workspace, status, str(m), subject, details={"reason": "entity"})
        for m in result.deleted
    ]
    actions += [
        Action("media.deleted", workspace, "skipped", str(m), subject, reason=why)
        for m, why in result.kept
    ]
    return actions


# -- orphan sweep -----------------------------------------------------------------------


@dataclass(frozen=True)
class StrayObject:
    """An object under a workspace prefix that no catalog row pointed at when planned."""

    workspace_id: int
    key: str
    size: int
    modified: datetime


@dataclass(frozen=True)
class BlobObjects:
    """Keys of one blob that the store lacked (or, to clear a flag, no longer lacks)."""

    workspace_id: int
    blob_id: int
    sha256: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class LeftoverFile:
    """A file an interrupted write left under a workspace prefix (see `Leftover`)."""

    workspace_id: int
    key: str
    object_key: str
    size: int
    modified: datetime


@dataclass
class OrphanPlan:
    """Candidates of one orphan sweep, re-checked one by one when executed."""

    now: datetime
    workspaces: dict[int, str]
    stale_uploads: list[tuple[uuid.UUID, int]] = field(default_factory=list)
    strays: list[StrayObject] = field(default_factory=list)
    missing: list[BlobObjects] = field(default_factory=list)
    recovered: list[BlobObjects] = field(default_factory=list)
    # Files killed writes left (temp files, metadata without its object), older than grace.
    leftovers: list[LeftoverFile] = field(default_factory=list)
    # Left alone already at planning time, reported so a run says why an object stayed.
    spared: list[Action] = field(default_factory=list)

    def planned(self) -> list[Action]:
        """The plan as report rows, for a dry run."""
        slug = self.workspaces.__getitem__
        actions = [
            Action("media.deleted", slug(ws), "planned", str(m), details={"reason": "stale"})
            for m, ws in self.stale_uploads
        ]
        actions += [_stray_action(slug(s.workspace_id), s, "planned") for s in self.strays]
        actions += [
            _blob_action("blob.missing_objects", slug(b.workspace_id), b) for b in self.missing
        ]
        actions += [
            _blob_action("blob.objects_found", slug(b.workspace_id), b) for b in self.recovered
        ]
        actions += [_leftover_action(slug(s.workspace_id), s, "planned") for s in self.leftovers]
        return actions + self.spared


def _stray_action(
    workspace: str, stray: StrayObject, status: Status, reason: str | None = None
) -> Action:
    details = {"key": stray.key, "size": stray.size, "modified": stray.modified.isoformat()}
    return Action("object.deleted", workspace, status, None, stray.key[:255], reason, details)


def _leftover_action(
    workspace: str, leftover: LeftoverFile, status: Status, reason: str | None = None
) -> Action:
    details = {
        "key": leftover.key,
        "object_key": leftover.object_key,
        "size": leftover.size,
        "modified": leftover.modified.isoformat(),
    }
    return Action("leftover.deleted", workspace, status, None, leftover.key[:255], reason, details)


def _blob_action(
    action: str,
    workspace: str,
    blob: BlobObjects,
    status: Status = "planned",
    reason: str | None = None,
) -> Action:
    details = {"blob_id": blob.blob_id, "keys": list(blob.keys)}
    return Action(action, workspace, status, None, f"blob:{blob.sha256}", reason, details)


def plan_orphan_sweep(ctx: CleanupContext, workspace: str | None, now: datetime) -> OrphanPlan:
    """Read the catalog, then list the store, and work out what the sweep would do.

    The catalog is read first: an object written after that read can only look stray, and
    strays are re-checked before any delete; reading it second could report as missing an
    object that a purge removed in between.
    """
    with ctx.sessions() as session:
        plan = OrphanPlan(now=now, workspaces=life.workspaces(session, workspace))
        ids = list(plan.workspaces)
        plan.stale_uploads = life.stale_uploads(session, ids, now - ctx.upload_ttl)
        catalog = {
            ws: (
                life.referenced_keys(session, ws),
                life.in_flight_hashes(session, ws),
                life.ready_blobs(session, ws),
            )
            for ws in ids
        }
        incoming = {ws: uploads.in_flight_incoming_keys(session, ws) for ws in ids}
    for ws, staged in incoming.items():
        _plan_incoming(ctx, plan, ws, staged, now - ctx.upload_ttl)
    for ws, (referenced, in_flight, blobs) in catalog.items():
        listed = {obj.key: obj for obj in _listing(ctx.store, workspace_prefix(ws))}
        _plan_strays(plan, ws, listed, referenced, in_flight, now - ctx.grace)
        _plan_leftovers(ctx, plan, ws, in_flight, now - ctx.grace)
        for blob in blobs:
            keys = life.blob_keys(blob)
            absent = tuple(key for key in keys if key not in listed)
            found = BlobObjects(ws, blob.id, blob.sha256, absent or tuple(keys))
            if absent:
                plan.missing.append(found)
            elif life.MISSING_OBJECTS in blob.meta:
                plan.recovered.append(found)
    return plan


def _plan_incoming(
    ctx: CleanupContext, plan: OrphanPlan, workspace_id: int, in_flight: set[str], cutoff: datetime
) -> None:
    """Staged uploads nobody turned into media within the upload TTL are strays too."""
    slug = plan.workspaces[workspace_id]
    try:
        staged = _listing(ctx.store, incoming_prefix(slug))
    except ValueError:
        return  # a slug no upload link could have been issued for
    for obj in staged:
        stray = StrayObject(workspace_id, obj.key, obj.size, obj.modified)
        if obj.key in in_flight:
            plan.spared.append(_stray_action(slug, stray, "skipped", "its upload is in flight"))
        elif obj.modified <= cutoff:
            plan.strays.append(stray)


def _plan_leftovers(
    ctx: CleanupContext, plan: OrphanPlan, workspace_id: int, in_flight: set[str], cutoff: datetime
) -> None:
    """What killed writes left: deleted once past the grace period unless its upload runs.

    Young ones are not reported: they are mostly the files of writes still going on.
    """
    slug = plan.workspaces[workspace_id]
    for found in _leftovers(ctx.store, workspace_prefix(workspace_id)):
        if found.modified > cutoff:
            continue
        leftover = LeftoverFile(
            workspace_id, found.key, found.object_key, found.size, found.modified
        )
        if blob_hash_of_key(found.object_key) in in_flight:
            reason = "its upload is in flight"
            plan.spared.append(_leftover_action(slug, leftover, "skipped", reason))
        else:
            plan.leftovers.append(leftover)


def _plan_strays(
    plan: OrphanPlan,
    workspace_id: int,
    listed: dict[str, ListedObject],
    referenced: set[str],
    in_flight: set[str],
    cutoff: datetime,
) -> None:
    slug = plan.workspaces[workspace_id]
    for key, obj in listed.items():
        if key in referenced:
            continue
        stray = StrayObject(workspace_id, key, obj.size, obj.modified)
        if blob_hash_of_key(key) in in_flight:
            plan.spared.append(_stray_action(slug, stray, "skipped", "its upload is in flight"))
        elif obj.modified > cutoff:
            plan.spared.append(
                _stray_action(slug, stray, "skipped", "younger than the grace period")
            )
        else:
            plan.strays.append(stray)


def execute_orphan_sweep(ctx: CleanupContext, plan: OrphanPlan, actor: str) -> list[Action]:
    """Take each planned step after re-checking it on locked rows; report every outcome."""
    actions = [
        _expire_upload(ctx, plan, media_id, ws, actor) for media_id, ws in plan.stale_uploads
    ]
    actions += [_delete_stray(ctx, plan, stray, actor) for stray in plan.strays]
    actions += [_flag_missing(ctx, plan, blob, actor) for blob in plan.missing]
    actions += [_clear_missing(ctx, plan, blob, actor) for blob in plan.recovered]
    actions += [_delete_leftover(ctx, plan, leftover, actor) for leftover in plan.leftovers]
    return actions + plan.spared


def _expire_upload(
    ctx: CleanupContext, plan: OrphanPlan, media_id: uuid.UUID, workspace_id: int, actor: str
) -> Action:
    slug = plan.workspaces[workspace_id]
    details = {"reason": "stale"}
    with ctx.writing() as session:
        try:
            media = life.lock_media(session, media_id, workspace_id)
        except NotFound:
            return Action(
                "media.deleted", slug, "skipped", str(media_id), reason="gone", details=details
            )
        why = life.still_stale(session, media, plan.now - ctx.upload_ttl)
        if why is None:
            life.soft_delete(
                session, media, actor=actor, now=plan.now, reason="temporary upload never attached"
            )
    status: Status = "skipped" if why else "done"
    return Action("media.deleted", slug, status, str(media_id), reason=why, details=details)


def _delete_stray(ctx: CleanupContext, plan: OrphanPlan, stray: StrayObject, actor: str) -> Action:
    slug = plan.workspaces[stray.workspace_id]
    try:
        with ctx.writing() as session:
            why = _why_stray_stays(ctx, session, stray, plan.now - ctx.grace)
            if why is None:
                deleted = _delete_objects(ctx.store, [stray.key])
                repo.record_audit(
                    session,
                    workspace_id=stray.workspace_id,
                    action="object.deleted",
                    actor=actor,
                    subject=stray.key[:255],
                    details={"key": stray.key, "size": stray.size, "deleted": deleted},
                )
    except StorageError as error:
        return _stray_action(slug, stray, "skipped", f"storage error: {error}")
    return _stray_action(slug, stray, "skipped" if why else "done", why)


def _delete_leftover(
    ctx: CleanupContext, plan: OrphanPlan, leftover: LeftoverFile, actor: str
) -> Action:
    """Delete a file a killed write left, re-checked like a stray under the blob's lock."""
    slug = plan.workspaces[leftover.workspace_id]
    try:
        with ctx.writing() as session:
            why = _why_leftover_stays(ctx, session, leftover, plan.now - ctx.grace)
            if why is None and not _delete_leftover_file(ctx.store, leftover.key):
                why = "already gone"
            if why is None:
                repo.record_audit(
                    session,
                    workspace_id=leftover.workspace_id,
                    action="leftover.deleted",
                    actor=actor,
                    subject=leftover.key[:255],
                    details={"key": leftover.key, "object_key": leftover.object_key},
                )
    except StorageError as error:
        return _leftover_action(slug, leftover, "skipped", f"storage error: {error}")
    return _leftover_action(slug, leftover, "skipped" if why else "done", why)


def _why_leftover_stays(
    ctx: CleanupContext, session: Session, leftover: LeftoverFile, cutoff: datetime
) -> str | None:
    """An upload of the blob running now (a reclaimed claim) may still be writing it."""
    sha = blob_hash_of_key(leftover.object_key)
    if sha is not None:
        blob = life.lock_blob_by_hash(session, leftover.workspace_id, sha)
        if blob is not None and blob.status == BlobStatus.processing:
            return "its upload is in flight"
    directory = leftover.key.rpartition("/")[0]
    now = {found.key: found.modified for found in _leftovers_now(ctx.store, f"{directory}/")}
    modified = now.get(leftover.key)
    if modified is None:
        return "already gone"
    if modified > cutoff:
        return "written again since the sweep was planned"
    return None


def _why_stray_stays(
    ctx: CleanupContext, session: Session, stray: StrayObject, cutoff: datetime
) -> str | None:
    """Re-check one stray object, holding the lock on the blob its name points at."""
    sha = blob_hash_of_key(stray.key)
    if stray.key.startswith(f"{INCOMING}/"):
        if stray.key in uploads.in_flight_incoming_keys(session, stray.workspace_id):
            return "its upload is in flight"
    elif sha is None:
        if life.key_referenced_anywhere(session, stray.workspace_id, stray.key):
            return "referenced since the sweep was planned"
    else:
        blob = life.lock_blob_by_hash(session, stray.workspace_id, sha)
        if blob is not None and blob.status == BlobStatus.processing:
            return "its upload is in flight"
        if blob is not None and stray.key in life.blob_keys(blob):
            return "referenced since the sweep was planned"
    modified = _modified_now(ctx.store, stray.key)
    if modified is None:
        return "already gone"
    if modified > cutoff:
        return "written again since the sweep was planned"
    return None


def _flag_missing(ctx: CleanupContext, plan: OrphanPlan, found: BlobObjects, actor: str) -> Action:
    slug = plan.workspaces[found.workspace_id]
    with ctx.writing() as session:
        blob = life.load_blob(session, found.blob_id)
        if blob is None or blob.status != BlobStatus.ready:
            return _blob_action(
                "blob.missing_objects", slug, found, "skipped", "blob no longer ready"
            )
        keys = set(life.blob_keys(blob))
        still = tuple(k for k in found.keys if k in keys and not _exists(ctx.store, k))
        if still:
            life.flag_missing(session, blob, still, now=plan.now, actor=actor)
    if not still:
        return _blob_action("blob.missing_objects", slug, found, "skipped", "objects are back")
    return _blob_action(
        "blob.missing_objects",
        slug,
        BlobObjects(found.workspace_id, found.blob_id, found.sha256, still),
        "done",
    )


def _clear_missing(ctx: CleanupContext, plan: OrphanPlan, found: BlobObjects, actor: str) -> Action:
    slug = plan.workspaces[found.workspace_id]
    with ctx.writing() as session:
        blob = life.load_blob(session, found.blob_id)
        present = blob is not None and all(_exists(ctx.store, k) for k in life.blob_keys(blob))
        if blob is not None and present and life.MISSING_OBJECTS in blob.meta:
            life.clear_missing(session, blob, actor=actor)
            return _blob_action("blob.objects_found", slug, found, "done")
    return _blob_action("blob.objects_found", slug, found, "skipped", "still missing or gone")


# -- purge ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PurgeCandidate:
    media_id: uuid.UUID
    workspace_id: int
    blob_id: int | None


@dataclass
class PurgePlan:
    """Media deleted past retention, and blobs no media uses, as of ``now``."""

    now: datetime
    workspaces: dict[int, str]
    # Settled webhook deliveries received before this are forgotten.
    deliveries_before: datetime
    media: list[PurgeCandidate] = field(default_factory=list)
    unused_blobs: list[tuple[int, int]] = field(default_factory=list)  # (blob, workspace)
    # What the plan expects for each blob it touches: the report of a dry run.
    blobs: list[Action] = field(default_factory=list)
    # How many such deliveries each workspace has.
    deliveries: dict[int, int] = field(default_factory=dict)

    def planned(self) -> list[Action]:
        actions = [
            Action("media.purged", self.workspaces[c.workspace_id], "planned", str(c.media_id))
            for c in self.media
        ]
        forgotten = [
            _deliveries_action(self.workspaces[workspace_id], "planned", count, self)
            for workspace_id, count in self.deliveries.items()
        ]
        return actions + self.blobs + forgotten


def _deliveries_action(
    workspace: str, status: Status, count: int, plan: PurgePlan, reason: str | None = None
) -> Action:
    details = {"count": count, "received_before": plan.deliveries_before.isoformat()}
    return Action("deliveries.forgotten", workspace, status, reason=reason, details=details)


def plan_purge(ctx: CleanupContext, workspace: str | None, now: datetime) -> PurgePlan:
    """Media soft-deleted more than ``retention_days`` ago, and what purging them frees."""
    with ctx.sessions() as session:
        plan = PurgePlan(
            now=now,
            workspaces=life.workspaces(session, workspace),
            deliveries_before=now - ctx.delivery_retention,
        )
        ids = list(plan.workspaces)
        plan.media = [
            PurgeCandidate(m, ws, b)
            for m, ws, b in life.purgeable_media(session, ids, now - ctx.retention)
        ]
        plan.unused_blobs = life.unused_blobs(session, ids, now - ctx.grace)
        leaving: dict[int, int] = {}
        for candidate in plan.media:
            if candidate.blob_id is not None:
                leaving[candidate.blob_id] = leaving.get(candidate.blob_id, 0) + 1
        for blob_id in [*leaving, *(blob_id for blob_id, _ in plan.unused_blobs)]:
            blob = life.load_blob(session, blob_id, lock=False)
            if blob is None:
                continue
            slug = plan.workspaces[blob.workspace_id]
            staying = life.blob_users(session, blob_id) - leaving.get(blob_id, 0)
            plan.blobs.append(_planned_blob(slug, blob, staying))
        plan.deliveries = access.settled_deliveries(session, ids, plan.deliveries_before)
    return plan


def _planned_blob(workspace: str, blob: Blob, staying: int) -> Action:
    details = {"blob_id": blob.id, "keys": life.blob_keys(blob)}
    subject = f"blob:{blob.sha256}"
    if blob.status == BlobStatus.processing:
        reason: str | None = "an upload of it is in flight"
    elif staying:
        reason = f"still used by {staying} media"
    else:
        reason = None
    return Action(
        "blob.purged", workspace, "skipped" if reason else "planned", None, subject, reason, details
    )


def execute_purge(ctx: CleanupContext, plan: PurgePlan, actor: str) -> list[Action]:
    """Purge blob by blob: its planned media, then the blob itself if nothing else uses it."""
    actions: list[Action] = []
    for blob_id, group in groupby(plan.media, key=lambda c: c.blob_id):
        candidates = list(group)
        workspace_id = candidates[0].workspace_id
        actions.extend(_purge_group(ctx, plan, workspace_id, blob_id, candidates, actor))
    for blob_id, workspace_id in plan.unused_blobs:
        actions.extend(_purge_group(ctx, plan, workspace_id, blob_id, [], actor))
    for workspace_id in plan.deliveries:
        actions.append(_forget_deliveries(ctx, plan, workspace_id, actor))
    return actions


def _forget_deliveries(
    ctx: CleanupContext, plan: PurgePlan, workspace_id: int, actor: str
) -> Action:
    """Forget a workspace's old settled deliveries, a batch per transaction.

    A redelivery of a forgotten event is accepted and run again: the retention must outlast
    every sender's retries. Short transactions keep SQLite's write lock free for the API.
    """
    forgotten = 0
    while True:
        with ctx.writing() as session:
            batch = access.forget_settled_deliveries(
                session, workspace_id, plan.deliveries_before, DELIVERY_BATCH
            )
            forgotten += batch
            last = batch < DELIVERY_BATCH
            if last and forgotten:
                repo.record_audit(
                    session,
                    workspace_id=workspace_id,
                    action="deliveries.forgotten",
                    actor=actor,
                    details={
                        "count": forgotten,
                        "received_before": plan.deliveries_before.isoformat(),
                    },
                )
        if last:
            break
    slug = plan.workspaces[workspace_id]
    if not forgotten:
        return _deliveries_action(slug, "skipped", 0, plan, "forgotten since planned")
    return _deliveries_action(slug, "done", forgotten, plan)


def _purge_group(
    ctx: CleanupContext,
    plan: PurgePlan,
    workspace_id: int,
    blob_id: int | None,
    candidates: list[PurgeCandidate],
    actor: str,
) -> list[Action]:
    """One transaction: purge the media, then the blob if the re-check lets it go."""
    actions: list[Action] = []
    try:
        with ctx.writing() as session:
            cutoff = plan.now - ctx.retention
            actions.extend(_purge_one(session, plan, c, cutoff, actor) for c in candidates)
            if blob_id is not None:
                blob_action = _purge_blob(ctx, session, plan, blob_id, actor)
                if blob_action is not None:
                    actions.append(blob_action)
    except StorageError as error:
        slug = plan.workspaces[workspace_id]
        reason = f"storage error: {error}"
        return [
            Action("media.purged", slug, "skipped", str(c.media_id), reason=reason)
            for c in candidates
        ] + [Action("blob.purged", slug, "skipped", reason=reason, details={"blob_id": blob_id})]
    return actions


def _purge_one(
    session: Session, plan: PurgePlan, candidate: PurgeCandidate, cutoff: datetime, actor: str
) -> Action:
    slug = plan.workspaces[candidate.workspace_id]
    media_id = str(candidate.media_id)
    try:
        media = life.lock_media(session, candidate.media_id, candidate.workspace_id)
    except NotFound:
        return Action("media.purged", slug, "skipped", media_id, reason="gone")
    purged = life.purge_media(session, media, cutoff=cutoff, now=plan.now, actor=actor)
    if not purged:
        return Action("media.purged", slug, "skipped", media_id, reason="restored since planned")
    return Action(
        "media.purged", slug, "done", media_id, details={"sha256": media.meta.get("sha256")}
    )


def _purge_blob(
    ctx: CleanupContext, session: Session, plan: PurgePlan, blob_id: int, actor: str
) -> Action | None:
    blob = life.load_blob(session, blob_id)
    if blob is None:
        return None
    slug = plan.workspaces[blob.workspace_id]
    keys = life.blob_keys(blob)
    details: dict[str, Any] = {"blob_id": blob.id, "keys": keys}
    subject = f"blob:{blob.sha256}"
    why = life.why_blob_stays(session, blob)
    if why is not None:
        return Action("blob.purged", slug, "skipped", None, subject, why, details)
    deleted = _delete_objects(ctx.store, keys)
    life.remove_blob(session, blob, actor=actor, deleted_objects=deleted)
    return Action("blob.purged", slug, "done", None, subject, None, {**details, "deleted": deleted})


# -- Prefect tasks ----------------------------------------------------------------------

clean_entity_task = catalog_task("entity-cleanup")(clean_entity)
plan_orphan_sweep_task = catalog_task("plan-orphan-sweep")(plan_orphan_sweep)
execute_orphan_sweep_task = catalog_task("orphan-sweep")(execute_orphan_sweep)
plan_purge_task = catalog_task("plan-purge")(plan_purge)
execute_purge_task = catalog_task("purge")(execute_purge)
