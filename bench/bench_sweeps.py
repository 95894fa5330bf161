"""The scheduled sweeps over a 1,000,000-media catalog, on SQLite and on PostgreSQL.

Each sweep is timed as its flow runs it, minus Prefect (the flow and task wrappers, the
artifact and the events cost the same at any catalog size): the functions the flow calls,
over the catalog `bench.seed` makes (statuses, attachments and temporary uploads as the
sweeps leave them), with a ``file://`` store holding the objects they check:

- **orphan sweep** (hourly) of one tenant, `SWEPT_WORKSPACE` (about 2.5% of the media):
  the plan (stale temporary uploads, the tenant's referenced keys, its ready blobs with
  their variants, a listing of its objects) and its execution (soft-delete the stale
  uploads, delete the stray objects, flag the blobs whose objects are missing);
- **purge** (daily) of every workspace: the media whose retention ran out since the last
  purge (about a day's worth), then their blobs and objects;
- **quota sweep** (daily) of every workspace: the usage sums, a snapshot per workspace;
- **catalog health** (daily) of `SWEPT_WORKSPACE`: the Great Expectations suite.

Before the timing, `prepare` gives the tenant the variants of its ready blobs (the seed
gives them to the measured workspace only) and fills the store with every object the
tenant's rows and every soft-deleted media point at, minus one object of a `MISSING_SHARE`
of the tenant's ready blobs, plus a `STRAY_SHARE` of stray objects past the grace period.

The orphan sweep and the health check cover one tenant because over every workspace they
do not fit a benchmark run at this size: the orphan sweep's plan loads every ready blob
with its variants as ORM objects, the health check every table into pandas. ``--full``
times both over every workspace, each in a fresh process, with its peak memory.

Baseline, same run: the same sweep over a catalog of `BASELINE_ROWS` media seeded the
same way. The ratio is how much longer the sweep takes at 100 times the rows: about 100
when its work grows with the catalog, about 1 when its cost is fixed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.rows import report
from bench.seed import empty_catalogs, insert_variants, seed_all, seed_catalog
from mediamill.catalog.engine import normalize_url
from mediamill.catalog.models import Blob, BlobStatus, Media, MediaStatus, Variant, Workspace
from mediamill.settings import Settings
from mediamill.storage.keys import workspace_prefix

__all__ = [
    "BASELINE_ROWS",
    "SWEPT_WORKSPACE",
    "Store",
    "backend_rows",
    "prepare",
    "sweep_rows",
    "time_sweeps",
]

SWEPT_WORKSPACE = "tenant-01"
# The one-benchmark-command issue asks for sweeps at this size; no issue sets a goal.
ISSUE = 6
BASELINE_ROWS = 10_000
# Of the tenant's ready blobs, this share has lost an object; of its objects, this share
# of strays (no row points at them) has piled up.
MISSING_SHARE = 0.001
STRAY_SHARE = 0.001
# Strays older than the orphan sweep's grace period (an hour by default).
STRAY_AGE = timedelta(days=2)


@dataclass(frozen=True)
class Store:
    """A ``file://`` store filled for one catalog, and what `prepare` put in it."""

    root: Path
    workspace: str
    workspace_media: int
    objects: int
    missing: int
    strays: int

    @property
    def url(self) -> str:
        return self.root.as_uri()


@dataclass
class Timing:
    """One sweep over one catalog: its wall time and what it did."""

    sweep: str
    scope: str | None
    seconds: float
    work: dict[str, int] = field(default_factory=dict)


def prepare(url: str, root: Path, workspace: str = SWEPT_WORKSPACE) -> Store:
    """Give ``workspace`` its variants and fill a store at ``root`` (see the module doc)."""
    engine = sa.create_engine(normalize_url(url))
    try:
        with engine.begin() as connection:
            workspace_id = connection.scalar(
                sa.select(Workspace.id).where(Workspace.slug == workspace)
            )
            if workspace_id is None:
                raise LookupError(f"no workspace {workspace!r} in the seeded catalog")
            owned = sa.select(Blob.id).where(Blob.workspace_id == workspace_id)
            if not connection.scalar(sa.select(sa.exists().where(Variant.blob_id.in_(owned)))):
                insert_variants(connection, workspace_id)
            media = connection.scalar(
                sa.select(sa.func.count()).where(Media.workspace_id == workspace_id)
            )
            keys, lost = _object_keys(connection, workspace_id)
    finally:
        engine.dispose()
    kept = [key for key in keys if key not in lost]
    _write_objects(root, kept)
    rng = random.Random(workspace_id)
    strays = [
        f"{workspace_prefix(workspace_id)}library/{sha[:2]}/unattached/image/original/{sha}.jpg"
        for sha in (f"{rng.getrandbits(256):064x}" for _ in range(_share(STRAY_SHARE, len(kept))))
    ]
    _write_objects(root, strays, age=STRAY_AGE)
    return Store(root, workspace, int(media or 0), len(kept), len(lost), len(strays))


def _object_keys(connection: sa.Connection, workspace_id: int) -> tuple[list[str], set[str]]:
    """Every key the tenant's blobs and every soft-deleted media's blob point at; and the
    originals of every ``1 / MISSING_SHARE``-th ready blob of the tenant, to leave out."""
    deleted_blobs = sa.select(Media.blob_id).where(
        Media.status == MediaStatus.deleted, Media.blob_id.is_not(None)
    )
    owners = sa.or_(Blob.workspace_id == workspace_id, Blob.id.in_(deleted_blobs))
    blobs = connection.execute(
        sa.select(Blob.id, Blob.original_key, Blob.status, Blob.workspace_id)
        .where(owners)
        .order_by(Blob.id)
    ).all()
    variants = connection.scalars(
        sa.select(Variant.key).join(Blob, Blob.id == Variant.blob_id).where(owners)
    ).all()
    ready = [
        key
        for _, key, status, owner in blobs
        if key and owner == workspace_id and status == BlobStatus.ready
    ]
    lost = set(ready[:: _every(MISSING_SHARE)])
    keys = [key for _, key, _, _ in blobs if key]
    return list(dict.fromkeys([*keys, *variants])), lost


def _every(share: float) -> int:
    return max(1, round(1 / share))


def _share(share: float, of: int) -> int:
    """At least one, so a small catalog's sweep has the same kinds of work as a large one."""
    return max(1, round(share * of))


def _write_objects(root: Path, keys: Iterable[str], age: timedelta | None = None) -> None:
    """Empty files at the keys: listings, existence checks and deletes are what is timed."""
    made: set[str] = set()
    stamp = time.time() - age.total_seconds() if age is not None else None
    for key in keys:
        path = os.path.join(root, key)
        directory = os.path.dirname(path)
        if directory not in made:
            os.makedirs(directory, exist_ok=True)
            made.add(directory)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
        if stamp is not None:
            os.utime(path, (stamp, stamp))


# --------------------------------------------------------------------------- the sweeps


def _settings(url: str, store_url: str, home: Path) -> Settings:
    return Settings(home=home, database_url=url, storage_url=store_url)


def _actions(actions: Iterable[Any]) -> dict[str, int]:
    """``{"media.deleted done": 17, ...}``: what a cleanup run did, by action and outcome."""
    counts: dict[str, int] = {}
    for action in actions:
        label = f"{action.action} {action.status}"
        counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items()))


def orphan_sweep(settings: Settings, workspace: str | None) -> dict[str, int]:
    """What the ``orphan-sweep`` flow runs: plan, then execute the plan."""
    from mediamill.catalog.repository import utcnow
    from mediamill.tasks.cleanup import (
        ORPHAN_SWEEP_ACTOR,
        CleanupContext,
        execute_orphan_sweep,
        plan_orphan_sweep,
    )

    ctx = CleanupContext.open(settings)
    try:
        plan = plan_orphan_sweep(ctx, workspace, utcnow())
        return _actions(execute_orphan_sweep(ctx, plan, ORPHAN_SWEEP_ACTOR))
    finally:
        ctx.close()


def orphan_plan(settings: Settings, workspace: str | None) -> dict[str, int]:
    """The orphan sweep's plan alone (a dry run): its catalog reads and store listing."""
    from mediamill.catalog.repository import utcnow
    from mediamill.tasks.cleanup import CleanupContext, plan_orphan_sweep

    ctx = CleanupContext.open(settings)
    try:
        return _actions(plan_orphan_sweep(ctx, workspace, utcnow()).planned())
    finally:
        ctx.close()


def purge(settings: Settings, workspace: str | None) -> dict[str, int]:
    """What the ``purge`` flow runs: plan, then execute the plan."""
    from mediamill.catalog.repository import utcnow
    from mediamill.tasks.cleanup import PURGE_ACTOR, CleanupContext, execute_purge, plan_purge

    ctx = CleanupContext.open(settings)
    try:
        plan = plan_purge(ctx, workspace, utcnow())
        return _actions(execute_purge(ctx, plan, PURGE_ACTOR))
    finally:
        ctx.close()


def quota_sweep(settings: Settings, workspace: str | None) -> dict[str, int]:
    """What the ``quota-sweep`` flow runs: the usage sums, then one snapshot per workspace."""
    from mediamill.flows.quota import take_snapshots

    frame, _, snapshots = take_snapshots(settings, workspace, None)
    return {"snapshots": len(snapshots), "live media counted": int(frame["media"].sum())}


def catalog_health(settings: Settings, workspace: str | None) -> dict[str, int]:
    """What the ``catalog-health`` flow runs: the suite over the catalog."""
    from mediamill.flows.health import check_health

    report = check_health(settings, workspace)
    return {
        "expectations": len(report.results),
        "failed": len(report.failures),
        "row checks": sum(result.checked for result in report.results),
    }


Sweep = Callable[[Settings, str | None], dict[str, int]]
# In the order a day runs them; each (name, covers one tenant, function).
SWEEPS: tuple[tuple[str, bool, Sweep], ...] = (
    ("orphan sweep", True, orphan_sweep),
    ("purge", False, purge),
    ("quota sweep", False, quota_sweep),
    ("catalog health", True, catalog_health),
)
# What --full adds, over every workspace, each in a fresh process for its peak memory.
FULL_SWEEPS: tuple[tuple[str, Sweep], ...] = (
    ("orphan sweep plan (dry run; empty store)", orphan_plan),
    ("catalog health", catalog_health),
)


def time_sweeps(url: str, store: Store, home: Path) -> list[Timing]:
    """Run every sweep of `SWEEPS` once over the catalog at ``url``, in order, timed."""
    settings = _settings(url, store.url, home)
    timings = []
    for name, one_tenant, sweep in SWEEPS:
        scope = store.workspace if one_tenant else None
        started = time.perf_counter()
        work = sweep(settings, scope)
        timings.append(Timing(name, scope, time.perf_counter() - started, work))
    return timings


def warm_up(url: str, store: Store, home: Path) -> None:
    """Import what the sweeps import (Great Expectations takes seconds) before any timing."""
    catalog_health(_settings(url, store.url, home), store.workspace)


def _in_fresh_process(
    sweep: Sweep, url: str, store_url: str, home: Path
) -> tuple[float, float, dict[str, int]]:
    """Seconds, peak RSS (MB, VmHWM) and the work of ``sweep`` over every workspace."""
    # Imported before the clock starts, as in `time_sweeps` after its warm-up.
    import mediamill.catalog.expectations
    import mediamill.flows.health
    import mediamill.tasks.cleanup  # noqa: F401

    started = time.perf_counter()
    work = sweep(_settings(url, store_url, home), None)
    seconds = time.perf_counter() - started
    status = Path("/proc/self/status").read_text()
    peak_kb = next(
        int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")
    )
    return seconds, peak_kb / 1024, work


def _fresh(
    sweep: Sweep, url: str, store_url: str, home: Path
) -> tuple[float, float, dict[str, int]]:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_in_fresh_process, sweep, url, store_url, home).result()


# --------------------------------------------------------------------------- the rows


def baseline_catalog(backend: str, url: str, workdir: Path) -> str:
    """An empty catalog beside ``url`` for the baseline: a file, or a database of its server."""
    if backend == "sqlite":
        return f"sqlite:///{workdir / 'baseline.db'}"
    from bench.postgres import new_database

    return new_database(url, "baseline")


def store_parent() -> str | None:
    """Where the stores go: a tmpfs when the machine has one, else the temp directory.

    Writing 200,000 empty files into a tmpfs takes seconds; on this machine's shared disk
    it took 20 to 45. The sweeps list and delete files either way, from the kernel's caches.
    """
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def _media(url: str) -> int:
    engine = sa.create_engine(normalize_url(url))
    try:
        with engine.connect() as connection:
            return int(connection.scalar(sa.select(sa.func.count()).select_from(Media)) or 0)
    finally:
        engine.dispose()


def _scope(timing: Timing, store: Store) -> str:
    if timing.scope is None:
        return "every workspace"
    objects = f", {store.objects:,} objects" if timing.sweep == "orphan sweep" else ""
    return f"{timing.scope} ({store.workspace_media:,} media{objects})"


def sweep_rows(
    catalogs: dict[str, str], workdir: Path, *, full: bool = False
) -> list[dict[str, Any]]:
    """Time every sweep over each seeded catalog, against a `BASELINE_ROWS` one; the rows.

    The catalogs are changed (the sweeps delete, purge and snapshot): give copies, or run
    this after whatever else reads them. Two backends run at once, the second in a child
    process, as the seeding does: each sweep is one process's work (and, on PostgreSQL,
    the server's), so on two cores they mostly overlap. With ``full`` they run one after
    the other instead: each whole-catalog step alone takes up to 13 GB.
    """
    children: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    rows: dict[str, list[dict[str, Any]]] = {}
    here = next(iter(catalogs), None)  # the first backend runs in this process
    try:
        for backend, url in catalogs.items():
            if full or backend == here:
                continue
            out = workdir / f"sweeps-{backend}.json"
            command = [sys.executable, "-m", "bench.bench_sweeps", "--catalog", backend, url]
            command += ["--workdir", str(workdir), "--json", str(out)]
            children[backend] = (subprocess.Popen(command), out)
        for backend, url in catalogs.items():
            if backend not in children:
                rows[backend] = backend_rows(backend, url, workdir, full=full)
        for backend, (child, out) in children.items():
            if child.wait() != 0:
                raise RuntimeError(f"the {backend} sweeps failed (see above)")
            rows[backend] = json.loads(out.read_text())
    finally:
        for child, _ in children.values():
            if child.poll() is None:
                child.kill()
                child.wait()
    return [row for backend in catalogs for row in rows[backend]]


def backend_rows(backend: str, url: str, workdir: Path, *, full: bool) -> list[dict[str, Any]]:
    """The rows of one backend's seeded catalog, its stores in a scratch directory."""
    with tempfile.TemporaryDirectory(prefix="mediamill-stores-", dir=store_parent()) as stores:
        return _backend_rows(backend, url, workdir, Path(stores), full)


def _backend_rows(
    backend: str, url: str, workdir: Path, stores: Path, full: bool
) -> list[dict[str, Any]]:
    """The rows of one backend: baseline catalog, stores, then every sweep on each size."""
    home = workdir / f"sweeps-{backend}"
    base_url = baseline_catalog(backend, url, workdir)
    print(f"[{backend}] sweeps: seeding the {BASELINE_ROWS:,}-media baseline", flush=True)
    seed_catalog(base_url, BASELINE_ROWS)
    base_store = prepare(base_url, stores / "baseline")
    started = time.perf_counter()
    store = prepare(url, stores / "measured")
    print(
        f"[{backend}] sweeps: {store.workspace} has {store.workspace_media:,} media; "
        f"{store.objects:,} objects written ({store.missing} left out, {store.strays} "
        f"strays) in {time.perf_counter() - started:.1f}s",
        flush=True,
    )
    media = _media(url)
    base_media = _media(base_url)
    warm_up(base_url, base_store, home)
    baseline = time_sweeps(base_url, base_store, home)
    measured = time_sweeps(url, store, home)
    rows = []
    for timing, base in zip(measured, baseline, strict=True):
        print(
            f"[{backend}] {timing.sweep} of {timing.scope or 'every workspace'}: "
            f"{timing.seconds:.2f}s ({_work(timing.work)}); at {base_media:,} media "
            f"{base.seconds:.2f}s ({_work(base.work)})",
            flush=True,
        )
        rows.append(
            _row(
                f"{timing.sweep} of {_scope(timing, store)}, {backend}, {media:,} media (s)",
                timing.seconds,
                base.seconds,
                base_media,
                {"work": timing.work, "baseline_work": base.work},
            )
        )
    if full:
        rows += _full_rows(backend, url, base_url, media, base_media, home)
    return rows


def _full_rows(
    backend: str, url: str, base_url: str, media: int, base_media: int, home: Path
) -> list[dict[str, Any]]:
    """The sweeps `FULL_SWEEPS` lists over every workspace: seconds and peak memory."""
    empty = home / "store-empty"
    empty.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, sweep in FULL_SWEEPS:
        base_seconds, base_peak, _ = _fresh(sweep, base_url, empty.as_uri(), home)
        print(f"[{backend}] {name} of every workspace at {media:,} media ...", flush=True)
        seconds, peak, work = _fresh(sweep, url, empty.as_uri(), home)
        print(f"[{backend}] ... {seconds:.1f}s, peak RSS {peak:.0f} MB ({_work(work)})", flush=True)
        label = f"{name} of every workspace, {backend}, {media:,} media"
        rows.append(_row(f"{label} (s)", seconds, base_seconds, base_media, {"work": work}))
        rows.append(_row(f"peak RSS of {label} (MB)", peak, base_peak, base_media, {}))
    return rows


def _row(
    name: str, value: float, baseline: float, base_media: int, extra: dict[str, Any]
) -> dict[str, Any]:
    return {
        "name": name,
        "value": round(value, 2),
        "baseline": round(baseline, 3),
        "baseline_name": f"same, {base_media:,}-media catalog seeded alike",
        "ratio": round(value / baseline, 2) if baseline else 0.0,
        "goal": "report",
        "issue": ISSUE,
        "ok": None,
        **extra,
    }


def _work(work: dict[str, int]) -> str:
    return ", ".join(f"{label} {count:,}" for label, count in work.items()) or "nothing to do"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000, help="media in the catalog")
    parser.add_argument(
        "--backend", choices=("sqlite", "postgresql", "both"), default="both", help="catalog"
    )
    parser.add_argument(
        "--full", action="store_true", help="also the orphan plan and health of every workspace"
    )
    parser.add_argument(
        "--catalog",
        nargs=2,
        metavar=("BACKEND", "URL"),
        help="sweep this seeded catalog instead of seeding one (with --workdir)",
    )
    parser.add_argument("--workdir", type=Path, help="scratch directory for --catalog")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    if args.catalog is not None:
        if args.workdir is None:
            parser.error("--catalog needs --workdir")
        backend, url = args.catalog
        rows = backend_rows(backend, url, args.workdir, full=args.full)
        if args.json is not None:
            args.json.write_text(json.dumps(rows, indent=2))
        return
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mediamill-sweeps-")))
        catalogs = empty_catalogs(stack, backends, workdir)
        seed_all(catalogs, args.rows, workdir)
        rows = sweep_rows(catalogs, workdir, full=args.full)
    print()
    report(rows, args.json)
    print(f"\ntotal {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
