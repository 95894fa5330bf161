"""A run's context refuses a catalog whose schema is not the code's, with the fix in the message."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediamill.catalog import migrate
from mediamill.catalog.engine import make_engine
from mediamill.catalog.errors import CatalogNotMigrated
from mediamill.settings import get_settings
from mediamill.tasks.context import PipelineContext


def test_a_catalog_nobody_upgraded_is_refused_before_any_query(home: Path) -> None:
    with pytest.raises(CatalogNotMigrated, match="mediamill db upgrade"):
        PipelineContext.open(get_settings(), workers=1)


def test_an_upgraded_catalog_opens(home: Path) -> None:
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    migrate.upgrade(engine)
    engine.dispose()
    ctx = PipelineContext.open(settings, workers=1)
    try:
        assert ctx.recipe.image_specs
    finally:
        ctx.close()
