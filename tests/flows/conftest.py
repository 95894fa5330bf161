"""Flow tests share a migrated catalog on the test's own MEDIAMILL_HOME."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mediamill.catalog import migrate
from mediamill.catalog.engine import make_engine, make_session_factory
from mediamill.settings import get_settings


@pytest.fixture
def catalog(home: Path) -> Iterator[Any]:
    """A session factory over the migrated catalog the flows under test write to."""
    engine = make_engine(get_settings().resolved_database_url)
    migrate.upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()
