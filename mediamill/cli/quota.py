"""``usage`` and ``quota set``: what a workspace stores, against its quota."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.table import Table

from mediamill.cli.common import console, fail, load_settings, open_catalog, print_json
from mediamill.cli.options import JsonOption, WorkspaceOption


def usage_command(
    workspace: WorkspaceOption,
    by_user: Annotated[bool, typer.Option("--by-user", help="Also one row per uploader.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Bytes and media a workspace stores, logical and after dedupe, against its quota."""
    from mediamill.catalog.quota import quota_state
    from mediamill.catalog.usage import as_records, usage

    settings = load_settings()
    with open_catalog(settings) as session:
        found = as_records(usage(session, workspace))
        users = as_records(usage(session, workspace, by_user=True)) if by_user else None
    if not found:
        raise fail(f"no workspace {workspace!r}", code=1)
    summary = found[0]
    summary["quota_state"] = quota_state(summary["physical_bytes"], summary["quota_bytes"]).value
    if users is not None:
        summary["users"] = users
    if as_json:
        print_json(summary)
        return
    console.print(_usage_table(summary))
    if users is not None:
        console.print(_users_table(users))


def _usage_table(summary: dict[str, Any]) -> Table:
    from mediamill.catalog.quota import format_size

    quota = summary["quota_bytes"]
    used = summary["physical_bytes"]
    share = f" ({100 * used / quota:.1f}% used)" if quota else ""
    table = Table(title=f"Usage of {summary['workspace']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("quota", f"{format_size(quota)}{share}: {summary['quota_state']}")
    for label, prefix in (("physical (deduped)", "physical"), ("logical (as owned)", "logical")):
        originals = format_size(summary[f"{prefix}_original_bytes"])
        variants = format_size(summary[f"{prefix}_variant_bytes"])
        total = format_size(summary[f"{prefix}_bytes"])
        table.add_row(label, f"{total} = {originals} originals + {variants} variants")
    table.add_row("media", str(summary["media"]))
    for column in ("images", "videos", "models", "documents"):
        table.add_row(f"  {column}", str(summary[column]))
    table.add_row("blobs", str(summary["blobs"]))
    table.add_row("failed uploads", str(summary["failed"]))
    return table


def _users_table(users: Sequence[dict[str, Any]]) -> Table:
    from mediamill.catalog.quota import format_size

    table = Table(title="Usage by uploader")
    for column in ("user", "media", "blobs", "logical", "physical"):
        table.add_column(column, justify="left" if column == "user" else "right")
    for user in users:
        table.add_row(
            user["user"] or "(unknown)",
            str(user["media"]),
            str(user["blobs"]),
            format_size(user["logical_bytes"]),
            format_size(user["physical_bytes"]),
        )
    return table


def quota_set(
    workspace: Annotated[str, typer.Argument(help="Workspace slug.")],
    size: Annotated[str, typer.Argument(help="Bytes, a size such as 5GB or 500MiB, or none.")],
) -> None:
    """Set a workspace's quota (`none` lifts it); uploads that would not fit then fail."""
    from mediamill.catalog.quota import format_size, parse_size, set_quota

    settings = load_settings()
    try:
        quota = parse_size(size)
    except ValueError as error:
        raise fail(str(error)) from error
    with open_catalog(settings, migrate_embedded=True) as session:
        set_quota(session, workspace, quota)
        session.commit()
    exact = f" ({quota:,} bytes)" if quota is not None else ""
    console.print(f"quota of {workspace}: {format_size(quota)}{exact}")
