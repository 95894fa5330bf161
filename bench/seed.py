"""A large, realistic catalog, fast: what the API load benchmark pages through.

``seed_catalog(url, rows)`` migrates a fresh catalog (SQLite file or PostgreSQL database)
with the real migrations, then bulk-loads ``rows`` media over `WORKSPACES` workspaces. The
measured workspace (`MEASURED_WORKSPACE`) holds about half of them, so its indexes have to
pick its rows out of a table that is mostly other tenants'. Every media is one upload:

- types: 80% image, 10% video, 6% document, 4% model; MIME types, sizes and pixel sizes
  to match, plausible camera / export filenames;
- statuses: mostly ready, with some failed, pending, processing, soft-deleted and purged
  (so the ``status NOT IN (deleted, purged)`` filter has rows to skip), as the scheduled
  sweeps leave them: a media deleted more than `RETENTION_DAYS` + 1 days ago was purged by
  an earlier daily purge, so only the last day's expiries are left for the next one;
- ``created_at`` spread over the last year, inserted oldest first like a live catalog;
- 3% are duplicate uploads pointing at an earlier blob of the same workspace;
- every media is attached to a product (galleries of `GALLERY` in upload order, the entity
  stamped in ``meta.upload_entity`` as ingest does), except purged ones and a
  `TEMPORARY_SHARE` of the last `TEMPORARY_HOURS` hours' uploads: temporary uploads, those
  past the 24 h TTL being the orphan sweep's work (as after a day without sweeps);
- the measured workspace's ready blobs carry the variants `DEFAULT_IMAGE_SPECS` makes
  (7 per blob) and every tenth one an eighth, older ``thumb`` version left as history.

Speed comes from the backend's bulk path with no ORM in the way: rows are made in chunks
of `CHUNK` as plain values already in the form the column types store (hex UUIDs, UTC
timestamps as text), SQLite gets them by ``executemany`` of a Core ``insert()``
(``synchronous=OFF`` meanwhile), PostgreSQL by ``COPY``; the secondary indexes are dropped
before the load and rebuilt from their own DDL after it, variants are made by one
``INSERT ... SELECT`` per backend, and ``ANALYZE`` runs at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import random
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mediamill.catalog import migrate
from mediamill.catalog.engine import make_engine, normalize_url
from mediamill.catalog.models import Variant
from mediamill.media.specs import DEFAULT_IMAGE_SPECS

__all__ = [
    "CHUNK",
    "MEASURED_WORKSPACE",
    "PG_SETTINGS",
    "RETENTION_DAYS",
    "TEMPORARY_HOURS",
    "WORKSPACES",
    "SeedResult",
    "empty_catalogs",
    "insert_variants",
    "seed_all",
    "seed_catalog",
]

CHUNK = 10_000
WORKSPACES = 20
MEASURED_WORKSPACE = "bench"
MEASURED_SHARE = 0.5
DUPLICATE_SHARE = 0.03
# An extra, older "thumb" webp version on every blob whose id is a multiple of this.
HISTORY_EVERY = 10
SECONDS_PER_YEAR = 365 * 24 * 3600
# The retention the catalog was swept with (MEDIAMILL_RETENTION_DAYS's default).
RETENTION_DAYS = 30
# Media per product gallery, attached in upload order.
GALLERY = 4
# Uploads of the last TEMPORARY_HOURS hours are left unattached with this probability.
TEMPORARY_HOURS = 48
TEMPORARY_SHARE = 0.25
HOUR_US = 3600 * 10**6
DAY_US = 24 * HOUR_US
PG_SETTINGS = {
    # Room for the measured workspace's working set, and a bulk load without checkpoints
    # or WAL (wal_level minimal lets the seeder's COPY skip it).
    "shared_buffers": "1GB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "wal_level": "minimal",
    "max_wal_senders": "0",
}
# The year of uploads ends at seeding time: a fixed "now" would make every run identical
# but would age, and the newest page would drift into the past.

MEDIA_COLUMNS = (
    "id",
    "workspace_id",
    "blob_id",
    "uploader",
    "original_filename",
    "media_type",
    "mime_type",
    "size",
    "status",
    "error_code",
    "error_message",
    "alt_text",
    "metadata",
    "source",
    "source_key",
    "flow_run_id",
    "created_at",
    "updated_at",
    "deleted_at",
    "purged_at",
)
ATTACHMENT_COLUMNS = (
    "id",
    "workspace_id",
    "media_id",
    "entity_type",
    "entity_id",
    "position",
    "created_at",
    "created_by",
)
BLOB_COLUMNS = (
    "id",
    "workspace_id",
    "sha256",
    "size",
    "mime_type",
    "media_type",
    "width",
    "height",
    "placeholder",
    "original_key",
    "metadata",
    "status",
    "claimed_at",
    "error_code",
    "error_message",
    "created_at",
    "updated_at",
)


class _Kind(NamedTuple):
    """One kind of upload and what its files look like."""

    weight: float
    media_type: str
    mimes: tuple[tuple[float, str, str], ...]  # (weight, MIME type, extension)
    dimensions: tuple[tuple[int, int], ...]
    stems: tuple[str, ...]  # filename beginnings


_KINDS = (
    _Kind(
        0.80,
        "image",
        ((0.7, "image/jpeg", "jpg"), (0.2, "image/png", "png"), (0.1, "image/webp", "webp")),
        ((4032, 3024), (3024, 4032), (6000, 4000), (1920, 1080), (1200, 1200), (800, 600)),
        ("IMG_", "DSC", "product-shot-", "hero-", "PXL_2025", "scan-"),
    ),
    _Kind(
        0.10,
        "video",
        ((0.8, "video/mp4", "mp4"), (0.2, "video/quicktime", "mov")),
        ((1920, 1080), (1280, 720), (1080, 1920), (3840, 2160)),
        ("clip_", "VID_", "unboxing-", "demo-"),
    ),
    _Kind(
        0.06,
        "document",
        ((1.0, "application/pdf", "pdf"),),
        ((1240, 1754), (1754, 1240)),
        ("manual-v", "datasheet-", "invoice-", "catalogue-"),
    ),
    _Kind(
        0.04,
        "model",
        ((0.7, "model/gltf-binary", "glb"), (0.3, "model/obj", "obj")),
        ((1024, 1024),),
        ("chair-", "shoe-", "lamp-", "scan_"),
    ),
)
_KIND_WEIGHTS = [kind.weight for kind in _KINDS]
# (status, weight): what happened to each upload.
_STATUSES = (
    ("ready", 0.93),
    ("deleted", 0.03),
    ("failed", 0.015),
    ("pending", 0.01),
    ("processing", 0.01),
    ("purged", 0.005),
)
_UPLOADERS = ("ana", "ben", "chloe", "webhook", "backfill", "picker")
_ERRORS = (
    ("too_many_pixels", "the image has more pixels than max_image_pixels allows"),
    ("unsupported_format", "the bytes are not a format mediamill processes"),
    ("decode_failed", "the decoder gave up on a truncated file"),
)


@dataclass
class SeedResult:
    """What was loaded, into which workspace, and how long each phase took."""

    backend: str
    workspace: str
    workspace_id: int
    media: int = 0
    measured_media: int = 0
    blobs: int = 0
    variants: int = 0
    attachments: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    def summary(self) -> str:
        phases = ", ".join(f"{name} {secs:.1f}s" for name, secs in self.seconds.items())
        return (
            f"{self.backend}: {self.media:,} media ({self.measured_media:,} in "
            f"{self.workspace!r}), {self.blobs:,} blobs, {self.variants:,} variants, "
            f"{self.attachments:,} attachments in {self.total_seconds:.1f}s ({phases})"
        )


def seed_catalog(
    url: str,
    rows: int,
    *,
    workspaces: int = WORKSPACES,
    measured_share: float = MEASURED_SHARE,
    random_seed: int = 20_250_601,
) -> SeedResult:
    """Migrate the empty catalog at ``url`` and load ``rows`` media into it (see module doc).

    The database must be empty (a new SQLite file, a new PostgreSQL database) and ours: rows
    get explicit ids, and on PostgreSQL the load needs a superuser (it switches foreign-key
    triggers off with ``session_replication_role``), as in `bench.postgres` clusters.
    Returns the counts and the time of each phase.
    """
    if workspaces < 1 or not 0 < measured_share <= 1:
        raise ValueError("need at least one workspace and a measured share in (0, 1]")
    engine = make_engine(url)
    backend = engine.dialect.name
    started = time.perf_counter()
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    seconds = {"migrate": time.perf_counter() - started}
    # A plain engine for the load: the catalog engine's per-connection pragmas (foreign
    # keys on, synchronous NORMAL) are what the app wants, not what a bulk load wants.
    loader = sa.create_engine(normalize_url(url))
    try:
        with loader.begin() as connection:
            _tune(connection)
            ids = _insert_workspaces(connection, workspaces)
        result = SeedResult(backend, MEASURED_WORKSPACE, ids[0])
        with loader.begin() as connection:
            _tune(connection)
            started = time.perf_counter()
            if backend == "postgresql":
                # Emptying the (empty) tables in this transaction lets PostgreSQL skip the
                # WAL for everything written to them until commit when wal_level is minimal,
                # and lets COPY write the rows frozen (no hint-bit rewrite, no later vacuum).
                connection.exec_driver_sql("TRUNCATE blobs, media, variants, attachments")
            indexes = _drop_secondary_indexes(connection)
            _load_rows(connection, result, ids, rows, measured_share, random_seed)
            seconds["media + blobs"] = time.perf_counter() - started
            started = time.perf_counter()
            result.variants = insert_variants(connection, result.workspace_id)
            seconds["variants"] = time.perf_counter() - started
            started = time.perf_counter()
            for ddl in indexes:
                connection.exec_driver_sql(ddl)
            if backend == "postgresql":
                for table in ("blobs", "attachments"):
                    connection.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT coalesce(max(id), 1) FROM {table}))"
                    )
            seconds["indexes"] = time.perf_counter() - started
        started = time.perf_counter()
        with loader.connect() as connection:
            if backend == "postgresql":
                # VACUUM also sets the visibility map, which index-only scans need.
                connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                    "VACUUM (ANALYZE)"
                )
            else:
                connection.exec_driver_sql("ANALYZE")
                connection.commit()
                connection.exec_driver_sql("PRAGMA journal_mode = WAL")
        seconds["analyze"] = time.perf_counter() - started
    finally:
        loader.dispose()
    result.seconds = seconds
    return result


def _tune(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        # No journal and no fsync while loading a catalog that is rebuilt on every run; WAL,
        # the app's mode (a persistent one), is switched back on at the end.
        connection.exec_driver_sql("PRAGMA journal_mode = OFF")
        connection.exec_driver_sql("PRAGMA synchronous = OFF")
        connection.exec_driver_sql("PRAGMA cache_size = -1000000")  # 1 GB
        connection.exec_driver_sql("PRAGMA temp_store = MEMORY")
    else:
        connection.exec_driver_sql("SET maintenance_work_mem = '512MB'")
        # Skip the per-row foreign-key triggers: the rows are consistent by construction
        # (the seeder test checks it), and checking 4 million references costs minutes.
        connection.exec_driver_sql("SET session_replication_role = replica")


def _insert_workspaces(connection: Connection, count: int) -> list[int]:
    """The measured workspace first, then the other tenants; their ids in that order."""
    table = sa.table(
        "workspaces", sa.column("id"), sa.column("slug"), sa.column("name"), sa.column("created_at")
    )
    created = _timestamps(connection, np.array([_epoch_us(_now()) - SECONDS_PER_YEAR * 10**6]))[0]
    slugs = [MEASURED_WORKSPACE, *(f"tenant-{n:02d}" for n in range(1, count))]
    connection.execute(
        table.insert(),
        [{"slug": s, "name": f"Workspace {s}", "created_at": created} for s in slugs],
    )
    found = dict(connection.execute(sa.select(table.c.slug, table.c.id)).tuples().all())
    return [int(found[slug]) for slug in slugs]


def _drop_secondary_indexes(connection: Connection) -> list[str]:
    """Drop the plain (non-unique, non-key) indexes of the loaded tables; their DDL back.

    Building an index once over sorted data is far cheaper than updating it row by row.
    Unique and primary-key indexes stay: they are constraints, and the load must obey them.
    """
    if connection.dialect.name == "sqlite":
        found = connection.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            "AND sql NOT LIKE 'CREATE UNIQUE%' "
            "AND tbl_name IN ('blobs', 'media', 'variants', 'attachments')"
        ).all()
    else:
        found = connection.exec_driver_sql(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i "
            "JOIN pg_class c ON c.relname = i.indexname "
            "JOIN pg_index x ON x.indexrelid = c.oid "
            "WHERE i.schemaname = current_schema() AND NOT x.indisunique "
            "AND i.tablename IN ('blobs', 'media', 'variants', 'attachments')"
        ).all()
    for name, _ in found:
        connection.exec_driver_sql(f'DROP INDEX "{name}"')
    return [str(ddl) for _, ddl in found]


def _load_rows(
    connection: Connection,
    result: SeedResult,
    workspace_ids: Sequence[int],
    rows: int,
    measured_share: float,
    random_seed: int,
) -> None:
    generator = np.random.default_rng(random_seed)
    rng = random.Random(random_seed)
    now_us = _epoch_us(_now())
    # Oldest first, as a live catalog grows; microsecond ties are possible and fine.
    created = np.sort(generator.integers(now_us - SECONDS_PER_YEAR * 10**6, now_us, size=rows))
    writer = _Writer(connection)
    choices = _Choices()
    blob_id = attachment_id = 0
    galleries = dict.fromkeys(workspace_ids, 0)
    recent_blobs: dict[int, deque[tuple[int, str, str, int]]] = {
        w: deque(maxlen=1000) for w in workspace_ids
    }
    measured = workspace_ids[0]
    others = np.array(list(workspace_ids[1:]) or [measured])
    for start in range(0, rows, CHUNK):
        stamps = created[start : start + CHUNK]
        n = len(stamps)
        # Processing took a few seconds; deletions happen days later (but not in the future).
        updated = stamps + generator.integers(1_000_000, 30_000_000, size=n)
        deleted = np.minimum(stamps + generator.integers(0, 60 * DAY_US, size=n), now_us)
        # Deleted before the last day's expiries: the daily purge already took it.
        expired = (deleted < now_us - (RETENTION_DAYS + 1) * DAY_US).tolist()
        purged = np.minimum(deleted + generator.integers(0, DAY_US, size=n), now_us)
        purged = np.where(expired, purged + RETENTION_DAYS * DAY_US, purged)
        temporary = (
            (stamps >= now_us - TEMPORARY_HOURS * HOUR_US) & (generator.random(n) < TEMPORARY_SHARE)
        ).tolist()
        created_text = _timestamps(connection, stamps)
        updated_text = _timestamps(connection, updated)
        deleted_text = _timestamps(connection, deleted)
        purged_text = _timestamps(connection, purged)
        owners = np.where(
            generator.random(n) < measured_share, measured, generator.choice(others, size=n)
        ).tolist()
        statuses = choices.statuses(generator, n)
        kinds = choices.kinds(generator, n)
        mime_picks = generator.random(n).tolist()
        size_picks = generator.integers(0, 1 << 30, size=n).tolist()
        numbers = generator.integers(0, 10_000, size=n).tolist()
        sizes = generator.integers(20_000, 12_000_000, size=n).tolist()
        uploaders = generator.choice(len(_UPLOADERS), size=n).tolist()
        duplicates = (generator.random(n) < DUPLICATE_SHARE).tolist()
        alts = (generator.random(n) < 0.2).tolist()
        blobs: list[tuple[Any, ...]] = []
        media: list[tuple[Any, ...]] = []
        attachments: list[tuple[Any, ...]] = []
        for i in range(n):
            workspace = owners[i]
            status = statuses[i]
            if status == "deleted" and expired[i]:
                status = "purged"
            _, media_type, mimes, dimensions, stems = _KINDS[kinds[i]]
            mime, extension = _pick(mimes, mime_picks[i])
            stem = stems[numbers[i] % len(stems)]
            filename = f"{stem}{numbers[i]:04d}.{extension}"
            uploader = _UPLOADERS[uploaders[i]]
            meta: list[str] = []
            blob_ref: int | None = None
            size: int | None = sizes[i]
            error_code = error_message = None
            deleted_at = purged_at = None
            pool = recent_blobs[workspace]
            if status in ("ready", "deleted") and pool and duplicates[i]:
                blob_ref, media_type, mime, size = pool[size_picks[i] % len(pool)]
            elif status in ("ready", "deleted", "processing"):
                blob_id += 1
                blob_ref = blob_id
                sha = f"{rng.getrandbits(256):064x}"
                width, height = dimensions[size_picks[i] % len(dimensions)]
                ready = status != "processing"
                blobs.append(
                    (
                        blob_id,
                        workspace,
                        sha,
                        size,
                        mime,
                        media_type,
                        width,
                        height,
                        # A thumbhash is 20-25 bytes; base64 as the pipeline stores it.
                        sha[:28],
                        f"tenants/workspace_{workspace}/library/{sha[:2]}/unattached/"
                        f"{media_type}/original/{sha}.{extension}",
                        '{"orientation": 1}' if media_type == "image" else "{}",
                        "ready" if ready else "processing",
                        None if ready else created_text[i],
                        None,
                        None,
                        created_text[i],
                        updated_text[i],
                    )
                )
                if ready:
                    pool.append((blob_id, media_type, mime, sizes[i]))
            elif status == "failed":
                error_code, error_message = _ERRORS[numbers[i] % len(_ERRORS)]
            elif status == "pending":
                media_type = mime = size = None  # type: ignore[assignment]
            else:  # purged: the blob went, its hash stays in the metadata
                meta.append(f'"sha256": "{rng.getrandbits(256):064x}"')
                deleted_at, purged_at = deleted_text[i], purged_text[i]
            if status == "deleted":
                meta.append('"status_before_delete": "ready"')
                deleted_at = deleted_text[i]
            media_id = _uuid4_hex(rng)
            if not temporary[i]:
                # Ingest attaches and stamps the entity; a purge removes the attachments.
                gallery, position = divmod(galleries[workspace], GALLERY)
                galleries[workspace] += 1
                meta.append(f'"upload_entity": {{"type": "product", "id": "p{gallery}"}}')
                if status != "purged":
                    attachment_id += 1
                    attachments.append(
                        (
                            attachment_id,
                            workspace,
                            media_id,
                            "product",
                            f"p{gallery}",
                            position,
                            created_text[i],
                            uploader,
                        )
                    )
            from_backfill = uploader == "backfill"
            media.append(
                (
                    media_id,
                    workspace,
                    blob_ref,
                    uploader,
                    filename,
                    media_type,
                    mime,
                    size,
                    status,
                    error_code,
                    error_message,
                    f"{stem}{numbers[i]} on white" if alts[i] else None,
                    "{" + ", ".join(meta) + "}",
                    f"file:///imports/{filename}" if from_backfill else f"upload:{filename}",
                    f"{rng.getrandbits(256):064x}" if from_backfill else None,
                    None if status == "pending" else _uuid4_hex(rng),
                    created_text[i],
                    updated_text[i],
                    deleted_at,
                    purged_at,
                )
            )
        result.measured_media += owners.count(measured)
        writer.write("blobs", BLOB_COLUMNS, blobs)
        writer.write("media", MEDIA_COLUMNS, media)
        writer.write("attachments", ATTACHMENT_COLUMNS, attachments)
        result.blobs += len(blobs)
        result.media += len(media)
        result.attachments += len(attachments)


class _Choices:
    """Weighted draws of a whole chunk at once."""

    def __init__(self) -> None:
        self._status_names = [name for name, _ in _STATUSES]
        self._status_weights = np.array([w for _, w in _STATUSES]) / sum(w for _, w in _STATUSES)
        self._kind_weights = np.array(_KIND_WEIGHTS) / sum(_KIND_WEIGHTS)

    def statuses(self, generator: np.random.Generator, n: int) -> list[str]:
        picks = generator.choice(len(self._status_names), size=n, p=self._status_weights)
        return [self._status_names[p] for p in picks.tolist()]

    def kinds(self, generator: np.random.Generator, n: int) -> list[int]:
        picks: list[int] = generator.choice(len(_KINDS), size=n, p=self._kind_weights).tolist()
        return picks


def _pick(options: tuple[tuple[float, str, str], ...], draw: float) -> tuple[str, str]:
    """The option a uniform ``draw`` in [0, 1) lands on, by cumulative weight."""
    for weight, mime, extension in options:
        if draw < weight:
            return mime, extension
        draw -= weight
    return options[-1][1], options[-1][2]


def _uuid4_hex(rng: random.Random) -> str:
    """A random (version 4) UUID as 32 hex digits: what both backends' UUID columns accept."""
    bits = rng.getrandbits(128)
    bits = (bits & ~(0xF000 << 64) & ~(0xC000 << 48)) | (0x4000 << 64) | (0x8000 << 48)
    return f"{bits:032x}"


class _Writer:
    """Rows into a table by the backend's bulk path: COPY, or an executemany of an insert."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.postgres = connection.dialect.name == "postgresql"
        self._statements: dict[str, str] = {}

    def write(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self.postgres:
            cursor = self.connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
            names = ", ".join(f'"{c}"' for c in columns)
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN (FREEZE)") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        if table not in self._statements:
            # A Core insert() of untyped columns, compiled once; the values are already what
            # the column types would store, so the driver's executemany takes the tuples as
            # they are, with no per-row parameter processing.
            clause = sa.table(table, *(sa.column(c) for c in columns))
            compiled = clause.insert().compile(
                dialect=self.connection.dialect, column_keys=list(columns)
            )
            self._statements[table] = str(compiled)
        self.connection.exec_driver_sql(self._statements[table], rows)


def insert_variants(connection: Connection, workspace_id: int) -> int:
    """The variants of one workspace's ready blobs, in one INSERT ... SELECT; all variants.

    The seed gives them to the measured workspace; a benchmark may give them to another.
    """
    blobs = Variant.metadata.tables["blobs"]
    variants = Variant.metadata.tables["variants"]
    specs = []
    for made in DEFAULT_IMAGE_SPECS:
        for output in made.formats:
            specs.append((made.name, output.format, made.version, made.width, made.height, 0))
    # History: an older spec version of one variant, which current_variants must skip.
    specs.append(("thumb", "webp", "0ld5pecv3r51", 300, 300, 1))
    extension = {"jpeg": "jpg", "webp": "webp", "avif": "avif", "png": "png"}
    selects = [
        sa.select(
            sa.literal(name, sa.String).label("name"),
            sa.literal(fmt, sa.String).label("format"),
            sa.literal(version, sa.String).label("spec_version"),
            sa.literal(f"image/{fmt}", sa.String).label("mime_type"),
            sa.literal(f".{extension[fmt]}", sa.String).label("ext"),
            sa.literal(width, sa.Integer).label("w"),
            sa.literal(height, sa.Integer).label("h"),
            sa.literal(1 if name == "optimized" else 0, sa.Integer).label("inside"),
            sa.literal(history, sa.Integer).label("history"),
        )
        for name, fmt, version, width, height, history in specs
    ]
    spec = sa.union_all(*selects).subquery("spec")
    b = blobs.alias("b")
    # "inside" keeps the aspect ratio within w x h (never upscaling); "cover" crops to it.
    fits = sa.and_(spec.c.inside == 1, b.c.width <= spec.c.w)
    width = sa.case((spec.c.inside == 0, spec.c.w), (fits, b.c.width), else_=spec.c.w)
    height = sa.case(
        (spec.c.inside == 0, spec.c.h),
        (fits, b.c.height),
        else_=b.c.height * spec.c.w // b.c.width,
    )
    key = (
        sa.literal("tenants/workspace_", sa.String)
        + sa.cast(b.c.workspace_id, sa.String)
        + sa.literal("/library/", sa.String)
        + sa.func.substr(b.c.sha256, 1, 2)
        + sa.literal("/unattached/", sa.String)
        + b.c.media_type
        + sa.literal("/", sa.String)
        + spec.c.spec_version
        + sa.literal("/", sa.String)
        + b.c.sha256
        + sa.literal("_", sa.String)
        + spec.c.name
        + spec.c.ext
    )
    # History rows are older than the current ones, so they sort as superseded.
    created = sa.case((spec.c.history == 1, b.c.created_at), else_=b.c.updated_at)
    query = (
        sa.select(
            b.c.id,
            spec.c.name,
            spec.c.format,
            spec.c.spec_version,
            spec.c.mime_type,
            width,
            height,
            width * height // 12,
            key,
            sa.literal("libvips 8.18.7", sa.String),
            sa.literal({"libvips": "8.18.7"}, variants.c.library_versions.type),
            created,
        )
        .select_from(b.join(spec, sa.true()))
        .where(
            b.c.workspace_id == workspace_id,
            b.c.status == "ready",
            sa.or_(spec.c.history == 0, b.c.id % HISTORY_EVERY == 0),
        )
    )
    if connection.dialect.name == "sqlite":
        # In blob order: SQLite would otherwise walk the workspace's blobs through the
        # (workspace_id, sha256) index, in hash order, and insert variants at random places
        # of their (blob_id, ...) unique index. PostgreSQL scans the heap in id order anyway.
        query = query.order_by(b.c.id)
    statement = variants.insert().from_select(
        [
            "blob_id",
            "name",
            "format",
            "spec_version",
            "mime_type",
            "width",
            "height",
            "size",
            "key",
            "encoder",
            "library_versions",
            "created_at",
        ],
        query,
    )
    connection.execute(statement)
    # Counted, not rowcount: psycopg reports -1 for an INSERT ... SELECT through Core.
    return int(connection.execute(sa.select(sa.func.count()).select_from(variants)).scalar_one())


def _now() -> datetime:
    return datetime.now(UTC)


def _epoch_us(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _timestamps(connection: Connection, epoch_us: np.ndarray[Any, Any]) -> list[str]:
    """UTC instants as the catalog's timestamp columns store them on this backend.

    SQLite: SQLAlchemy's naive DATETIME text, ``YYYY-MM-DD HH:MM:SS.ffffff`` (UTCDateTime
    stores UTC without the offset); PostgreSQL: ISO 8601 with ``+00`` for ``timestamptz``.
    """
    text = np.datetime_as_string(epoch_us.astype("datetime64[us]"), unit="us")
    if connection.dialect.name == "sqlite":
        return [t.replace("T", " ") for t in text.tolist()]
    return [f"{t}+00" for t in text.tolist()]


def empty_catalogs(
    stack: contextlib.ExitStack, backends: Sequence[str], workdir: Path
) -> dict[str, str]:
    """A URL per backend of an empty catalog that lives as long as ``stack``.

    SQLite: a file in ``workdir``; PostgreSQL: a throwaway cluster tuned for the bulk load.
    """
    from bench.postgres import throwaway_cluster

    catalogs = {}
    for backend in backends:
        if backend == "sqlite":
            catalogs[backend] = f"sqlite:///{workdir / 'catalog.db'}"
        else:
            catalogs[backend] = stack.enter_context(throwaway_cluster(settings=PG_SETTINGS)).url
    return catalogs


def seed_all(catalogs: dict[str, str], rows: int, workdir: Path) -> dict[str, SeedResult]:
    """Seed every catalog; two at once (PostgreSQL in a child process) to save minutes.

    The SQLite load is this process's CPU, the PostgreSQL one mostly the server's, so on
    two cores they overlap well; each reported time is its own wall time, overlap included.
    """
    child: subprocess.Popen[bytes] | None = None
    out = workdir / "seed-postgresql.json"
    if len(catalogs) > 1 and "postgresql" in catalogs:
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.seed",
                catalogs["postgresql"],
                "--rows",
                str(rows),
                "--json",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
        )
    results: dict[str, SeedResult] = {}
    try:
        for backend, url in catalogs.items():
            if child is not None and backend == "postgresql":
                continue
            print(f"[{backend}] seeding {rows:,} media ...", flush=True)
            results[backend] = seed_catalog(url, rows)
            print(f"[{backend}] {results[backend].summary()}", flush=True)
        if child is not None:
            print(f"[postgresql] seeding {rows:,} media (started with sqlite) ...", flush=True)
            if child.wait() != 0:
                raise RuntimeError("seeding the PostgreSQL catalog failed (see above)")
            results["postgresql"] = SeedResult(**json.loads(out.read_text()))
            print(f"[postgresql] {results['postgresql'].summary()}", flush=True)
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("url", help="catalog URL of an empty database")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path, help="also write the SeedResult here")
    args = parser.parse_args()
    result = seed_catalog(args.url, args.rows)
    print(result.summary())
    if args.json is not None:
        args.json.write_text(json.dumps(dataclasses.asdict(result)))


if __name__ == "__main__":
    main()
