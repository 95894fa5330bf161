"""Pixel work in a pool of worker processes, one asset per worker at a time.

Decoding untrusted bytes happens here, away from the process that holds the catalog
session and the Prefect run: a worker uses one core, so ``workers`` processes keep every
core busy while the orchestrating threads store results and write the catalog.

A decoder cannot be trusted not to crash, hang or balloon on hostile bytes, so every job
runs under the run's limits (``PixelLimits``): a wall-clock limit per job, after which its
worker is stopped, and a cap on each worker's data memory. A job that hits one fails alone
(``timed_out``, ``decoder_crashed``, ``out_of_memory``); its dead worker is replaced and
the other jobs in flight finish normally.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import multiprocessing
import os
import re
import resource
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures import TimeoutError as JobTimeoutError
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol, cast

from pebble import ProcessExpired, ProcessPool

from mediamill.media.errors import MediaError, ValidationError
from mediamill.media.rendition import Rendition, VariantId
from mediamill.media.sniff import SNIFF_BYTES, sniff
from mediamill.tasks.recipes import Recipe, render
from mediamill.tasks.staging import FileIdentity, file_identity

if TYPE_CHECKING:
    from mediamill.settings import Settings

_PACKAGES = {"model": ("trimesh", "vtk"), "document": ("pypdfium2",)}
MIB: Final = 1024 * 1024
# Side of the blank JPEG a worker renders when it starts (``prime_worker``).
PRIMING_SIDE: Final = 32
# How often a wait for outcomes checks that the pools holding its jobs are alive: pebble
# can lose a job sent just as its pool broke, leaving its future unsettled for ever.
LIVENESS_POLL_SECONDS: Final = 0.5
# Video, 3D and PDF jobs run their decoders in child processes, each call under the same
# wall-clock limit (a probe, up to a few poster tries, the web encode, the HLS encode), so
# their job's own limit is a backstop this many times longer, for a hang between calls.
NESTED_STEPS: Final = 8
# How libraries word a failed allocation (libvips, libjpeg, libpng/libspng, libwebp, libheif,
# libtiff, strerror(ENOMEM)): under the worker's memory cap that is the cap, not bad data.
_OUT_OF_MEMORY = re.compile(
    r"out of memory|insufficient memory|cannot allocate memory|failed to allocate"
    r"|memory allocation",
    re.IGNORECASE,
)


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
    # The file's identity when it was hashed, if it had been still long enough to vouch for it.
    identity: FileIdentity | None = None


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
    import PIL
    import pyvips

    # Every type's variants are images: libvips makes them, Pillow encodes JPEG and WebP.
    versions = {
        "libvips": ".".join(str(pyvips.version(i)) for i in range(3)),
        "pillow": PIL.__version__,
    }
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
    """The job's bytes; a file that changed since it was hashed is refused.

    A file whose identity is the one taken when it was hashed, both before and after this
    read, had no write in between: its hash is not taken again.
    """
    if job.data is not None:
        return job.data
    assert job.path is not None
    path = Path(job.path)
    untouched = job.identity is not None and file_identity(path) == job.identity
    data = path.read_bytes()
    if untouched and file_identity(path) == job.identity:
        return data
    if hashlib.sha256(data).hexdigest() != job.sha256:
        raise SourceChangedError("the file changed while it was being ingested")
    return data


def _out_of_memory(error: MediaError) -> bool:
    """Whether a library could not allocate, which it reports as damaged data or a failure.

    Under the worker's memory cap that is the cap speaking, not the file.
    """
    if isinstance(error, ValidationError) and error.code != "corrupt":
        return False
    return _OUT_OF_MEMORY.search(str(error)) is not None


def _reason(error: MediaError | SourceChangedError | OSError) -> tuple[str, str]:
    """The machine-readable reason an asset failed, whichever process read it."""
    if isinstance(error, MediaError) and _out_of_memory(error):
        return "out_of_memory", str(error)
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
    except MemoryError:
        code, message = "out_of_memory", "the decoder went over the worker's memory limit"
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


@dataclass(frozen=True)
class EarlyRender:
    """An image rendered before its run registered it, and the content it was made from."""

    sha256: str
    media_format: str
    outcome: RenderOutcome


def render_ahead(path: str, recipe: Recipe) -> EarlyRender | None:
    """Runs in a worker: render an image file a run is about to ask for; ``None`` otherwise.

    The result carries the SHA-256 of the bytes it was made from, so a run uses it only
    for a job with that very content (see ``PixelPool.render``). Files that are not
    images, too large, unreadable or fail to render are left to the run itself.
    """
    cap = recipe.image_limits.max_bytes
    try:
        with open(path, "rb") as file:
            data = file.read(cap + 1)  # bounded even if the file grows while it is read
        if len(data) > cap:
            return None
        sniffed = sniff(data[:SNIFF_BYTES], size=len(data))
    except (OSError, ValidationError):
        return None
    if sniffed.kind != "image":
        return None
    sha256 = hashlib.sha256(data).hexdigest()
    outcome = render_job(RenderJob(0, sha256, "image", sniffed.format, recipe, data=data))
    return EarlyRender(sha256, sniffed.format, outcome) if outcome.rendition is not None else None


def _early_outcome(future: Future[EarlyRender | None], job: RenderJob) -> RenderOutcome | None:
    """The early render's outcome for ``job`` if it was made from the job's very content."""
    if not future.done():  # stranded by a broken pool
        future.cancel()
        return None
    try:
        early = future.result()
    except Exception:  # timed out, killed, cancelled, a broken pool: the job renders itself
        return None
    if early is None or (early.sha256, early.media_format) != (job.sha256, job.media_format):
        return None
    return replace(early.outcome, blob_id=job.blob_id)


def configure_worker(threads: int, memory_bytes: int | None = None) -> None:
    """Set up libvips in a pixel worker: ``threads`` per job, no operation cache.

    With ``memory_bytes`` the worker (and every decoder process it starts, which inherit
    it) gets that cap on its data memory, and no core dumps of untrusted bytes. RLIMIT_DATA
    rather than RLIMIT_AS: it counts what is allocated (heap, anonymous maps, thread
    stacks), not address space merely reserved, which grows with libvips' threads and
    malloc's arenas while using nothing. An allocation past the cap fails inside the
    library (``MemoryError``, libvips' "out of memory") instead of the kernel's OOM killer
    picking a process of the machine.
    """
    # Imported here so the parent never configures libvips for its own process.
    import pyvips

    pyvips.concurrency_set(threads)
    pyvips.cache_set_max(0)
    if memory_bytes is not None:
        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        cap = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def prime_worker() -> int:
    """Load the image renderer and set up its codecs in this worker, with a tiny render.

    A fresh worker's first image otherwise pays for the renderer's imports and the
    encoders' set-up on top of its own work (a first 12 MP JPEG took 0.4 s instead of
    0.25 s here); primed while the run is still starting, the first asset renders at full
    speed. Returns the worker's pid.
    """
    import pyvips

    from mediamill.media.images import render_image
    from mediamill.media.limits import ImageLimits
    from mediamill.media.specs import DEFAULT_IMAGE_SPECS

    sample = pyvips.Image.black(PRIMING_SIDE, PRIMING_SIDE, bands=3).jpegsave_buffer()
    render_image(sample, DEFAULT_IMAGE_SPECS, ImageLimits())
    return os.getpid()


@dataclass(frozen=True)
class PixelLimits:
    """How long one job may run and how much memory a pixel worker may hold.

    The defaults are those of ``Settings`` (``decode_timeout_seconds``,
    ``decode_memory_mb``), for callers that build a pool without settings.
    """

    seconds: float = 300.0
    memory_bytes: int | None = 3072 * MIB

    def __post_init__(self) -> None:
        if self.seconds <= 0 or (self.memory_bytes is not None and self.memory_bytes <= 0):
            raise ValueError("pixel limits must be positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> PixelLimits:
        """The decode limits a deployment configured."""
        return cls(settings.decode_timeout_seconds, settings.decode_memory_mb * MIB)

    def seconds_for(self, media_type: str) -> float:
        """An image decodes in the worker itself; other types only start their decoders."""
        return self.seconds if media_type == "image" else self.seconds * NESTED_STEPS


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


JobRunner = Callable[[RenderJob], RenderOutcome]


def _death(exitcode: int | None) -> str:
    """How a worker ended, for the failure's message: its signal or its exit code."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"signal {-exitcode}, {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"


@dataclass(frozen=True)
class _Scheduled:
    """A job in flight, the pebble pool it went to, and whether it was already resent."""

    job: RenderJob
    pool: ProcessPool
    resent: bool = False
    # An early render (``render_ahead``) standing in for the job, used if its content matches.
    early: bool = False


class PixelPool:
    """A process pool sized to the cores, started once per flow run.

    Each job runs under ``limits``: past ``seconds`` its worker is stopped and the job
    fails as ``timed_out``; a worker that dies on a job (a segfault, an abort, a kill)
    fails that job as ``decoder_crashed``, naming the signal or exit code; an allocation
    past ``memory_bytes`` fails it as ``out_of_memory``. These are final: the same bytes
    would do the same again. Pebble replaces only the dead worker, so the other jobs in
    flight finish normally. A worker lost while it held no job breaks pebble's pool; the
    pool is then replaced and the jobs that had not started are sent once more, and fail as
    ``worker_crashed`` (retried by the next run) only if that happens again.
    """

    def __init__(self, workers: int, limits: PixelLimits | None = None) -> None:
        self.workers = max(1, workers)
        self.limits = limits or PixelLimits()
        self._threads = max(1, (os.cpu_count() or 1) // self.workers)
        self._lock = threading.Lock()
        self._closed = False
        self._pool = self._new_pool()
        self._primed: ProcessPool | None = None
        # Early renders by file path, with the recipe they were made with (``render_ahead``).
        self._ahead: dict[str, tuple[Future[EarlyRender | None], ProcessPool, Recipe]] = {}

    def _new_pool(self) -> ProcessPool:
        return ProcessPool(
            max_workers=self.workers,
            initializer=configure_worker,
            initargs=(self._threads, self.limits.memory_bytes),
            context=multiprocessing.get_context("spawn"),
        )

    def _replace(self, broken: ProcessPool) -> None:
        """Swap in a fresh pool for ``broken``, once however many jobs report it; under lock."""
        if self._closed:
            raise PoolUnavailableError("the pixel pool is closed")
        if self._pool is broken:
            broken.stop()  # type: ignore[no-untyped-call]
            broken.join()
            self._pool = self._new_pool()

    def _schedule(
        self, run: JobRunner, job: RenderJob, *, resent: bool = False
    ) -> tuple[Future[RenderOutcome], _Scheduled]:
        timeout = self.limits.seconds_for(job.media_type)
        with self._lock:
            try:
                future = self._pool.schedule(run, args=(job,), timeout=timeout)
            except RuntimeError:  # pebble's pool broke since the last job was sent
                self._replace(self._pool)
                future = self._pool.schedule(run, args=(job,), timeout=timeout)
            return future, _Scheduled(job, self._pool, resent)

    def warm_up(self) -> None:
        """Start and prime the workers now, while the run is still reading sources.

        One priming job per worker, once per pool: a worker picks up a job as soon as it
        is up, so each of them usually primes itself; one left unprimed only renders its
        first asset a little slower.
        """
        with self._lock:
            if self._primed is self._pool:
                return
            try:
                self._schedule_priming()
            except RuntimeError:
                self._replace(self._pool)
                self._schedule_priming()
            self._primed = self._pool

    def _schedule_priming(self) -> None:
        for _ in range(self.workers):
            self._pool.schedule(prime_worker, timeout=self.limits.seconds)

    def render_ahead(self, paths: Sequence[Path], recipe: Recipe) -> None:
        """Start rendering these image files now, before a run registers them.

        For a command that knows which files its run will render first: the workers make
        them while the command is still loading. A job of the run for one of these paths
        takes the early result if it was made from the job's content with the job's recipe,
        and renders as usual otherwise.
        """
        with self._lock:
            for path in paths:
                key = str(path)
                if key in self._ahead:
                    continue
                try:
                    future = self._pool.schedule(
                        render_ahead, args=(key, recipe), timeout=self.limits.seconds
                    )
                except RuntimeError:  # a broken pool: the run will render the file itself
                    return
                self._ahead[key] = (future, self._pool, recipe)

    def _claim_early(self, job: RenderJob) -> tuple[Future[RenderOutcome], _Scheduled] | None:
        """The early render of the job's file, if one was started with the job's recipe."""
        if job.path is None or job.only is not None or job.media_type != "image":
            return None
        with self._lock:
            found = self._ahead.pop(job.path, None)
        if found is None:
            return None
        future, pool, recipe = found
        if recipe != job.recipe:
            return None  # left to finish unseen: see ``render`` on why nothing is cancelled
        return cast("Future[RenderOutcome]", future), _Scheduled(job, pool, early=True)

    def render(
        self, jobs: Sequence[RenderJob], run: JobRunner = render_job
    ) -> Iterator[RenderOutcome]:
        """Outcomes as they complete; a job that hangs, crashes or balloons fails alone.

        ``run`` is what a worker calls with each job, ``render_job`` but for tests that need
        a job to misbehave on purpose; it must be importable by name from a fresh process.
        Jobs still in flight when the caller stops iterating run to their end unseen, never
        cancelled: pebble stops the worker of a cancelled job it has started, and a worker
        stopped just as it took its next job leaves that job unsettled until its time limit.
        """
        running: dict[Future[RenderOutcome], _Scheduled] = {}
        for job in jobs:
            claimed = self._claim_early(job) if run is render_job else None
            future, entry = claimed or self._schedule(run, job)
            running[future] = entry
        while running:
            done, _ = wait(running, LIVENESS_POLL_SECONDS, return_when=FIRST_COMPLETED)
            for future in done | self._stranded(running):
                scheduled = running.pop(future)
                if scheduled.early:
                    early = cast("Future[EarlyRender | None]", future)
                    outcome = _early_outcome(early, scheduled.job)
                    if outcome is None:
                        again, entry = self._schedule(run, scheduled.job)
                        running[again] = entry
                    else:
                        yield outcome
                    continue
                outcome = self._settle(future, scheduled)
                if outcome is None:
                    again, entry = self._schedule(run, scheduled.job, resent=True)
                    running[again] = entry
                else:
                    yield outcome

    @staticmethod
    def _stranded(running: dict[Future[RenderOutcome], _Scheduled]) -> set[Future[RenderOutcome]]:
        """Jobs whose pool broke or was stopped without settling them.

        Pebble settles every job it had registered when its pool breaks, but a job still
        on its way to the pool's scheduler thread at that moment is never run or settled.
        """
        pools = {entry.pool for entry in running.values()}
        broken = {pool for pool in pools if not pool.active}
        if not broken:
            return set()
        return {f for f, entry in running.items() if entry.pool in broken and not f.done()}

    def _settle(self, future: Future[RenderOutcome], scheduled: _Scheduled) -> RenderOutcome | None:
        """The job's outcome, its limit's failure, or ``None`` when it should go once more."""
        job = scheduled.job
        if not future.done():  # stranded by a broken pool: as if pebble had said so
            future.cancel()
            return self._after_broken_pool(scheduled)
        try:
            return future.result()
        except JobTimeoutError:
            seconds = self.limits.seconds_for(job.media_type)
            message = f"decoding took longer than {seconds:g} s; its worker was stopped"
            return RenderOutcome(job.blob_id, None, "timed_out", message, seconds)
        except ProcessExpired as error:
            message = f"the decoder process died ({_death(error.exitcode)})"
            return RenderOutcome(job.blob_id, None, "decoder_crashed", message, 0.0)
        except MemoryError:
            cap = self.limits.memory_bytes
            limit = f" of {cap // MIB} MiB" if cap is not None else ""
            message = f"the decoder went over the worker's memory limit{limit}"
            return RenderOutcome(job.blob_id, None, "out_of_memory", message, 0.0)
        except BrokenProcessPool:
            return self._after_broken_pool(scheduled)

    def _after_broken_pool(self, scheduled: _Scheduled) -> RenderOutcome | None:
        """Replace the broken pool; ``None`` to send the job once more, else its failure."""
        with self._lock:
            self._replace(scheduled.pool)
        if not scheduled.resent:
            return None
        message = "the pixel workers died before the job could run"
        return RenderOutcome(scheduled.job.blob_id, None, "worker_crashed", message, 0.0)

    def close(self) -> None:
        """Stop the workers now; a job still in flight is abandoned.

        A run closes its pool once it wants no more outcomes, so what is left is priming,
        unclaimed early renders, or the jobs of tasks still running after their run failed.
        Their ``render`` calls then end with ``PoolUnavailableError``. The lock is released
        first: stopping waits for pebble's threads, and a ``render`` may need the lock.
        """
        with self._lock:
            self._closed = True
            self._ahead.clear()
            pool = self._pool
        pool.stop()  # type: ignore[no-untyped-call]
        pool.join()

    def __enter__(self) -> PixelPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def missing_variants(
    recipe: Recipe, media_type: str, have: set[VariantId], has_alpha: bool
) -> frozenset[VariantId]:
    """The (name, format, version) the current recipe wants and the blob lacks."""
    return recipe.planned_variants(media_type, has_alpha) - frozenset(have)
