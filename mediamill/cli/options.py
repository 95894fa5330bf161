"""Options and arguments that several commands take, so they read the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

WorkspaceOption = Annotated[str, typer.Option("--workspace", "-w", help="Workspace slug.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
MediaIdArgument = Annotated[str, typer.Argument(help="A media id, as printed by ingest or list.")]
ScopeOption = Annotated[
    str | None, typer.Option("--workspace", "-w", help="Only act in this workspace.")
]
ActorOption = Annotated[
    str | None, typer.Option("--user", "-u", help="Who acts, for the audit trail.")
]
