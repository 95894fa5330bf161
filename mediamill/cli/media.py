"""``media list``, ``show``, ``delete`` and ``restore``: read and manage single media."""

from __future__ import annotations

import json
import uuid
from typing import Annotated

import typer
from rich.table import Table

from mediamill.cli.common import (
    console,
    fail,
    load_settings,
    media_table,
    media_uuid,
    open_catalog,
    print_json,
    refusals,
    scope_id,
    url_maker,
    writing,
)
from mediamill.cli.options import (
    ActorOption,
    JsonOption,
    MediaIdArgument,
    ScopeOption,
    WorkspaceOption,
)


def media_list(
    workspace: WorkspaceOption,
    media_type: Annotated[
        str | None, typer.Option("--type", "-t", help="image, video, model or document.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Recent media of a workspace, newest first."""
    from mediamill.catalog import repository as repo
    from mediamill.catalog.models import MediaType
    from mediamill.catalog.views import media_record

    settings = load_settings()
    try:
        wanted_type = MediaType(media_type) if media_type else None
    except ValueError as error:
        raise fail(f"unknown media type {media_type!r}") from error
    url_for = url_maker(settings)
    with open_catalog(settings) as session:
        found = repo.find_workspace(session, workspace)
        rows = (
            repo.recent_media(session, found.id, media_type=wanted_type, limit=limit)
            if found
            else []
        )
        records = [media_record(m, url_for) for m in rows]
    if as_json:
        print_json(records)
    else:
        console.print(media_table(records, f"Recent media in {workspace}"))


def media_show(
    media_id: Annotated[str, typer.Argument(help="A media id, as printed by ingest or list.")],
    workspace: Annotated[
        str | None, typer.Option("--workspace", "-w", help="Only look in this workspace.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """One media record with its variants and their URLs."""
    from mediamill.catalog import repository as repo
    from mediamill.catalog.views import media_record

    settings = load_settings()
    try:
        wanted = uuid.UUID(media_id)
    except ValueError as error:
        raise fail(f"{media_id!r} is not a media id") from error
    url_for = url_maker(settings)
    with open_catalog(settings) as session:
        scope = None
        if workspace is not None:
            found = repo.find_workspace(session, workspace)
            scope = found.id if found else -1
        media = repo.get_media(session, wanted, scope)
        record = media_record(media, url_for) if media else None
    if record is None:
        raise fail(f"no media {media_id}", code=1)
    if as_json:
        print_json(record)
        return
    console.print(media_table([record], f"Media {media_id}"))
    if record["metadata"]:
        metadata = Table(title="Metadata")
        metadata.add_column("key")
        metadata.add_column("value", overflow="fold")
        for key, value in record["metadata"].items():
            metadata.add_row(
                key, json.dumps(value) if isinstance(value, list | dict) else str(value)
            )
        console.print(metadata)
    variants = Table(title="Variants")
    for column in ("name", "format", "size", "dimensions", "url"):
        variants.add_column(column, overflow="fold")
    for variant in record["variants"]:
        variants.add_row(
            variant["name"],
            variant["format"],
            f"{variant['size']:,}",
            f"{variant['width']}x{variant['height']}" if variant["width"] else "",
            variant["url"],
        )
    console.print(variants)


def media_delete(
    media_id: MediaIdArgument,
    workspace: ScopeOption = None,
    user: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Soft-delete a media: hidden at once, restorable for MEDIAMILL_RETENTION_DAYS."""
    from datetime import timedelta

    from mediamill.catalog import lifecycle as life
    from mediamill.catalog.models import MediaStatus
    from mediamill.catalog.repository import utcnow
    from mediamill.catalog.views import media_record

    settings = load_settings()
    wanted = media_uuid(media_id)
    url_for = url_maker(settings)
    with refusals(), writing(settings) as session:
        media = life.lock_media(session, wanted, scope_id(session, workspace))
        if media.status == MediaStatus.purged:
            raise life.Refused(f"media {wanted} was purged")
        deleted = life.soft_delete(session, media, actor=user, now=utcnow(), reason="user")
        until = life.restorable_until(media, timedelta(days=settings.retention_days))
        record = media_record(media, url_for)
    if as_json:
        print_json(record)
        return
    state = "deleted" if deleted else "already deleted"
    console.print(f"media {wanted} {state}; restorable until {until:%Y-%m-%d %H:%M} UTC")


def media_restore(
    media_id: MediaIdArgument,
    workspace: ScopeOption = None,
    user: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Undo a soft delete, within MEDIAMILL_RETENTION_DAYS of it."""
    from datetime import timedelta

    from mediamill.catalog import lifecycle as life
    from mediamill.catalog.repository import utcnow
    from mediamill.catalog.views import media_record

    settings = load_settings()
    wanted = media_uuid(media_id)
    url_for = url_maker(settings)
    retention = timedelta(days=settings.retention_days)
    with refusals(), writing(settings) as session:
        media = life.lock_media(session, wanted, scope_id(session, workspace))
        status = life.restore(session, media, actor=user, now=utcnow(), retention=retention)
        record = media_record(media, url_for)
    if as_json:
        print_json(record)
    else:
        console.print(f"media {wanted} restored ({status.value})")
