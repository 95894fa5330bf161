"""Faults of the services under a run: a store failing 30% of its calls, a catalog whose
connections are cut (PostgreSQL, ``pg_terminate_backend``).

Safe means: every asset still ends ready, or the run fails and a rerun finishes it; no
object is visible half-written; no catalog row vouches for an object the store lacks;
and the Prefect run shows the retries that made it so.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from tenacity import wait_none

from mediamill.catalog import migrate
from mediamill.catalog import repository as repo
from mediamill.catalog.engine import make_engine, make_session_factory
from mediamill.catalog.models import Blob, BlobStatus, Media, MediaStatus
from mediamill.flows.ingest import backfill
from mediamill.flows.sweeps import orphan_sweep
from mediamill.settings import get_settings
from mediamill.storage.errors import TransientStorageError
from mediamill.storage.factory import open_store
from mediamill.storage.objects import NewObject
from mediamill.tasks import publish
from mediamill.tasks.stages import derive
from tests.hardening.faults import (
    WRITE_FAULTS,
    FlakyStore,
    backdate_tree,
    leftover_files,
    object_problems,
    run_log_messages,
    task_run_counts,
    write_photos,
)
from tests.services.postgres import PostgresServer

pytestmark = pytest.mark.usefixtures("prefect_api")

FAILURE_RATE = 0.3


def _count(sessions: Any, model: Any, *where: Any) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_a_store_failing_30_percent_of_calls_still_ends_with_every_asset_ready(
    catalog: Any, tmp_path: Path
) -> None:
    """Writes fail before anything lands, halfway (metadata in place, object not) or after
    landing unacknowledged; per-call retries with backoff absorb all of it. (A backfill
    reads its sources, not the store: the sweep below meets the failing reads.)"""
    folder = tmp_path / "photos"
    # A blob's objects go to the store in one call: enough blobs for every kind of fault.
    write_photos(folder, 40)
    (folder / "photo-copy.jpg").write_bytes((folder / "photo-00.jpg").read_bytes())
    flaky = FlakyStore(FAILURE_RATE, seed=20240601)
    store_root = get_settings().home / "storage"

    with pytest.MonkeyPatch.context() as patch:
        flaky.install(patch)
        state = backfill(str(folder), "acme", batch_size=4, workers=1, return_state=True)
    summary = state.result()

    assert (summary["ingested"], summary["duplicates"], summary["failed"]) == (40, 1, 0)
    assert _count(catalog, Media, Media.status == MediaStatus.ready) == 41
    assert _count(catalog, Blob, Blob.status == BlobStatus.ready) == 40
    # The faults really were injected, at about the rate asked for, of every write kind.
    assert all(flaky.injected[f"write:{fault}"] > 0 for fault in WRITE_FAULTS), flaky.injected
    share = sum(flaky.injected[f"write:{f}"] for f in WRITE_FAULTS) / flaky.calls["write"]
    assert 0.2 < share < 0.4, share
    # Only whole objects are visible, and nothing else is on disk: a torn write left no
    # sidecar without its object and no temp file.
    assert object_problems(store_root, catalog) == []
    assert leftover_files(store_root, catalog) == []
    # Each retry is a warning in the run's logs, naming the call and the error.
    messages = run_log_messages(state.state_details.flow_run_id)
    retries = [message for message in messages if message.startswith("storage retry")]
    assert len(retries) == sum(flaky.injected.values())
    assert any("injected: connection reset" in message for message in retries)


@contextmanager
def _bursting(failures: int) -> Iterator[FlakyStore]:
    """Every key's first ``failures`` writes fail; retries do not wait."""
    flaky = FlakyStore(1.0, seed=0, fail_first=failures)
    with pytest.MonkeyPatch.context() as patch:
        flaky.install(patch)
        patch.setattr(publish._put_many.retry, "wait", wait_none())  # type: ignore[attr-defined]
        yield flaky


def test_a_put_outlasts_nine_transient_failures_in_a_row_and_gives_up_at_ten(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The publishing budget: at a 30% failure rate, 0.3^10 of puts (6e-6) give up.

    Six attempts, the budget before, gave up on 0.3^6 = 0.07% of puts: one 12-image backfill
    in fifteen lost an asset to a store that throttles a third of its writes.
    """
    store = open_store(get_settings())
    nine, ten = (f"tenants/workspace_1/library/00/x/image/original/{n}.jpg" for n in (9, 10))

    with _bursting(9) as burst:
        publish._put_many(store, [NewObject(nine, "image/jpeg", data=b"stored at last")])
    assert burst.calls["write"] == 10
    with _bursting(10) as burst, pytest.raises(TransientStorageError):
        publish._put_many(store, [NewObject(ten, "image/jpeg", data=b"never stored")])
    assert burst.calls["write"] == 10

    assert store.get(nine) == b"stored at last"
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("storage retry")]
    assert len(logged) == 9 + 9


def test_orphan_sweep_through_a_flaky_store_deletes_only_strays(
    catalog: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listing, existence checks and deletes fail 30% of the time during the sweep: two
    stray objects and the temp file of a killed write still go, and nothing else does."""
    monkeypatch.setenv("MEDIAMILL_ORPHAN_GRACE_MINUTES", "1")
    folder = tmp_path / "photos"
    write_photos(folder, 3, width=160, height=120)
    backfill(str(folder), "acme", workers=1)
    store_root = get_settings().home / "storage"
    assert leftover_files(store_root, catalog) == []
    workspace = next(store_root.glob("tenants/workspace_*"))
    gone = workspace / "library" / "ff" / "gone"
    strays = [gone / f"{'ab' * 32}_thumb.webp", gone / "foreign-name.bin"]
    strays.append(gone / f".{'cd' * 32}_tiny.webp.0123456789abcdef.tmp")
    for stray in strays:
        stray.parent.mkdir(parents=True, exist_ok=True)
        stray.write_bytes(b"left behind")
    backdate_tree(store_root, seconds=3600)
    flaky = FlakyStore(FAILURE_RATE, seed=7)

    with pytest.MonkeyPatch.context() as patch:
        flaky.install(patch)
        report = orphan_sweep("acme")

    assert flaky.injected["find"] > 0
    assert report["counts"]["object.deleted"] == {"done": 2}
    assert report["counts"]["leftover.deleted"] == {"done": 1}
    assert not any(stray.exists() for stray in strays)
    assert object_problems(store_root, catalog) == []
    assert leftover_files(store_root, catalog) == []


# -- the catalog's connections cut mid-run --------------------------------------------------


class CatalogCutter:
    """Cuts every connection to one PostgreSQL database, as a failover or restart would."""

    def __init__(self, server: PostgresServer, url: str) -> None:
        self.database = make_url(url).database
        self._conninfo = (
            f"host={server.host} port={server.port} user={server.cluster.user} dbname=postgres"
        )
        self.cuts: list[str] = []

    def _admin(self, statement: str, *params: object) -> list[tuple[Any, ...]]:
        with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10) as connection:
            cursor = connection.execute(statement, params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def cut(self, where: str) -> None:
        """Terminate every backend of the database, the caller's own transaction included.

        Returns once those backends have exited: ``pg_terminate_backend`` only signals them,
        and one that is still alive could run a statement it is sent next.
        """
        ended = self._admin(
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            self.database,
        )
        assert ended, "no connection to cut"
        pids = [pid for pid, _ in ended]
        deadline = time.monotonic() + 10
        while self._admin("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", pids):
            assert time.monotonic() < deadline, f"backends {pids} outlived the cut"
            time.sleep(0.01)
        self.cuts.append(where)

    def allow_connections(self, allowed: bool) -> None:
        """Refuse (or accept again) new connections: an outage, not a blip."""
        self._admin(f'ALTER DATABASE "{self.database}" ALLOW_CONNECTIONS {str(allowed).lower()}')


@pytest.fixture
def pg_catalog(
    postgres_server: PostgresServer, home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[CatalogCutter, Any]]:
    """The flows' catalog on its own PostgreSQL database, and the means to cut it."""
    url = postgres_server.new_database()
    monkeypatch.setenv("MEDIAMILL_DATABASE_URL", url)
    engine = make_engine(url)
    migrate.upgrade(engine)
    cutter = CatalogCutter(postgres_server, url)
    yield cutter, make_session_factory(engine)
    engine.dispose()
    cutter.allow_connections(True)
    postgres_server.drop_database(url)


def _cut_inside(
    patch: pytest.MonkeyPatch, cutter: CatalogCutter, name: str, nth: int, outage: bool = False
) -> None:
    """Cut the catalog inside the ``nth`` call of ``repository.<name>``: mid-transaction.

    With ``outage``, new connections are refused first and stay refused until the test
    allows them again, so every retry meets the outage too.
    """
    original = getattr(repo, name)
    calls = itertools.count(1)
    # The run's task threads call concurrently. A call after the nth waits here until the
    # cut is done, so none of them slips a commit in between.
    cutting_now = threading.Lock()

    def cutting(*args: Any, **kwargs: Any) -> Any:
        with cutting_now:
            if next(calls) == nth:
                if outage:
                    cutter.allow_connections(False)
                cutter.cut(f"{name} #{nth}")
        return original(*args, **kwargs)

    patch.setattr(repo, name, cutting)


def _ready_media_on_unready_blobs(sessions: Any) -> int:
    unready = select(Blob.id).where(Blob.status != BlobStatus.ready)
    return _count(sessions, Media, Media.status == MediaStatus.ready, Media.blob_id.in_(unready))


def test_connections_cut_mid_transaction_are_retried_by_the_run(
    pg_catalog: tuple[CatalogCutter, Any], tmp_path: Path
) -> None:
    """Cut once while a batch registers (claiming blobs) and once while a blob commits."""
    cutter, sessions = pg_catalog
    folder = tmp_path / "photos"
    write_photos(folder, 6, width=200, height=150)

    with pytest.MonkeyPatch.context() as patch:
        _cut_inside(patch, cutter, "claim_blob", 3)
        _cut_inside(patch, cutter, "add_variants", 1)
        state = backfill(str(folder), "acme", batch_size=2, workers=1, return_state=True)

    assert sorted(cutter.cuts) == ["add_variants #1", "claim_blob #3"]
    summary = state.result()
    assert (summary["ingested"], summary["failed"]) == (6, 0)
    runs = task_run_counts(state.state_details.flow_run_id)
    assert max(runs["register"]) >= 2, runs
    assert max(runs["derive-and-publish"]) >= 2, runs
    assert _count(sessions, Media) == 6
    assert _count(sessions, Media, Media.status == MediaStatus.ready) == 6
    assert _count(sessions, Blob, Blob.status == BlobStatus.ready) == 6
    assert object_problems(get_settings().home / "storage", sessions) == []


def test_a_catalog_outage_fails_the_run_cleanly_and_a_rerun_finishes_it(
    pg_catalog: tuple[CatalogCutter, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connections cut while the first blob commits, and refused through every retry."""
    cutter, sessions = pg_catalog
    folder = tmp_path / "photos"
    write_photos(folder, 4, width=200, height=150)

    with pytest.MonkeyPatch.context() as patch:
        _cut_inside(patch, cutter, "add_variants", 1, outage=True)
        state = backfill(str(folder), "acme", batch_size=2, workers=1, return_state=True)
    cutter.allow_connections(True)

    assert state.is_failed()
    # Each stage that met the outage ran out of its retries, and only then did the run fail.
    runs = task_run_counts(state.state_details.flow_run_id)
    assert max(runs["derive-and-publish"]) == 1 + derive.retries, runs
    store_root = get_settings().home / "storage"
    # Nothing half-done is visible: what the catalog calls ready is whole and stored; the
    # rest is still claimed, for the rerun to take over.
    assert object_problems(store_root, sessions) == []
    assert _ready_media_on_unready_blobs(sessions) == 0
    assert _count(sessions, Blob, Blob.status == BlobStatus.failed) == 0

    rerun = backfill(str(folder), "acme", batch_size=2, workers=1)

    assert (rerun["ingested"], rerun["failed"]) == (4, 0)
    assert _count(sessions, Media) == 4
    assert _count(sessions, Media, Media.status == MediaStatus.ready) == 4
    assert _count(sessions, Blob, Blob.status == BlobStatus.ready) == 4
    assert object_problems(store_root, sessions) == []
    # Objects the failed run stored before its commit were rewritten and adopted, not left.
    monkeypatch.setenv("MEDIAMILL_ORPHAN_GRACE_MINUTES", "1")
    backdate_tree(store_root, seconds=3600)
    orphan_sweep("acme")
    assert leftover_files(store_root, sessions) == []
