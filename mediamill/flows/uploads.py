"""The ``ingest-upload`` flow: one API upload, from the store's incoming area or a URL.

The API has already answered the caller with a ``pending`` media id; this run fetches the
bytes (SSRF-safe for URLs), runs the pipeline, which adopts that row, and removes the
incoming object once the original is stored in its published place.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from mediamill.flows.ingest import run_sources
from mediamill.settings import Settings, get_settings
from mediamill.storage.factory import open_store
from mediamill.storage.incoming import incoming_workspace
from mediamill.tasks.fetch import Fetched, fetch_upload
from mediamill.tasks.filenames import display_filename
from mediamill.tasks.sources import EntityRef, Source

FETCH_FAILED = "fetch_failed"


@task(name="remove-incoming", cache_policy=NO_CACHE, persist_result=False, retries=2)
def remove_incoming(settings: Settings, key: str) -> int:
    """Delete the staged object once its bytes are ingested (or refused for good)."""
    return open_store(settings).delete_many([key])


def _fetch(
    settings: Settings, workspace: str, key: str | None, url: str | None, destination: Path
) -> Fetched:
    """The fetch task's answer; retries that ran out become the media's failure reason."""
    state = fetch_upload(settings, workspace, key, url, destination, return_state=True)
    if state.is_completed():
        return state.result()
    try:
        state.result()
    except Exception as error:
        return Fetched(None, FETCH_FAILED, f"could not fetch the upload: {error}")
    return Fetched(None, FETCH_FAILED, "could not fetch the upload")


@flow(name="ingest-upload")
def ingest_upload(
    workspace: str,
    media_id: str,
    key: str | None = None,
    url: str | None = None,
    filename: str | None = None,
    user: str | None = None,
    entity: str | None = None,
    alt: str | None = None,
) -> dict[str, object]:
    """Fetch one API upload and ingest it into the pending media ``media_id``."""
    settings = get_settings()
    settings.staging_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.staging_dir, prefix="upload-") as folder:
        destination = Path(folder) / "upload"
        fetched = _fetch(settings, workspace, key, url, destination)
        name = filename or fetched.filename_hint or "upload"
        source = Source(
            location=url if url is not None else f"upload:{display_filename(name)}",
            filename=name,
            path=destination if fetched.ok else None,
            entity=EntityRef.parse(entity) if entity else None,
            uploader=user,
            alt_text=alt,
            problem=fetched.problem,
            problem_code=fetched.problem_code,
            media_id=uuid.UUID(media_id),
        )
        summary = run_sources(settings, workspace, [source], batch_size=1, workers=1)
    if (
        key is not None
        and incoming_workspace(key) == workspace
        and fetched.problem_code != FETCH_FAILED
    ):
        remove_incoming(settings, key)
    return summary.as_dict()
