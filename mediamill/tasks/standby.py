"""Pixel workers a command starts before it loads Prefect, for the run it then starts.

A CLI backfill spends over a second loading Prefect and the flow stack on one core while
the others sit idle. When the run will render, the command starts its pixel pool first
(``standby``): the workers spawn, load libvips, prime their codecs and render the files
the run will ask for first on those idle cores meanwhile, and the run's pipeline context
takes them over (``take``) instead of starting a pool of its own. The run uses an early
render only for a job with the same content and recipe (``PixelPool.render_ahead``). A
pool nobody took is closed when the command's block ends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.orm import Session

from mediamill.catalog import repository as repo
from mediamill.tasks.pixels import PixelLimits, PixelPool
from mediamill.tasks.recipes import Recipe
from mediamill.tasks.sources import Source

# Files named per worker for early rendering: the run's first three batches (1 + 2 + 4 per
# worker). Two left the workers idle for 0.3 to 0.5 s while the run registered its third.
AHEAD_PER_WORKER = 7

_lock = threading.Lock()
_waiting: PixelPool | None = None


def expects_pixel_work(
    session: Session, workspace_id: int | None, sources: Sequence[Source]
) -> bool:
    """False only for a rerun whose every source already finished: no worker to start.

    ``workspace_id`` is ``None`` for a workspace that does not exist yet.
    """
    return _unfinished(session, workspace_id, sources) > 0


def first_to_render(
    session: Session, workspace_id: int | None, sources: Sequence[Source], workers: int
) -> list[Path] | None:
    """The files a run over ``sources`` renders first, or ``None`` if it renders nothing.

    A run renders in source order, one file per worker first, then batches that double
    (see ``flows.ingest.batch_bounds``): its first three batches are named, for the workers
    to start on while the command loads. A rerun names none (its first files may be done).
    """
    unfinished = _unfinished(session, workspace_id, sources)
    if not unfinished:
        return None
    if unfinished < len(sources):
        return []
    return [s.path for s in sources[: AHEAD_PER_WORKER * workers] if s.path is not None]


def _unfinished(session: Session, workspace_id: int | None, sources: Sequence[Source]) -> int:
    """How many sources no earlier run finished; a source without a backfill key never is."""
    keys = {source.source_key for source in sources if source.source_key}
    if workspace_id is None or not keys:
        return len(sources)
    return len(sources) - repo.count_finished_sources(session, workspace_id, keys)


@contextmanager
def standby(
    workers: int, limits: PixelLimits, recipe: Recipe | None = None, ahead: Sequence[Path] = ()
) -> Iterator[None]:
    """Start and prime a pool of ``workers`` now, for a run of this process to take.

    With ``recipe``, the workers also render the image files ``ahead`` at once.
    """
    global _waiting
    pool = PixelPool(workers, limits=limits)
    pool.warm_up()
    if recipe is not None and ahead:
        pool.render_ahead(ahead, recipe)
    with _lock:
        _waiting = pool
    try:
        yield
    finally:
        with _lock:
            unused = _waiting is pool
            if unused:
                _waiting = None
        if unused:
            pool.close()


def take(workers: int, limits: PixelLimits) -> PixelPool | None:
    """The waiting pool if it has this size and these limits, else ``None``.

    A run that asks for another size or other limits starts its own pool; the waiting
    one is then closed by ``standby`` when the command's block ends.
    """
    global _waiting
    with _lock:
        pool = _waiting
        if pool is None or pool.workers != max(1, workers) or pool.limits != limits:
            return None
        _waiting = None
        return pool
