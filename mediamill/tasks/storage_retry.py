"""Retry policies of store calls made inside tasks: per call, backoff with full jitter.

A failed store call is retried on its own rather than failing its task: puts are
idempotent (keys are content-addressed, objects immutable), so a retry redoes only the
I/O that failed, never a batch's pixel work.

`retry_transient_storage` is for calls made outside any catalog transaction (publishing
objects, listing for a sweep's plan) and sized for a throttling bucket, not a blip: at a
30% failure rate six attempts give up on 0.07% of calls, about one 12-image backfill in
fifteen (each image is eight objects, and an object that cannot be stored fails its
asset); ten attempts give up on 0.0006% of calls. Waits are drawn from
``[0, min(5 s, 0.1 s x 2^n)]`` (full jitter, so parallel writers do not retry in step), at
most ~21 s in all, and no call is retried after a minute.

`retry_transient_storage_briefly` is for calls made while a catalog transaction holds
locks (a sweep's re-check and delete): on SQLite that lock stops every writer, whose busy
timeout is 30 s. Six attempts, waits of at most a second, five seconds in all; a step that
still fails is skipped and the next sweep takes it again.

Each retry is logged to the Prefect run (to this module's logger outside a run), so the
UI shows a flaky store as warnings on the task that met it, even when every call ended
well.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from mediamill.storage.errors import TransientStorageError

P = ParamSpec("P")
R = TypeVar("R")

_fallback = logging.getLogger(__name__)


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The current run's logger, so the retry shows in the UI; ours outside a run.

    Prefect is imported only if something already did: a process that never loaded it
    (a notebook, a script calling the stages directly) has no run to log to.
    """
    if "prefect" not in sys.modules:
        return _fallback
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return _fallback


def _policy(
    attempts: int, longest_wait: float, seconds: float
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Retry on `TransientStorageError` only, logging each retry; re-raise the last error."""

    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        # The storage error names the action and the key ("put 'tenants/...': TimeoutError").
        _logger().warning(
            "storage retry %d/%d in %.2f s: %s", state.attempt_number, attempts - 1, wait, error
        )

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        policy = retry(
            retry=retry_if_exception_type(TransientStorageError),
            wait=wait_random_exponential(multiplier=0.1, max=longest_wait),
            stop=stop_after_attempt(attempts) | stop_after_delay(seconds),
            before_sleep=log_retry,
            reraise=True,
        )
        return policy(fn)

    return decorate


retry_transient_storage = _policy(attempts=10, longest_wait=5.0, seconds=60.0)
retry_transient_storage_briefly = _policy(attempts=6, longest_wait=1.0, seconds=5.0)
