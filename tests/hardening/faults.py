"""Faults to inject, processes to race, and the checks that say the pipeline survived them.

- `FlakyStore` makes the ``file://`` backend fail a share of its calls the way a remote store
  does: refused before anything happened, torn (the metadata landed, the object did not),
  or done but unacknowledged. Which call fails is drawn from a hash of the seed, the call
  and the key's attempt number, so a run fails the same calls whatever the thread timing.
- `InlinePool` renders in the calling process, so each racing process is one OS process
  running the pipeline's own stages (stage, register, derive-and-publish).
- `upload_worker` and `sweep_worker` are what racing processes run; they start together
  at a `multiprocessing.Barrier`.
- ``python -m tests.hardening.faults POINT MARKER -- ARGS...`` runs ``mediamill ARGS`` and
  SIGKILLs its whole process group at an exact point of its work (see `KILL_POINTS`), after
  writing what it was doing to MARKER.
- `object_problems` and `leftover_files` check what the catalog vouches for against the
  store, byte for byte, and what else is left on disk.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from mediamill.storage.backends import local as local_backend
from mediamill.storage.backends.local import LocalBackend
from mediamill.storage.backends.sidecar import SIDECAR_SUFFIX
from mediamill.tasks.pixels import RenderJob, RenderOutcome, render_job

# -- inputs -------------------------------------------------------------------------------


def write_photos(
    folder: Path, count: int, *, width: int = 320, height: int = 240, first_seed: int = 0
) -> list[Path]:
    """``count`` distinct photo-like JPEGs named by seed, so runs are reproducible."""
    from mediamill.media import samples

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(first_seed, first_seed + count):
        path = folder / f"photo-{seed:02d}.jpg"
        path.write_bytes(samples.photo_jpeg(width, height, seed=seed))
        paths.append(path)
    return paths


# -- a store that fails ---------------------------------------------------------------------

WRITE_FAULTS = ("refused", "torn", "unacknowledged")
READ_OPERATIONS = ("read", "head", "is_file", "find", "delete")


class _TornOs:
    """``os`` as the file backend sees it, except that an armed thread's object rename fails.

    The backend renames the sidecar into place first, then the object: failing the second
    rename leaves the store exactly as a write torn between its two steps would.
    """

    def __init__(self, armed: threading.local) -> None:
        self._armed = armed

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def replace(self, src: str, dst: str) -> None:
        if getattr(self._armed, "on", False) and not os.path.basename(dst).startswith("."):
            raise OSError(errno.ETIMEDOUT, "injected: the store timed out storing the object")
        os.replace(src, dst)


class FlakyStore:
    """Fails ``rate`` of the file backend's writes and reads with transient I/O errors.

    Installed on the `LocalBackend` class, so every store the code under test opens in this
    process is flaky. ``calls`` and ``injected`` count per operation (writes per fault kind).
    With ``fail_first``, only the first that many attempts on each key may fail: a burst.
    """

    def __init__(self, rate: float, seed: int, fail_first: int | None = None) -> None:
        self.rate = rate
        self.seed = seed
        self.fail_first = fail_first
        self.calls: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self._attempts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._armed = threading.local()

    def _draw(self, operation: str, key: str) -> float | None:
        """The call's draw in ``[0, rate)`` if it must fail, else None."""
        with self._lock:
            attempt = self._attempts[(operation, key)]
            self._attempts[(operation, key)] += 1
            self.calls[operation] += 1
        if self.fail_first is not None and attempt >= self.fail_first:
            return None
        digest = hashlib.sha256(f"{self.seed}:{operation}:{key}:{attempt}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64
        return draw if draw < self.rate else None

    def _count(self, kind: str) -> None:
        with self._lock:
            self.injected[kind] += 1

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make every `LocalBackend` flaky until the test's monkeypatch is undone."""
        monkeypatch.setattr(local_backend, "os", _TornOs(self._armed))
        monkeypatch.setattr(LocalBackend, "write", self._flaky_write(LocalBackend.write))
        monkeypatch.setattr(LocalBackend, "write_file", self._flaky_write(LocalBackend.write_file))
        monkeypatch.setattr(LocalBackend, "write_many", self._flaky_batch(LocalBackend.write_many))
        for operation in READ_OPERATIONS:
            original = getattr(LocalBackend, operation)
            monkeypatch.setattr(LocalBackend, operation, self._flaky_read(operation, original))

    def _flaky_write(self, original: Callable[..., None]) -> Callable[..., None]:
        def write(backend: LocalBackend, path: str, data: Any, **metadata: str) -> None:
            """``data``: the bytes of `write`, or the source file of `write_file`."""
            draw = self._draw("write", backend.relative(path) or path)
            if draw is None:
                original(backend, path, data, **metadata)
                return
            fault = WRITE_FAULTS[int(draw / self.rate * len(WRITE_FAULTS))]
            self._count(f"write:{fault}")
            if fault == "refused":
                raise ConnectionResetError(errno.ECONNRESET, "injected: connection reset")
            if fault == "torn":
                self._armed.on = True
                try:
                    original(backend, path, data, **metadata)
                finally:
                    self._armed.on = False
                raise AssertionError("the torn write went through")
            original(backend, path, data, **metadata)
            raise TimeoutError("injected: no answer after the object was stored")

        return write

    def _flaky_batch(self, original: Callable[..., None]) -> Callable[..., None]:
        """A batch is one call to the store: one draw, keyed by its first object's path."""

        def write_all(backend: LocalBackend, _path: str, items: Any, **metadata: str) -> None:
            original(backend, items, **metadata)

        flaky = self._flaky_write(write_all)

        def write_many(backend: LocalBackend, items: Any, **metadata: str) -> None:
            flaky(backend, items[0][0], items, **metadata)

        return write_many

    def _flaky_read(self, operation: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def read(backend: LocalBackend, path: Any, *args: Any, **kwargs: Any) -> Any:
            subject = path if isinstance(path, str) else ",".join(path)
            if self._draw(operation, backend.relative(subject) or subject) is not None:
                self._count(operation)
                raise TimeoutError(f"injected: {operation} timed out")
            return original(backend, path, *args, **kwargs)

        return read


# -- what a racing process runs -----------------------------------------------------------


class InlinePool:
    """A render pool that renders in the calling process (a racing process is one process)."""

    workers = 1

    def warm_up(self) -> None:
        """Nothing to start."""

    def render(self, jobs: Sequence[RenderJob]) -> Iterator[RenderOutcome]:
        for job in jobs:
            yield render_job(job)

    def close(self) -> None:
        """Nothing to stop."""


def _open_pipeline(env: dict[str, str]) -> Any:
    """A pipeline context on the settings ``env`` describes, rendering in this process."""
    os.environ.update(env)
    from mediamill.catalog.engine import make_engine, make_session_factory
    from mediamill.settings import get_settings
    from mediamill.storage.factory import open_store
    from mediamill.tasks.context import PipelineContext

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    return PipelineContext(
        settings, make_session_factory(engine), open_store(settings), InlinePool()
    )


def upload_worker(
    env: dict[str, str],
    workspace: str,
    paths: list[str],
    barrier: Any,
    results: Any,
) -> None:
    """Upload ``paths`` one by one, as an API upload does, from the barrier on.

    Every upload goes through the stages the ingest flows run (stage, register with dedupe
    and quota admission, derive-and-publish). Puts ``(pid, [(outcome, code, message,
    media_id, sha256)])`` on ``results``, or ``(pid, traceback)`` if anything raised.
    """
    try:
        from mediamill.catalog import repository as repo
        from mediamill.tasks.publish import derive_and_publish
        from mediamill.tasks.register import register_batch
        from mediamill.tasks.sources import file_source
        from mediamill.tasks.staging import stage

        ctx = _open_pipeline(env)
        try:
            with ctx.writing() as session:
                workspace_id = repo.ensure_workspace(session, workspace).id
            staged = [stage(file_source(Path(p)), ctx.settings.max_upload_bytes) for p in paths]
            barrier.wait(timeout=120)
            outcomes = []
            for item in staged:
                (registration,) = register_batch(ctx, workspace_id, [(0, item)], None)
                outcome, code = registration.outcome, registration.error_code
                message = registration.error_message
                if registration.render is not None:
                    (finished,) = derive_and_publish(ctx, [registration.render])
                    if not finished.ok:
                        outcome, code, message = (
                            "failed",
                            finished.error_code,
                            finished.error_message,
                        )
                outcomes.append((outcome, code, message, str(registration.media_id), item.sha256))
        finally:
            ctx.close()
        results.put((os.getpid(), outcomes))
    except BaseException:
        results.put((os.getpid(), traceback.format_exc()))


def sweep_worker(
    env: dict[str, str],
    workspace: str,
    clock_ahead_minutes: int,
    barrier: Any,
    uploads_over: Any,
    results: Any,
) -> None:
    """Run orphan sweeps back to back from the barrier on, until ``uploads_over`` is set.

    The sweep's clock runs ``clock_ahead_minutes`` ahead: past the grace period, every
    object looks old enough to delete, so only the catalog re-checks protect in-flight
    uploads. At least two passes run, the last after every upload finished. Puts ``(pid,
    passes, [action dicts])`` on ``results``, or ``(pid, traceback)``.
    """
    try:
        from datetime import timedelta

        from mediamill.catalog.repository import utcnow
        from mediamill.settings import get_settings
        from mediamill.tasks.cleanup import (
            ORPHAN_SWEEP_ACTOR,
            CleanupContext,
            execute_orphan_sweep,
            plan_orphan_sweep,
        )

        os.environ.update(env)
        ctx = CleanupContext.open(get_settings())
        actions = []
        passes = 0
        try:
            barrier.wait(timeout=120)
            while True:
                last = uploads_over.is_set()
                now = utcnow() + timedelta(minutes=clock_ahead_minutes)
                plan = plan_orphan_sweep(ctx, workspace, now)
                actions += execute_orphan_sweep(ctx, plan, ORPHAN_SWEEP_ACTOR)
                passes += 1
                if last and passes >= 2:
                    break
        finally:
            ctx.close()
        results.put((os.getpid(), passes, [action.as_dict() for action in actions]))
    except BaseException:
        results.put((os.getpid(), traceback.format_exc()))


# -- checks ---------------------------------------------------------------------------------


def vouched_objects(sessions: Any) -> dict[str, int]:
    """Key and size of every object the catalog says is stored: ready blobs' originals and
    variants. A processing or failed blob only names the key its original will have."""
    from sqlalchemy import select

    from mediamill.catalog.models import Blob, BlobStatus, Variant

    with sessions() as session:
        originals = session.execute(
            select(Blob.original_key, Blob.size).where(Blob.status == BlobStatus.ready)
        )
        variants = session.execute(
            select(Variant.key, Variant.size)
            .join(Blob, Blob.id == Variant.blob_id)
            .where(Blob.status == BlobStatus.ready)
        )
        return {key: size for key, size in [*originals, *variants]}


def object_problems(store_root: Path, sessions: Any) -> list[str]:
    """What is wrong with the objects the catalog vouches for: missing, wrong size, or
    bytes that do not decode in full. Empty when every one is whole."""
    import pyvips

    problems = []
    for key, size in sorted(vouched_objects(sessions).items()):
        path = store_root / key
        if not path.is_file():
            problems.append(f"{key}: missing")
            continue
        data = path.read_bytes()
        if len(data) != size:
            problems.append(f"{key}: {len(data)} bytes, the catalog says {size}")
            continue
        try:
            pyvips.Image.new_from_buffer(data, "", fail_on="error").avg()
        except pyvips.Error as error:
            problems.append(f"{key}: does not decode: {error}")
    return problems


def store_files(store_root: Path) -> set[str]:
    """Every file under the store's root, as a path relative to it."""
    return {
        str(Path(directory, name).relative_to(store_root))
        for directory, _, names in os.walk(store_root)
        for name in names
    }


def leftover_files(store_root: Path, sessions: Any) -> list[str]:
    """Files on disk that are neither an object the catalog vouches for nor its sidecar:
    stray objects, temp files of interrupted writes, sidecars of objects never written."""
    keep = set(vouched_objects(sessions))
    for key in list(keep):
        directory, _, name = key.rpartition("/")
        keep.add(f"{directory}/.{name}{SIDECAR_SUFFIX}")
    return sorted(store_files(store_root) - keep)


def backdate_tree(root: Path, seconds: float) -> None:
    """Move every file's modification time ``seconds`` into the past (a sweep's grace)."""
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            stat = os.stat(path)
            os.utime(path, (stat.st_atime - seconds, stat.st_mtime - seconds))


# -- what the Prefect run shows -------------------------------------------------------------


def task_run_counts(flow_run_id: Any) -> dict[str, list[int]]:
    """Per task name, how many times each of the run's task runs ran (2+: retried)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    counts: dict[str, list[int]] = {}
    for run in runs:
        counts.setdefault(run.name.rsplit("-", 1)[0], []).append(run.run_count)
    return counts


def run_log_messages(flow_run_id: Any) -> list[str]:
    """Every log line the run (and its task runs) sent to the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
    return [log.message for log in logs]


# -- the CLI, killed at an exact point ------------------------------------------------------


def _kill_group(marker: Path, what: dict[str, Any]) -> None:
    """Say what was happening, then SIGKILL the whole process group (pixel workers too)."""
    marker.write_text(json.dumps(what))
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _kill_mid_write(nth: int, marker: Path) -> None:
    """SIGKILL while the ``nth`` object of the run is being written: half its bytes are in
    the temp file, as when the kernel stops a process inside ``write(2)``."""
    writes = Counter[str]()
    lock = threading.Lock()
    original_publish = LocalBackend._publish

    def publish(backend: LocalBackend, pending: Sequence[Any], cache_control: str) -> None:
        with lock:
            first = writes["n"] + 1
            writes["n"] += len(pending)
        pending = list(pending)
        if first <= nth < first + len(pending):
            path, whole, _ = pending[nth - first]
            key = backend.relative(path)

            def fill(file: BinaryIO) -> None:
                whole(file)
                file.flush()
                file.truncate(file.tell() // 2)
                file.flush()
                temp = os.readlink(f"/proc/self/fd/{file.fileno()}")
                _kill_group(marker, {"point": "mid-write", "key": key, "temp": temp})

            pending[nth - first] = pending[nth - first]._replace(fill=fill)
        original_publish(backend, pending, cache_control)

    LocalBackend._publish = publish  # type: ignore[method-assign,assignment]


def _kill_before_commit(nth: int, marker: Path) -> None:
    """SIGKILL once the ``nth`` blob of the run has every object stored, before its commit."""
    from mediamill.tasks import publish

    commits = Counter[str]()
    lock = threading.Lock()
    original = publish._commit_success

    def commit(ctx: Any, plan: Any, rendition: Any, rows: Any) -> Any:
        with lock:
            commits["n"] += 1
            target = commits["n"] == nth
        if target:
            keys = [plan.original_key, *(row.key for row in rows)]
            _kill_group(marker, {"point": "before-commit", "sha256": plan.sha256, "keys": keys})
        return original(ctx, plan, rendition, rows)

    publish._commit_success = commit


def _kill_after_register(nth: int, marker: Path) -> None:
    """SIGKILL once the ``nth`` batch of the run is registered, before any of it is stored.

    A poll of the catalog cannot stop the run there: early renders let the first batch's
    objects be written within milliseconds of its rows.
    """
    from mediamill.tasks import stages

    batches = Counter[str]()
    lock = threading.Lock()
    original = stages.register_batch

    def register_batch(*args: Any, **kwargs: Any) -> Any:
        registrations = original(*args, **kwargs)
        with lock:
            batches["n"] += 1
            target = batches["n"] == nth
        if target:
            media = [str(r.media_id) for r in registrations]
            _kill_group(marker, {"point": "after-register", "media": media})
        return registrations

    stages.register_batch = register_batch


KILL_POINTS: dict[str, Callable[[int, Path], None]] = {
    "after-register": _kill_after_register,
    "mid-write": _kill_mid_write,
    "before-commit": _kill_before_commit,
}


def main(argv: list[str]) -> None:
    """``POINT:N MARKER -- mediamill-args``: run the command, dying at the Nth POINT."""
    point, marker, separator, *args = argv
    assert separator == "--", "usage: POINT:N MARKER -- ARGS..."
    name, _, nth = point.partition(":")
    # As the CLI does before anything imports Prefect: its environment, then the command.
    from mediamill.deployments.local_server import configure_prefect_environment
    from mediamill.settings import get_settings

    configure_prefect_environment(get_settings(), start=False)
    KILL_POINTS[name](int(nth), Path(marker))
    from mediamill.cli import app

    sys.argv = ["mediamill", *args]
    app()


if __name__ == "__main__":
    main(sys.argv[1:])
