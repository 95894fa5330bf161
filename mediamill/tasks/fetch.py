"""Bring an API upload's bytes to a local staging file: from the store's incoming area or a URL.

A refused source (forbidden address, missing object, too large) is an answer, not an
error: it comes back as a problem the pipeline records as the media's failure. Only
transient trouble (timeouts, 5xx, a storage blip) raises, so Prefect retries it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from mediamill.net import FetchPolicy, FetchRefused, TransientFetchError, fetch_to_file
from mediamill.settings import Settings
from mediamill.storage.errors import ObjectNotFound, TransientStorageError
from mediamill.storage.factory import open_store
from mediamill.storage.incoming import filename_hint, incoming_workspace


@dataclass(frozen=True)
class Fetched:
    """Where the bytes landed, or why there are none."""

    filename_hint: str | None
    problem_code: str | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem_code is None


class _RetryableError(Exception):
    """A transient failure Prefect should retry."""


def fetch_policy(settings: Settings) -> FetchPolicy:
    """The URL download limits the settings ask for."""
    return FetchPolicy(
        max_bytes=settings.max_upload_bytes,
        timeout_seconds=settings.fetch_timeout_seconds,
        max_redirects=settings.fetch_max_redirects,
        allowed_networks=tuple(settings.fetch_allow_networks),
    )


def fetch_url(settings: Settings, url: str, destination: Path) -> Fetched:
    """Download ``url`` under the SSRF policy; transient failures raise for a retry."""
    try:
        result = fetch_to_file(url, destination, fetch_policy(settings))
    except FetchRefused as refused:
        return Fetched(None, refused.code, str(refused))
    except TransientFetchError as error:
        raise _RetryableError(str(error)) from error
    return Fetched(result.filename_hint)


def fetch_key(settings: Settings, workspace: str, key: str, destination: Path) -> Fetched:
    """Copy an object of the workspace's incoming area to ``destination``."""
    if incoming_workspace(key) != workspace:
        return Fetched(None, "forbidden_key", f"{key!r} is not in this workspace's upload area")
    store = open_store(settings)
    try:
        if store.head(key).size > settings.max_upload_bytes:
            limit = settings.max_upload_bytes
            return Fetched(None, "too_large", f"upload is larger than the {limit:,}-byte limit")
        destination.write_bytes(store.get(key))
    except ObjectNotFound:
        return Fetched(None, "missing_upload", f"nothing was uploaded to {key!r}")
    except TransientStorageError as error:
        raise _RetryableError(str(error)) from error
    return Fetched(filename_hint(key))


def _transient(task: object, task_run: object, state: object) -> bool:
    try:
        state.result()  # type: ignore[attr-defined]
    except _RetryableError:
        return True
    except Exception:
        return False
    return False


@task(
    name="fetch-upload",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=3,
    retry_delay_seconds=[1, 4, 16],
    retry_jitter_factor=0.5,
    retry_condition_fn=_transient,
)
def fetch_upload(
    settings: Settings, workspace: str, key: str | None, url: str | None, destination: Path
) -> Fetched:
    """The upload's bytes at ``destination``: from the store when ``key``, else from ``url``."""
    if key is not None:
        return fetch_key(settings, workspace, key, destination)
    if url is not None:
        return fetch_url(settings, url, destination)
    return Fetched(None, "invalid_source", "an upload needs a key or a URL")
