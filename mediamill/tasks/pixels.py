"""Pixel work in a pool of worker processes, one asset per worker at a time.

Decoding untrusted bytes happens here, away from the process that holds the catalog
session and the Prefect run: a worker uses one core, so ``workers`` processes keep every
core busy while the orchestrating threads store results and write the catalog.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import multiprocessing
import os
import resource
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from mediamill.media.errors import MediaError, ValidationError
from mediamill.media.rendition import Rendition, VariantId
from mediamill.tasks.recipes import Recipe, render

_PACKAGES = {"model": ("trimesh", "vtk"), "document": ("pypdfium2",)}


@dataclass(frozen=True)
class RenderJob:
    """One blob to render: its bytes come from a local path, memory, or the stored original.

    Plain picklable data with no open handle: it crosses to worker processes or a Dask cluster.
    """

    blob_id: int
    sha256: str
    media_type: str
    media_format: str
    recipe: Recipe
    path: str | None = None
    data: bytes | None = None
    only: frozenset[VariantId] | None = None


@dataclass(frozen=True)
class RenderOutcome:
    """A rendition, or the machine-readable reason there is none."""

    blob_id: int
    rendition: Rendition | None
    error_code: str | None
    error_message: str | None
    seconds: float
    peak_rss_bytes: int = 0
    library_versions: dict[str, str] | None = None


def _library_versions(media_type: str) -> dict[str, str]:
    """What made a variant, kept on its catalog row.

    Package metadata rather than imports where an import would load a renderer (VTK,
    PDFium) into the worker just for a version string.
    """
    import pyvips

    versions = {"libvips": ".".join(str(pyvips.version(i)) for i in range(3))}
    if media_type == "video":
        from mediamill.media import ffmpeg

        versions["ffmpeg"] = ffmpeg.version()
    for package in _PACKAGES.get(media_type, ()):
        versions[package] = importlib.metadata.version(package)
    return versions


def _peak_rss_bytes() -> int:
    """This worker's peak resident memory so far.

    The kernel's VmHWM starts afresh at exec; ``ru_maxrss`` would also count the pages the
    worker shared with its parent between fork and exec.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class SourceChangedError(Exception):
    """The file on disk is not the content that was hashed and registered."""


class PoolUnavailableError(Exception):
    """The pixel workers cannot be reached: the run cannot start its pixel work."""


def _read_verified(job: RenderJob) -> bytes:
    """The job's bytes; a file that changed since it was hashed is refused."""
    if job.data is not None:
        return job.data
    assert job.path is not None
    data = Path(job.path).read_bytes()
    if hashlib.sha256(data).hexdigest() != job.sha256:
        raise SourceChangedError("the file changed while it was being ingested")
    return data


def _reason(error: MediaError | SourceChangedError | OSError) -> tuple[str, str]:
    """The machine-readable reason an asset failed, whichever process read it."""
    if isinstance(error, ValidationError):
        return error.code, str(error)
    if isinstance(error, MediaError):
        return "processing_error", str(error)
    if isinstance(error, SourceChangedError):
        return "source_changed", str(error)
    return "unreadable", f"cannot read source: {error}"


def render_job(job: RenderJob) -> RenderOutcome:
    """Runs in a worker: never raises for bad input, so one asset cannot fail a batch."""
    started = time.perf_counter()
    try:
        data = _read_verified(job)
        rendition = render(job.recipe, job.media_type, job.media_format, data, job.sha256, job.only)
        seconds = time.perf_counter() - started
        return RenderOutcome(
            job.blob_id,
            rendition,
            None,
            None,
            seconds,
            _peak_rss_bytes(),
            _library_versions(job.media_type),
        )
    except (MediaError, SourceChangedError, OSError) as error:
        code, message = _reason(error)
    seconds = time.perf_counter() - started
    return RenderOutcome(job.blob_id, None, code, message, seconds, _peak_rss_bytes())


def with_bytes(job: RenderJob) -> RenderJob | RenderOutcome:
    """The job carrying its bytes instead of a path, for a worker that cannot see our files.

    The file is read and checked against its hash here, so a missing or changed file ends
    with the reason a local worker would give.
    """
    if job.data is not None:
        return job
    try:
        data = _read_verified(job)
    except (SourceChangedError, OSError) as error:
        return RenderOutcome(job.blob_id, None, *_reason(error), 0.0)
    return replace(job, path=None, data=data)


def configure_worker(threads: int) -> None:
    """Set up libvips in a pixel worker: ``threads`` per job, no operation cache."""
    # Imported here so the parent never configures libvips for its own process.
    import pyvips

    pyvips.concurrency_set(threads)
    pyvips.cache_set_max(0)


class RenderPool(Protocol):
    """Where a run's pixel work happens: local processes or a Dask cluster."""

    @property
    def workers(self) -> int:
        """How many jobs run at once."""
        ...

    def warm_up(self) -> None:
        """Get workers ready while the run is still reading sources."""
        ...

    def render(self, jobs: Sequence[RenderJob]) -> Iterator[RenderOutcome]:
        """Outcomes as they complete; a dead worker fails only the jobs it took down."""
        ...

    def close(self) -> None:
        """Release the workers or the connection."""
        ...


class PixelPool:
    """A process pool sized to the cores, started once per flow run.

    A worker that dies (a decoder crash, the kernel's OOM killer) breaks a
    ``ProcessPoolExecutor`` for good; the pool then starts a fresh executor, so the jobs
    that were in flight fail as ``worker_crashed`` (retried by the next run) and the rest
    of the run goes on.
    """

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._threads = max(1, (os.cpu_count() or 1) // self.workers)
        self._lock = threading.Lock()
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=configure_worker,
            initargs=(self._threads,),
        )

    def _submit(self, job: RenderJob) -> Future[RenderOutcome]:
        with self._lock:
            try:
                return self._executor.submit(render_job, job)
            except BrokenProcessPool:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = self._new_executor()
                return self._executor.submit(render_job, job)

    def warm_up(self) -> None:
        """Start the workers now, while the run is still reading and hashing sources."""
        with self._lock:
            for _ in range(self.workers):
                self._executor.submit(os.getpid)

    def render(self, jobs: Sequence[RenderJob]) -> Iterator[RenderOutcome]:
        """Outcomes as they complete; a crashed worker fails the jobs it took down only."""
        futures = {self._submit(job): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                yield future.result()
            except BrokenProcessPool:
                yield RenderOutcome(
                    job.blob_id, None, "worker_crashed", "the decoder process died", 0.0
                )

    def close(self) -> None:
        with self._lock:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> PixelPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def missing_variants(
    recipe: Recipe, media_type: str, have: set[VariantId], has_alpha: bool
) -> frozenset[VariantId]:
    """The (name, format, version) the current recipe wants and the blob lacks."""
    return recipe.planned_variants(media_type, has_alpha) - frozenset(have)
