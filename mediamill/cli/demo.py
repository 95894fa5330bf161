"""``demo``: sample media through a real backfill, ending in an HTML gallery."""

from __future__ import annotations

from typing import Annotated

import typer

from mediamill.cli.common import console, load_settings, open_catalog
from mediamill.cli.ingest import run_backfill


def demo(
    photos: Annotated[int, typer.Option(min=1, max=500, help="Generated photos.")] = 12,
    workspace: Annotated[str, typer.Option("--workspace", "-w")] = "demo",
) -> None:
    """Generate sample media, backfill them, print the summary and write an HTML gallery."""
    from mediamill.demo import run_demo

    settings = load_settings()
    with open_catalog(settings, migrate_embedded=True):
        pass
    run_demo(settings, console, photos=photos, workspace=workspace, backfill=run_backfill)
