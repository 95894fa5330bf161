"""Catalog health: a Great Expectations suite over the catalog's own rows.

The schema's constraints catch what one row can get wrong; these expectations catch what
only the rows together can: a ready media whose blob is not ready, a blob that lacks a
variant the current recipe plans, an attachment left on a purged media, a key outside its
tenant's prefix, a hash stored in the wrong case that the unique constraint let through.
They are what an incident, a hand-written SQL fix or a buggy migration leaves behind.

Which variants a media type must have and where a workspace's keys live belong to layers
above the catalog (``tasks.recipes``, ``storage.keys``), so callers hand both in.

Tables are read into pandas with SQLAlchemy, statuses and types as the raw strings stored
(an unknown value must be reported, not fail the read), and checked in memory: fine for
catalogs of a few million rows; a larger one is checked a workspace at a time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa

from mediamill.catalog.errors import NotFound
from mediamill.catalog.expectations import (
    CheckResult,
    Column,
    Table,
    gxe,
    results_frame,
    run_checks,
)
from mediamill.catalog.models import (
    Attachment,
    Blob,
    BlobStatus,
    Media,
    MediaStatus,
    MediaType,
    Variant,
    Workspace,
)

__all__ = ["HealthReport", "KeyPrefix", "PlannedVariants", "check_catalog", "load_tables"]

PlannedVariants = Callable[[str, bool], Collection[tuple[str, str, str]]]
"""``(media_type, has_alpha) -> {(name, format, spec_version)}``: what a full render makes."""
KeyPrefix = Callable[[int], str]
"""``workspace_id -> prefix`` every key of that workspace starts with."""

SHA256_PATTERN = r"^[0-9a-f]{64}$"
# Put in place of a ready media's missing blob, so "points at no blob" is reported too.
NO_BLOB = "no blob"


@dataclass(frozen=True)
class HealthReport:
    """Every expectation's outcome over one workspace, or the whole catalog."""

    workspace: str | None
    results: tuple[CheckResult, ...]

    @property
    def healthy(self) -> bool:
        return all(result.success for result in self.results)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(result for result in self.results if not result.success)

    def frame(self) -> pd.DataFrame:
        """Expectation, table, column, success, rows checked, unexpected count, sample."""
        return results_frame(self.results)

    def as_dict(self) -> dict[str, Any]:
        return {
            "workspace": self.workspace,
            "healthy": self.healthy,
            "expectations": [result.record() for result in self.results],
        }


def check_catalog(
    connection: sa.Connection,
    *,
    planned_variants: PlannedVariants,
    workspace_prefix: KeyPrefix,
    workspace: str | None = None,
) -> HealthReport:
    """Run the health suite over one workspace (by slug) or, without one, every workspace."""
    frames = load_tables(connection, _workspace_id(connection, workspace))
    tables = health_tables(frames, planned_variants, workspace_prefix)
    return HealthReport(workspace=workspace, results=tuple(run_checks(tables)))


def health_tables(
    frames: dict[str, pd.DataFrame],
    planned_variants: PlannedVariants,
    workspace_prefix: KeyPrefix,
) -> list[Table]:
    """The suite: each table's frame, with its computed columns, and its expectations."""
    blobs = frames["blobs"].copy()
    variants = frames["variants"].copy()
    media = frames["media"].copy()
    blobs["sha256_lower"] = blobs["sha256"].str.lower()
    blobs["missing_variants"] = _missing_variants(blobs, variants, planned_variants)
    blobs["key_outside_workspace"] = _outside(blobs, "original_key", workspace_prefix)
    variants["key_outside_workspace"] = _outside(variants, "key", workspace_prefix)
    media["blob_status"] = media["blob_status"].fillna(NO_BLOB)
    # A blank code is as useless to a machine as none.
    media["error_code"] = media["error_code"].replace("", None)
    return [
        Table("blobs", blobs, _blob_expectations()),
        Table("media", media, _media_expectations()),
        Table("variants", variants, _variant_expectations(), id_columns=("id", "blob_id")),
        Table(
            "attachments",
            frames["attachments"],
            _attachment_expectations(),
            id_columns=("id", "media_id"),
        ),
    ]


def _blob_expectations() -> list[gxe.Expectation]:
    return [
        gxe.ExpectColumnValuesToMatchRegex(
            column="sha256", regex=SHA256_PATTERN, description="sha256 is 64 lowercase hex digits"
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="size", min_value=1, description="blob sizes are positive"
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="status", value_set=_values(BlobStatus), description="blob statuses are known"
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="media_type",
            value_set=_values(MediaType),
            description="blob media types are known",
        ),
        # Compared lowercased: a copy stored in another case slips past the unique constraint.
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=["workspace_id", "sha256_lower"],
            description="one blob per (workspace, sha256)",
        ),
        gxe.ExpectColumnValueLengthsToEqual(
            column="missing_variants",
            value=0,
            row_condition=Column("status") == BlobStatus.ready.value,
            description="ready blobs have every variant the recipe plans",
        ),
        gxe.ExpectColumnValuesToBeNull(
            column="key_outside_workspace",
            description="originals are keyed under their workspace",
        ),
    ]


def _media_expectations() -> list[gxe.Expectation]:
    return [
        gxe.ExpectColumnValuesToBeInSet(
            column="status", value_set=_values(MediaStatus), description="media statuses are known"
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="media_type",
            value_set=_values(MediaType),
            description="media types are known",
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="blob_status",
            value_set=[BlobStatus.ready.value],
            row_condition=Column("status") == MediaStatus.ready.value,
            description="ready media point at a ready blob",
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="error_code",
            row_condition=Column("status") == MediaStatus.failed.value,
            description="failed media carry an error code",
        ),
    ]


def _variant_expectations() -> list[gxe.Expectation]:
    return [
        gxe.ExpectColumnValuesToBeBetween(
            column="size", min_value=1, description="variant sizes are positive"
        ),
        gxe.ExpectColumnValuesToBeNull(
            column="key_outside_workspace",
            description="variants are keyed under their blob's workspace",
        ),
    ]


def _attachment_expectations() -> list[gxe.Expectation]:
    return [
        gxe.ExpectColumnValuesToNotBeInSet(
            column="media_status",
            value_set=[MediaStatus.purged.value],
            description="no attachment points at a purged media",
        )
    ]


def load_tables(connection: sa.Connection, workspace_id: int | None) -> dict[str, pd.DataFrame]:
    """The rows the suite reads, one frame per table, joined where a check needs it."""
    queries = {
        "blobs": sa.select(
            Blob.id,
            Blob.workspace_id,
            Blob.sha256,
            Blob.size,
            _raw(Blob.media_type).label("media_type"),
            _raw(Blob.status).label("status"),
            Blob.original_key,
            Blob.meta.label("meta"),
        ),
        "media": sa.select(
            Media.id,
            Media.workspace_id,
            Media.blob_id,
            _raw(Media.status).label("status"),
            _raw(Media.media_type).label("media_type"),
            Media.error_code,
            _raw(Blob.status).label("blob_status"),
        ).outerjoin(Blob, Media.blob_id == Blob.id),
        "variants": sa.select(
            Variant.id,
            Variant.blob_id,
            Blob.workspace_id,
            Variant.name,
            Variant.format,
            Variant.spec_version,
            Variant.size,
            Variant.key,
        ).join(Blob, Variant.blob_id == Blob.id),
        "attachments": sa.select(
            Attachment.id,
            Attachment.workspace_id,
            Attachment.media_id,
            _raw(Media.status).label("media_status"),
        ).join(Media, Attachment.media_id == Media.id),
    }
    owners = {
        "blobs": Blob.workspace_id,
        "media": Media.workspace_id,
        "variants": Blob.workspace_id,
        "attachments": Attachment.workspace_id,
    }
    frames = {}
    for name, query in queries.items():
        if workspace_id is not None:
            query = query.where(owners[name] == workspace_id)
        frames[name] = pd.read_sql_query(query, connection)
    # UUIDs as text: samples and JSON show them as they appear everywhere else.
    frames["media"]["id"] = frames["media"]["id"].astype(str)
    frames["attachments"]["media_id"] = frames["attachments"]["media_id"].astype(str)
    return frames


def _workspace_id(connection: sa.Connection, slug: str | None) -> int | None:
    if slug is None:
        return None
    found = connection.scalar(sa.select(Workspace.id).where(Workspace.slug == slug))
    if found is None:
        raise NotFound(f"no workspace {slug!r}")
    return int(found)


def _raw(column: Any) -> sa.ColumnElement[str]:
    """The stored string: reading through the enum type would fail on an unknown value."""
    return sa.type_coerce(column, sa.String)


def _values(enum_class: type[MediaStatus | BlobStatus | MediaType]) -> list[str]:
    return [member.value for member in enum_class]


def _outside(frame: pd.DataFrame, column: str, workspace_prefix: KeyPrefix) -> pd.Series:
    """The key where it is not under its workspace's prefix; null where it is."""
    outside = [
        None if str(key).startswith(workspace_prefix(int(workspace_id))) else key
        for key, workspace_id in zip(frame[column], frame["workspace_id"], strict=True)
    ]
    return pd.Series(outside, index=frame.index, dtype=object)


def _missing_variants(
    blobs: pd.DataFrame, variants: pd.DataFrame, planned_variants: PlannedVariants
) -> pd.Series:
    """``name.format@version, ...`` a ready blob lacks (empty when complete); null otherwise."""
    present: dict[int, set[tuple[str, str, str]]] = defaultdict(set)
    for blob_id, name, fmt, version in zip(
        variants["blob_id"],
        variants["name"],
        variants["format"],
        variants["spec_version"],
        strict=True,
    ):
        present[int(blob_id)].add((str(name), str(fmt), str(version)))
    plans: dict[tuple[str, bool], Collection[tuple[str, str, str]]] = {}
    missing: list[str | None] = []
    for blob_id, status, media_type, meta in zip(
        blobs["id"], blobs["status"], blobs["media_type"], blobs["meta"], strict=True
    ):
        if status != BlobStatus.ready.value:
            missing.append(None)
            continue
        has_alpha = bool(meta.get("has_alpha")) if isinstance(meta, dict) else False
        kind = (str(media_type), has_alpha)
        if kind not in plans:
            plans[kind] = planned_variants(*kind)
        lacking = set(plans[kind]) - present[int(blob_id)]
        missing.append(", ".join(sorted(f"{n}.{f}@{v}" for n, f, v in lacking)))
    return pd.Series(missing, index=blobs.index, dtype=object)
