"""The races of THREATS.md, run by real OS processes on PostgreSQL.

Each racer is a process of its own (``spawn``), running the stages the ingest flows run
(stage, register with dedupe and quota admission, derive-and-publish) or the orphan sweep's
plan and execution, against one PostgreSQL catalog and one store. A barrier lines them up
so they reach the catalog together. PostgreSQL because that is where these races are real:
its row locks let writers proceed side by side, where SQLite queues every writer.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mediamill.catalog import migrate
from mediamill.catalog import repository as repo
from mediamill.catalog.engine import make_engine, make_session_factory
from mediamill.catalog.models import AuditEvent, Blob, BlobStatus, Media, MediaStatus
from mediamill.catalog.quota import QUOTA_EXCEEDED, reserved_bytes, set_quota
from mediamill.media import samples
from mediamill.settings import get_settings
from mediamill.tasks.cleanup import (
    ORPHAN_SWEEP_ACTOR,
    CleanupContext,
    execute_orphan_sweep,
    plan_orphan_sweep,
)
from tests.hardening.faults import (
    backdate_tree,
    leftover_files,
    object_problems,
    sweep_worker,
    upload_worker,
    write_photos,
)
from tests.services.postgres import PostgresServer

SPAWN = multiprocessing.get_context("spawn")
DEADLINE_S = 180.0
GRACE_MINUTES = 1


class Catalog:
    """One PostgreSQL catalog, the environment racing processes need to reach it and the
    store, and sessions for the test's own checks."""

    def __init__(self, env: dict[str, str], sessions: Any) -> None:
        self.env = env
        self.sessions = sessions
        self.store_root = Path(env["MEDIAMILL_HOME"]) / "storage"

    def count(self, model: Any, *where: Any) -> int:
        with self.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    def workspace(self, slug: str, quota: int | None = None) -> int:
        with self.sessions.begin() as session:
            return set_quota(session, slug, quota).id


@pytest.fixture
def pg(
    postgres_server: PostgresServer, home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Catalog]:
    url = postgres_server.new_database()
    monkeypatch.setenv("MEDIAMILL_DATABASE_URL", url)
    monkeypatch.setenv("MEDIAMILL_ORPHAN_GRACE_MINUTES", str(GRACE_MINUTES))
    engine = make_engine(url)
    migrate.upgrade(engine)
    env = {name: value for name, value in os.environ.items() if name.startswith("MEDIAMILL_")}
    yield Catalog(env, make_session_factory(engine))
    engine.dispose()
    postgres_server.drop_database(url)


def _collect(results: Any, count: int) -> list[tuple[Any, ...]]:
    """``count`` answers from the racers; a racer's traceback fails the test with it."""
    answers = []
    for _ in range(count):
        try:
            answer = results.get(timeout=DEADLINE_S)
        except queue.Empty:
            pytest.fail(f"only {len(answers)} of {count} racers answered")
        assert not isinstance(answer[-1], str), answer[-1]
        answers.append(answer)
    return answers


def _start(target: Any, *args: Any) -> Any:
    process = SPAWN.Process(target=target, args=args, daemon=True)
    process.start()
    return process


def _join(processes: list[Any]) -> None:
    for process in processes:
        process.join(DEADLINE_S)
        assert process.exitcode == 0, process


def _uploads(pg: Catalog, workspace: str, batches: list[list[Path]]) -> list[tuple[Any, ...]]:
    """Each batch uploaded by a process of its own, all starting together; their outcomes."""
    barrier, results = SPAWN.Barrier(len(batches)), SPAWN.Queue()
    processes = [
        _start(upload_worker, pg.env, workspace, [str(p) for p in paths], barrier, results)
        for paths in batches
    ]
    outcomes = [outcome for _, found in _collect(results, len(processes)) for outcome in found]
    _join(processes)
    return outcomes


def test_identical_uploads_at_once_make_one_blob_rendered_once(pg: Catalog, tmp_path: Path) -> None:
    pg.workspace("acme")
    data = samples.photo_jpeg(320, 240, seed=5)
    paths = [tmp_path / f"upload-{n}.jpg" for n in range(4)]
    for path in paths:
        path.write_bytes(data)

    outcomes = _uploads(pg, "acme", [[path] for path in paths])

    kinds = sorted(outcome for outcome, *_ in outcomes)
    # One racer claimed the blob and rendered it; the others reused it, waiting or not.
    assert kinds.count("render") == 1
    assert set(kinds) - {"render"} <= {"waiting", "duplicate"}
    assert pg.count(Blob) == pg.count(Blob, Blob.status == BlobStatus.ready) == 1
    assert pg.count(Media) == pg.count(Media, Media.status == MediaStatus.ready) == 4
    with pg.sessions() as session:
        assert len(set(session.scalars(select(Media.blob_id)))) == 1
        readies = session.scalars(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "media.ready")
            .group_by(AuditEvent.media_id)
        ).all()
    assert readies == [1, 1, 1, 1]
    assert object_problems(pg.store_root, pg.sessions) == []
    assert leftover_files(pg.store_root, pg.sessions) == []


def test_parallel_uploads_never_admit_more_than_the_quota(pg: Catalog, tmp_path: Path) -> None:
    """Four photos that each fit, two of which do together, and a corrupt upload that is
    admitted, then fails and gives its reservation back."""
    photos = write_photos(tmp_path / "photos", 4, width=320, height=240)
    corrupt = tmp_path / "photos" / "corrupt.jpg"
    corrupt.write_bytes(samples.corrupt_jpeg())
    sizes = sorted(path.stat().st_size for path in photos)
    quota = sizes[-1] + sizes[-2] + corrupt.stat().st_size
    assert sum(sizes[:3]) > quota  # whatever the order, a third photo never fits
    workspace_id = pg.workspace("acme", quota)

    outcomes = _uploads(pg, "acme", [[path] for path in [*photos, corrupt]])

    codes = sorted((outcome, code or "") for outcome, code, *_ in outcomes)
    assert codes == [
        ("failed", "corrupt"),
        ("failed", QUOTA_EXCEEDED),
        ("failed", QUOTA_EXCEEDED),
        ("render", ""),
        ("render", ""),
    ]
    with pg.sessions() as session:
        ready = session.scalars(select(Blob.size).where(Blob.status == BlobStatus.ready)).all()
        refused = session.scalars(select(Media).where(Media.error_code == QUOTA_EXCEEDED)).all()
        held = reserved_bytes(session, workspace_id)
    assert len(ready) == 2
    # Only the stored photos hold space: refused uploads claimed nothing, and the corrupt
    # upload's reservation went with its failure.
    assert held == sum(ready) <= quota
    assert all(media.blob_id is None for media in refused)
    assert pg.count(Blob) == 3  # the two photos and the failed corrupt upload
    assert object_problems(pg.store_root, pg.sessions) == []


def test_orphan_sweeps_during_uploads_delete_only_unreferenced_objects(
    pg: Catalog, tmp_path: Path
) -> None:
    """The sweeping process's clock runs past the grace period, so nothing is young enough
    to be spared for it: only the catalog re-checks stand between it and in-flight uploads.
    """
    workspace_id = pg.workspace("acme")
    prefix = pg.store_root / "tenants" / f"workspace_{workspace_id}" / "library" / "00" / "x"
    strays = [prefix / f"{digit * 64}_thumb.webp" for digit in "abc"] + [prefix / "foreign.bin"]
    for stray in strays:
        stray.parent.mkdir(parents=True, exist_ok=True)
        stray.write_bytes(b"nobody's")
    backdate_tree(pg.store_root, seconds=2 * 3600)
    photos = write_photos(tmp_path / "photos", 9, width=240, height=180)
    batches = [photos[0:3], photos[3:6], photos[6:9]]
    barrier, results, over = SPAWN.Barrier(len(batches) + 1), SPAWN.Queue(), SPAWN.Event()
    sweeper = _start(sweep_worker, pg.env, "acme", 2 * GRACE_MINUTES, barrier, over, results)
    uploaders = [
        _start(upload_worker, pg.env, "acme", [str(p) for p in batch], barrier, results)
        for batch in batches
    ]

    answers = _collect(results, len(uploaders))
    over.set()
    (_, passes, actions) = _collect(results, 1)[0]
    _join([*uploaders, sweeper])

    assert [outcome for _, found in answers for outcome, *_ in found] == ["render"] * 9, answers
    assert pg.count(Media, Media.status == MediaStatus.ready) == 9
    assert passes >= 2
    deleted = {
        a["subject"] for a in actions if a["action"] == "object.deleted" and a["status"] == "done"
    }
    assert deleted == {stray.relative_to(pg.store_root).as_posix() for stray in strays}
    assert object_problems(pg.store_root, pg.sessions) == []
    assert leftover_files(pg.store_root, pg.sessions) == []

    # On the real clock, the grace period decides: an old stray goes, a young one stays.
    old, young = prefix / f"{'d' * 64}_tiny.webp", prefix / f"{'e' * 64}_tiny.webp"
    old.write_bytes(b"old")
    backdate_tree(prefix, seconds=2 * 3600)
    young.write_bytes(b"young")
    ctx = CleanupContext.open(get_settings())
    try:
        report = execute_orphan_sweep(
            ctx, plan_orphan_sweep(ctx, "acme", repo.utcnow()), ORPHAN_SWEEP_ACTOR
        )
    finally:
        ctx.close()
    outcomes = {(a.subject, a.status, a.reason) for a in report if a.action == "object.deleted"}
    assert outcomes == {
        (old.relative_to(pg.store_root).as_posix(), "done", None),
        (young.relative_to(pg.store_root).as_posix(), "skipped", "younger than the grace period"),
    }
    assert object_problems(pg.store_root, pg.sessions) == []
