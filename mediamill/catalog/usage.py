"""How much each workspace (or each uploader) stores: bytes and counts, as a DataFrame.

Two ways to count bytes, because they answer different questions:

- **logical** bytes are what the owner sees: every live media counts its blob's original
  and variants, so a duplicate upload counts again. Per user, this is the fair share.
- **physical** bytes are what the store holds after dedupe: each blob that a live media
  points at counts once. Per user, a blob two users uploaded counts for both, so per-user
  physical bytes do not add up to the workspace's.

A media is live until deleted or purged. A live media that failed owns nothing (its blob,
if any, failed and stores nothing): it is counted in ``failed`` only. Bytes come from blobs
that are ``ready`` or ``processing``; a processing blob has no variants yet. Quota
admission (`mediamill.catalog.quota`) counts originals only, because variant sizes are
unknown before rendering; usage reports both.

Columns of the DataFrame, one row per workspace (or per workspace and user):

===========================  =========================================================
``workspace``                the workspace slug
``user``                     the uploader (``None`` when unknown); with ``by_user`` only
``quota_bytes``              the workspace quota (nullable ``Int64``: ``<NA>`` = unlimited)
``media``                    live media that did not fail
``failed``                   live media that failed (no bytes)
``images`` ... ``documents``  ``media`` per media type: ``images``, ``videos``, ``models``,
                             ``documents``
``blobs``                    distinct blobs of those media
``logical_original_bytes``   originals, once per media
``logical_variant_bytes``    variants, once per media
``logical_bytes``            the sum of the two
``physical_original_bytes``  originals, once per blob
``physical_variant_bytes``   variants (every spec version still stored), once per blob
``physical_bytes``           the sum of the two: what the quota sweep compares
===========================  =========================================================

Every count and byte column is ``int64``. A workspace with no media has a row of zeros
(without ``by_user``; by user it has no rows). Sums run in the database, so the frame has
one row per owner however many media there are.

`record_snapshots` keeps a workspace frame as history (the ``quota_snapshots`` table), which
is what the daily quota sweep does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Select, Subquery, and_, case, func, select
from sqlalchemy.orm import Session

from mediamill.catalog.models import (
    Blob,
    BlobStatus,
    Media,
    MediaStatus,
    MediaType,
    QuotaSnapshot,
    QuotaState,
    Variant,
    Workspace,
)
from mediamill.catalog.quota import quota_state

__all__ = [
    "COUNT_COLUMNS",
    "TYPE_COLUMNS",
    "as_records",
    "latest_states",
    "record_snapshots",
    "usage",
]

TYPE_COLUMNS = {media_type: f"{media_type.value}s" for media_type in MediaType}
COUNT_COLUMNS = [
    "media",
    "failed",
    *TYPE_COLUMNS.values(),
    "blobs",
    "logical_original_bytes",
    "logical_variant_bytes",
    "logical_bytes",
    "physical_original_bytes",
    "physical_variant_bytes",
    "physical_bytes",
]

_GONE = (MediaStatus.deleted, MediaStatus.purged)
_STORED = (BlobStatus.ready, BlobStatus.processing)


def usage(session: Session, workspace: str | None = None, *, by_user: bool = False) -> pd.DataFrame:
    """Usage of ``workspace`` (every workspace when ``None``); see the module for columns.

    Read-only, and consistent within itself when run in one transaction.
    """
    workspaces = _workspaces(session, workspace)
    keys = ["workspace_id", "user"] if by_user else ["workspace_id"]
    logical = _frame(session, _logical_query(by_user, workspace))
    physical = _frame(session, _physical_query(by_user, workspace))
    owners = logical.merge(physical, on=keys, how="outer")
    # Every workspace gets a row; by user, only users with live uploads do.
    frame = workspaces.merge(owners, on="workspace_id", how="inner" if by_user else "left")
    for column in COUNT_COLUMNS:
        if column not in ("logical_bytes", "physical_bytes"):
            frame[column] = frame[column].fillna(0).astype("int64")
    frame["logical_bytes"] = frame["logical_original_bytes"] + frame["logical_variant_bytes"]
    frame["physical_bytes"] = frame["physical_original_bytes"] + frame["physical_variant_bytes"]
    frame = frame.sort_values(["workspace", *keys[1:]], na_position="last", ignore_index=True)
    ordered = ["workspace", *(["user"] if by_user else []), "quota_bytes", *COUNT_COLUMNS]
    return frame[ordered]


def as_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain JSON-ready dicts: Python ints, ``None`` for missing values."""
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    return records


def _workspaces(session: Session, slug: str | None) -> pd.DataFrame:
    query = select(Workspace.id, Workspace.slug, Workspace.quota_bytes)
    if slug is not None:
        query = query.where(Workspace.slug == slug)
    rows = session.execute(query).all()
    return pd.DataFrame(
        {
            "workspace_id": pd.Series([r.id for r in rows], dtype="int64"),
            "workspace": pd.Series([r.slug for r in rows], dtype="object"),
            "quota_bytes": pd.Series([r.quota_bytes for r in rows], dtype="Int64"),
        }
    )


def _frame(session: Session, query: Select[Any]) -> pd.DataFrame:
    result = session.execute(query)
    frame = pd.DataFrame(result.all(), columns=list(result.keys()))
    # Integers even when empty or when the driver returns Decimal sums (PostgreSQL's SUM of
    # a BIGINT is NUMERIC); the user stays an object, and pandas matches None keys in merges.
    return frame.astype({column: "int64" for column in frame.columns if column != "user"})


def _variant_bytes() -> Subquery:
    """Bytes of every variant each blob has, old spec versions included: they are stored."""
    return (
        select(Variant.blob_id, func.sum(Variant.size).label("bytes"))
        .group_by(Variant.blob_id)
        .subquery("variant_bytes")
    )


def _owners(by_user: bool, *columns: ColumnElement[Any]) -> list[ColumnElement[Any]]:
    owner: list[ColumnElement[Any]] = [Media.workspace_id.label("workspace_id")]
    if by_user:
        owner.append(Media.uploader.label("user"))
    return [*owner, *columns]


def _live(slug: str | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Media.status.not_in(_GONE)]
    if slug is not None:
        conditions.append(
            Media.workspace_id.in_(select(Workspace.id).where(Workspace.slug == slug))
        )
    return conditions


def _count(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    # SUM(CASE ...) rather than COUNT(*) FILTER: the same SQL on SQLite and PostgreSQL.
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _logical_query(by_user: bool, slug: str | None) -> Select[Any]:
    """Per owner: media counts, and each owned media's blob bytes (duplicates again)."""
    owned = Media.status != MediaStatus.failed
    variants = _variant_bytes()
    per_type = [
        _count(and_(owned, Media.media_type == t)).label(c) for t, c in TYPE_COLUMNS.items()
    ]
    columns = _owners(
        by_user,
        _count(owned).label("media"),
        _count(Media.status == MediaStatus.failed).label("failed"),
        *per_type,
        func.coalesce(func.sum(case((owned, Blob.size), else_=0)), 0).label(
            "logical_original_bytes"
        ),
        func.coalesce(func.sum(case((owned, variants.c.bytes), else_=0)), 0).label(
            "logical_variant_bytes"
        ),
    )
    return (
        select(*columns)
        .select_from(Media)
        .outerjoin(Blob, and_(Blob.id == Media.blob_id, Blob.status.in_(_STORED)))
        .outerjoin(variants, variants.c.blob_id == Blob.id)
        .where(*_live(slug))
        .group_by(*columns[: 2 if by_user else 1])
    )


def _physical_query(by_user: bool, slug: str | None) -> Select[Any]:
    """Per owner: each stored blob an owned live media points at, counted once."""
    owned_blobs = (
        select(*_owners(by_user, Media.blob_id.label("blob_id")))
        .join(Blob, and_(Blob.id == Media.blob_id, Blob.status.in_(_STORED)))
        .where(*_live(slug), Media.status != MediaStatus.failed)
        .distinct()
        .subquery("owned_blobs")
    )
    variants = _variant_bytes()
    keys = [owned_blobs.c.workspace_id, *([owned_blobs.c.user] if by_user else [])]
    return (
        select(
            *keys,
            func.count().label("blobs"),
            func.coalesce(func.sum(Blob.size), 0).label("physical_original_bytes"),
            func.coalesce(func.sum(variants.c.bytes), 0).label("physical_variant_bytes"),
        )
        .select_from(owned_blobs)
        .join(Blob, Blob.id == owned_blobs.c.blob_id)
        .outerjoin(variants, variants.c.blob_id == Blob.id)
        .group_by(*keys)
    )


def latest_states(session: Session, slugs: Sequence[str]) -> dict[str, QuotaState]:
    """The state of each workspace's newest snapshot, for telling a change from a repeat."""
    if not slugs:
        return {}
    newest = (
        select(QuotaSnapshot.workspace_id, func.max(QuotaSnapshot.taken_at).label("taken_at"))
        .group_by(QuotaSnapshot.workspace_id)
        .subquery("newest")
    )
    rows = session.execute(
        select(Workspace.slug, QuotaSnapshot.state)
        .join(QuotaSnapshot, QuotaSnapshot.workspace_id == Workspace.id)
        .join(
            newest,
            and_(
                newest.c.workspace_id == QuotaSnapshot.workspace_id,
                newest.c.taken_at == QuotaSnapshot.taken_at,
            ),
        )
        .where(Workspace.slug.in_(slugs))
    )
    return {slug: state for slug, state in rows}


def record_snapshots(
    session: Session, frame: pd.DataFrame, flow_run_id: uuid.UUID | None = None
) -> dict[str, QuotaSnapshot]:
    """One `QuotaSnapshot` per workspace row of a `usage` frame (not by user), by slug.

    The state compares physical bytes, originals and variants, with the quota.
    """
    records = as_records(frame)
    slugs = [record["workspace"] for record in records]
    found = session.execute(select(Workspace.slug, Workspace.id).where(Workspace.slug.in_(slugs)))
    ids = {slug: workspace_id for slug, workspace_id in found}
    snapshots = {}
    for record in records:
        snapshot = QuotaSnapshot(
            workspace_id=ids[record["workspace"]],
            quota_bytes=record["quota_bytes"],
            state=quota_state(record["physical_bytes"], record["quota_bytes"]),
            media_count=record["media"],
            blob_count=record["blobs"],
            media_by_type={t.value: record[column] for t, column in TYPE_COLUMNS.items()},
            logical_original_bytes=record["logical_original_bytes"],
            logical_variant_bytes=record["logical_variant_bytes"],
            physical_original_bytes=record["physical_original_bytes"],
            physical_variant_bytes=record["physical_variant_bytes"],
            flow_run_id=flow_run_id,
        )
        session.add(snapshot)
        snapshots[record["workspace"]] = snapshot
    session.flush()
    return snapshots
