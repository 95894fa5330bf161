"""Per-workspace concurrency, so one workspace's burst cannot take every worker from the rest.

Each ingest run holds one slot of a Prefect global concurrency limit named after its
workspace while it works. Runs of a busy workspace queue on their own limit, and runs of
other workspaces go ahead on any free worker. With ``MEDIAMILL_WORKSPACE_CONCURRENCY=N``
the limit is created with N slots the first time a workspace runs. An operator can also set
a workspace's limit by hand (``prefect gcl create mediamill-workspace-acme --limit 8``) to
raise or lower it; an existing limit is never overwritten.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from mediamill.settings import Settings

LIMIT_PREFIX = "mediamill-workspace-"

# Limits this process has seen exist; a limit is only ever created, never deleted, here.
_known_limits: set[str] = set()
_known_lock = threading.Lock()


def workspace_limit_name(workspace: str) -> str:
    """The global concurrency limit that bounds one workspace's ingest runs."""
    return f"{LIMIT_PREFIX}{workspace}"


def ensure_workspace_limit(workspace: str, slots: int) -> str:
    """Create the workspace's limit with ``slots`` unless it exists; return its name."""
    name = workspace_limit_name(workspace)
    with _known_lock:
        if name in _known_limits:
            return name
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            # Two runs may both find it missing: the second create loses, harmlessly.
            with contextlib.suppress(ObjectAlreadyExists):
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=slots)
                )
    with _known_lock:
        _known_limits.add(name)
    return name


def _limit_exists(name: str) -> bool:
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            return False
    return True


@contextlib.contextmanager
def workspace_slot(settings: Settings, workspace: str) -> Iterator[None]:
    """Hold one of the workspace's slots for the duration of the block.

    Without a configured default, a limit an operator created by hand still applies; with
    neither, the block runs unbounded (asked each run, so a limit added later takes hold).
    """
    if settings.workspace_concurrency > 0:
        name = ensure_workspace_limit(workspace, settings.workspace_concurrency)
    else:
        name = workspace_limit_name(workspace)
        if not _limit_exists(name):
            yield
            return
    with concurrency(name, occupy=1, strict=True):
        yield
