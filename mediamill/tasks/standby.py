"""Pixel workers a command starts before it loads Prefect, for the run it then starts.

A CLI backfill spends over a second loading Prefect and the flow stack on one core while
the others sit idle. When the run will render, the command starts its pixel pool first
(``standby``): the workers spawn, load libvips and prime their codecs on those idle cores
meanwhile, and the run's pipeline context takes them over (``take``) instead of starting
a pool of its own. A pool nobody took is closed when the command's block ends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy.orm import Session

from mediamill.catalog import repository as repo
from mediamill.tasks.pixels import PixelLimits, PixelPool
from mediamill.tasks.sources import Source

_lock = threading.Lock()
_waiting: PixelPool | None = None


def expects_pixel_work(
    session: Session, workspace_id: int | None, sources: Sequence[Source]
) -> bool:
    """False only for a rerun whose every source already finished: no worker to start.

    ``workspace_id`` is ``None`` for a workspace that does not exist yet.
    """
    if not sources:
        return False
    keys = {source.source_key for source in sources if source.source_key}
    if len(keys) < len(sources) or workspace_id is None:
        return True
    return repo.count_finished_sources(session, workspace_id, keys) < len(keys)


@contextmanager
def standby(workers: int, limits: PixelLimits) -> Iterator[None]:
    """Start and prime a pool of ``workers`` now, for a run of this process to take."""
    global _waiting
    pool = PixelPool(workers, limits=limits)
    pool.warm_up()
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
