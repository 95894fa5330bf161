"""``mediamill config check``: is every setting usable, not just well formed?"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from mediamill.settings import Settings


@dataclass(frozen=True)
class CheckRow:
    """One line of the report: a setting, its value, and what checking it found."""

    name: str
    value: str
    checked: bool = False
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _check_home(settings: Settings) -> CheckRow:
    try:
        settings.home.mkdir(parents=True, exist_ok=True)
        probe = settings.home / ".write-probe"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as error:
        return CheckRow("MEDIAMILL_HOME", str(settings.home), True, f"not writable: {error}")
    return CheckRow("MEDIAMILL_HOME", str(settings.home), True)


def _check_catalog(settings: Settings) -> CheckRow:
    from sqlalchemy.exc import SQLAlchemyError

    from mediamill.catalog import migrate
    from mediamill.catalog.engine import make_engine

    url = settings.resolved_database_url
    shown = _without_password(url)
    try:
        engine = make_engine(url)
    except (SQLAlchemyError, ImportError, ValueError) as error:
        problem = _masked(f"unusable: {error}", url)
        return CheckRow("MEDIAMILL_DATABASE_URL", shown, True, problem)
    try:
        current, head = migrate.current_revision(engine), migrate.head_revision()
    except (SQLAlchemyError, OSError) as error:
        problem = _masked(f"cannot connect: {error}", url)
        return CheckRow("MEDIAMILL_DATABASE_URL", shown, True, problem)
    finally:
        engine.dispose()
    if current != head:
        problem = f"migrations at {current or 'none'}, head is {head}: run `mediamill db upgrade`"
        return CheckRow("MEDIAMILL_DATABASE_URL", shown, True, problem)
    return CheckRow("MEDIAMILL_DATABASE_URL", f"{shown} (revision {current})", True)


def _without_password(url: str) -> str:
    """The URL as the report shows it: the password replaced by ``***``."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        # Unparseable (a port that is no number...): anything after the scheme may be secret.
        return f"{url.partition(':')[0]}://*** (not a valid URL)"


def _masked(text: str, url: str) -> str:
    """``text`` with the URL's password masked: driver errors may quote what they were given."""
    from urllib.parse import quote

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        password = make_url(url).password
    except (ArgumentError, ValueError):
        password = None
    if not password:
        return text
    for spelling in {str(password), quote(str(password), safe="")}:
        text = text.replace(spelling, "***")
    return text


def _check_storage(settings: Settings) -> CheckRow:
    from mediamill.storage.errors import StorageError
    from mediamill.storage.factory import open_store

    url = settings.resolved_storage_url
    try:
        open_store(settings).check_writable()
    except StorageError as error:
        return CheckRow("MEDIAMILL_STORAGE_URL", url, True, str(error))
    return CheckRow("MEDIAMILL_STORAGE_URL", url, True)


def run_checks(settings: Settings) -> Iterator[CheckRow]:
    """Every setting with its value; home, catalog and store are also exercised."""
    yield _check_home(settings)
    yield _check_catalog(settings)
    yield _check_storage(settings)
    options = ", ".join(sorted(settings.storage_options)) or "(none)"
    yield CheckRow("MEDIAMILL_STORAGE_OPTIONS", f"keys: {options}")
    yield CheckRow(
        "MEDIAMILL_CDN_BASE_URL", settings.cdn_base_url or "(none: the store's own URLs)", True
    )
    yield CheckRow("MEDIAMILL_MAX_UPLOAD_BYTES", f"{settings.max_upload_bytes:,}")
    yield CheckRow("MEDIAMILL_MAX_IMAGE_PIXELS", f"{settings.max_image_pixels:,}")
    yield CheckRow("MEDIAMILL_MAX_IMAGE_SIDE", f"{settings.max_image_side:,}")
    yield CheckRow("MEDIAMILL_MAX_ANIMATION_PIXELS", f"{settings.max_animation_pixels:,}")
    yield CheckRow("MEDIAMILL_WORKERS", str(settings.workers))
    yield CheckRow("MEDIAMILL_BATCH_SIZE", str(settings.batch_size))
    api = os.environ.get("PREFECT_API_URL")
    yield CheckRow(
        "PREFECT_API_URL",
        api or f"(unset: a local server on port {settings.prefect_port}, started on demand)",
    )
