"""Schema migrations, driven from Python: what ``mediamill db upgrade`` runs.

Alembic is configured in code, with the migration scripts found as package data of
``mediamill.catalog``, so this works from any working directory and from an installed wheel
with no ``alembic.ini``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from mediamill.catalog.engine import make_engine
from mediamill.catalog.errors import CatalogError, CatalogNotMigrated

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

__all__ = [
    "current_revision",
    "downgrade",
    "head_revision",
    "is_current",
    "require_current",
    "upgrade",
]

# "package:directory" is resolved by alembic through importlib.resources.
SCRIPT_LOCATION = "mediamill.catalog:migrations"
# The newest revision shipped, spelled out so that checking a catalog (every CLI command
# does) needs one query and no Alembic import; a test keeps it equal to Alembic's head.
HEAD_REVISION = "0005_delivery_retention"

EngineOrURL = Engine | str | URL


def upgrade(engine_or_url: EngineOrURL, revision: str = "head") -> None:
    """Migrate the catalog up to ``revision`` (default: the newest)."""
    with _connect(engine_or_url) as connection:
        from alembic import command

        command.upgrade(_config(connection), revision)


def downgrade(engine_or_url: EngineOrURL, revision: str) -> None:
    """Migrate the catalog down to ``revision``; ``"base"`` drops every table."""
    with _connect(engine_or_url) as connection:
        from alembic import command

        command.downgrade(_config(connection), revision)


def current_revision(engine_or_url: EngineOrURL) -> str | None:
    """The revision the database is at; ``None`` for a database never migrated."""
    with _connect(engine_or_url) as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        revisions = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
        return next((str(row[0]) for row in revisions), None)


def head_revision() -> str:
    """The newest revision this version of mediamill ships."""
    head = _scripts().get_current_head()
    if head is None:
        raise CatalogError(f"no migrations found in {SCRIPT_LOCATION}")
    return head


def is_current(engine_or_url: EngineOrURL) -> bool:
    """Whether the database schema is exactly at the shipped head revision."""
    return current_revision(engine_or_url) == HEAD_REVISION


def require_current(engine_or_url: EngineOrURL) -> None:
    """Refuse to work on a database whose schema does not match the code.

    Raises `CatalogNotMigrated` when the database is behind (or empty), and `CatalogError`
    when it was migrated by a newer mediamill than this one.
    """
    current = current_revision(engine_or_url)
    head = head_revision()
    if current == head:
        return
    known = {script.revision for script in _scripts().walk_revisions()}
    if current is not None and current not in known:
        raise CatalogError(
            f"the catalog schema is at revision {current!r}, which this mediamill does not "
            f"know (it expects {head!r}): upgrade mediamill"
        )
    where = "empty" if current is None else f"at revision {current!r}"
    raise CatalogNotMigrated(
        f"the catalog schema is {where}, but this mediamill expects {head!r}: "
        "run `mediamill db upgrade`"
    )


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        # Read by migrations/env.py, which then uses this connection instead of its own.
        config.attributes["connection"] = connection
    return config


def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


@contextmanager
def _connect(engine_or_url: EngineOrURL) -> Iterator[Connection]:
    if isinstance(engine_or_url, Engine):
        with engine_or_url.connect() as connection:
            yield connection
        return
    # A URL: a short-lived engine of our own, disposed so no pooled connection (and, on
    # SQLite, no open file) outlives the call.
    engine = make_engine(engine_or_url)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()
