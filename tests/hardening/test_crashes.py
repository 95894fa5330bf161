"""``mediamill backfill`` SIGKILLed mid-run, again and again, then run to the end.

The command runs as a user runs it, in a process group of its own, and the whole group
(pixel workers included) is killed: when the catalog shows the first media row, while an
object's bytes are half written, once a blob's objects are all stored but not committed,
and when half the assets are ready. Between two kills, an upload of bytes whose claim the
dead run still holds waits for that claim's lease, then takes the blob over.

Safe means: the last run ends with every file ready exactly once (one media row per file,
one blob per content, one ``media.ready`` each), every object the catalog vouches for is
whole, and after the next orphan sweep nothing else is left in the store, not even the
temp file of the write that was cut short.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from mediamill.catalog.models import AuditEvent, Blob, BlobStatus, Media, MediaStatus
from mediamill.flows.ingest import ingest_bytes
from mediamill.flows.sweeps import orphan_sweep
from mediamill.settings import get_settings
from mediamill.storage.factory import open_store
from mediamill.storage.headers import IMMUTABLE
from mediamill.tasks.context import CLAIM_LEASE
from tests.cli.conftest import MEDIAMILL
from tests.hardening.faults import (
    backdate_tree,
    leftover_files,
    object_problems,
    store_files,
    write_photos,
)

pytestmark = pytest.mark.usefixtures("prefect_api")

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 240.0
BACKFILL = ["backfill", "--workspace", "acme", "--workers", "1", "--batch-size", "3"]


def _count(sessions: Any, model: Any, *where: Any) -> int:
    try:
        with sessions() as session:
            return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)
    except OperationalError:  # locked by the command for longer than the busy timeout
        return -1


def _start(command: list[str], *, stderr: int = subprocess.STDOUT) -> subprocess.Popen[str]:
    """The command in a new session, so its process group holds it and its pixel workers."""
    return subprocess.Popen(
        command,
        cwd=REPO,
        env=os.environ.copy(),
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


def _finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    output, _ = process.communicate(timeout=DEADLINE_S)
    return process.returncode, output


def _kill_when(process: subprocess.Popen[str], condition: Callable[[], bool]) -> None:
    """SIGKILL the command's process group as soon as ``condition`` holds; it must still run."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        code = process.poll()
        assert code is None, (
            f"the command ended ({code}) before the kill point:\n{_finish(process)}"
        )
        assert time.monotonic() < deadline, "the kill point never came"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    code, output = _finish(process)
    assert code == -signal.SIGKILL, output


def test_sigkilled_backfills_rerun_to_every_asset_ready_exactly_once(
    catalog: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "photos"
    photos = write_photos(folder, 11, width=480, height=360)
    (folder / "photo-copy.jpg").write_bytes(photos[0].read_bytes())
    store_root = get_settings().home / "storage"
    backfill = [MEDIAMILL, *BACKFILL, str(folder)]

    def hooked(point: str) -> dict[str, Any]:
        """The backfill, killing its own process group at ``point``; what it was doing."""
        marker = tmp_path / f"{point}.json"
        module = [sys.executable, "-m", "tests.hardening.faults", point, str(marker), "--"]
        code, output = _finish(_start([*module, *BACKFILL, str(folder)]))
        assert code == -signal.SIGKILL, output
        found: dict[str, Any] = json.loads(marker.read_text())
        return found

    # 1. Killed once the first batch is registered: rows are processing, nothing stored.
    registered = hooked("after-register:1")
    assert registered["media"]
    assert _count(catalog, Media, Media.status == MediaStatus.processing) == len(
        registered["media"]
    )
    assert store_files(store_root) == set()

    # 2. Killed while the third object of the run is being written: half its bytes sit in
    # a temp file beside it, and nothing vouches for the object.
    torn = hooked("mid-write:3")
    assert Path(torn["temp"]).is_file()
    assert not (store_root / torn["key"]).exists()

    # 3. Killed once a blob's objects are all stored, before the commit that publishes them.
    stored = hooked("before-commit:1")
    assert all((store_root / key).is_file() for key in stored["keys"])
    with catalog() as session:
        stuck = session.scalars(select(Blob).where(Blob.sha256 == stored["sha256"])).one()
    assert stuck.status == BlobStatus.processing
    dead_runs_rows = _count(catalog, Media, Media.blob_id == stuck.id)
    assert dead_runs_rows > 0
    data = next(p for p in photos if _sha256(p) == stored["sha256"]).read_bytes()

    # 4. Another upload of those bytes finds the dead run's claim: within its lease it waits
    # for it; once the lease has run out it takes the blob over and finishes it.
    assert ingest_bytes(data, "again.jpg", "acme")["waiting"] == 1
    with catalog.begin() as session:
        session.execute(
            update(Blob)
            .where(Blob.id == stuck.id)
            .values(claimed_at=stuck.claimed_at - CLAIM_LEASE - timedelta(minutes=1))
        )
    assert ingest_bytes(data, "again-later.jpg", "acme")["ingested"] == 1
    with catalog() as session:
        statuses = session.scalars(select(Media.status).where(Media.blob_id == stuck.id)).all()
    # The dead run's rows for those bytes, the upload that waited and the one that took over.
    assert statuses == [MediaStatus.ready] * (dead_runs_rows + 2)

    # 5. Killed when half the assets are ready.
    _kill_when(
        _start(backfill), lambda: _count(catalog, Blob, Blob.status == BlobStatus.ready) >= 6
    )

    # 6. The same backfill again finishes everything.
    final = _start([*backfill, "--json"], stderr=subprocess.PIPE)
    output, errors = final.communicate(timeout=DEADLINE_S)
    assert final.returncode == 0, output + errors
    summary = json.loads(output)
    assert (summary["total"], summary["failed"], summary["waiting"]) == (12, 0, 0)

    with catalog() as session:
        sources = list(
            session.scalars(select(Media.source_key).where(Media.source_key.is_not(None)))
        )
        readies = session.execute(
            select(AuditEvent.media_id, func.count())
            .where(AuditEvent.action == "media.ready")
            .group_by(AuditEvent.media_id)
        ).all()
    assert len(sources) == len(set(sources)) == 12  # one media row per file
    assert _count(catalog, Media) == 14  # and the 2 uploads
    assert _count(catalog, Media, Media.status == MediaStatus.ready) == 14
    assert _count(catalog, Blob) == _count(catalog, Blob, Blob.status == BlobStatus.ready) == 11
    assert len(readies) == 14
    assert {count for _, count in readies} == {1}
    assert object_problems(store_root, catalog) == []

    # 7. The next orphan sweep (grace period over) leaves only what the catalog vouches for.
    assert Path(torn["temp"]).relative_to(store_root).as_posix() in store_files(store_root)
    monkeypatch.setenv("MEDIAMILL_ORPHAN_GRACE_MINUTES", "1")
    backdate_tree(store_root, seconds=2 * 3600)
    report = orphan_sweep("acme")
    # Every object a killed run stored was adopted by a rerun: no stray object to delete,
    # only temp files, at least the two of the write cut in half.
    assert set(report["counts"]) == {"leftover.deleted"}
    assert report["counts"]["leftover.deleted"]["done"] >= 2
    assert leftover_files(store_root, catalog) == []
    assert object_problems(store_root, catalog) == []


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_only_what_killed_writes_leave_is_a_leftover_and_objects_are_never_one(
    home: Path,
) -> None:
    """The store's side of the sweep above: what counts as a leftover, and what it refuses."""
    store = open_store(get_settings())
    store.put("a/b/kept.jpg", b"whole", content_type="image/jpeg", cache_control=IMMUTABLE)
    directory = get_settings().home / "storage" / "a" / "b"
    (directory / ".kept.jpg.0123456789abcdef.tmp").write_bytes(b"half of a rewrite")
    (directory / ".never.jpg.meta.json").write_text("{}")  # renamed in; the object never was

    leftovers = store.list_leftovers("a/")

    assert [(found.key, found.object_key) for found in leftovers] == [
        ("a/b/.kept.jpg.0123456789abcdef.tmp", "a/b/kept.jpg"),
        ("a/b/.never.jpg.meta.json", "a/b/never.jpg"),
    ]
    with pytest.raises(ValueError, match="not the store's own bookkeeping"):
        store.delete_leftover("a/b/kept.jpg")
    assert all(store.delete_leftover(found.key) for found in leftovers)
    assert store.list_leftovers("a/") == []
    assert store.get("a/b/kept.jpg") == b"whole"
    assert store.head("a/b/kept.jpg").content_type == "image/jpeg"
