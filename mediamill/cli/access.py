"""``token create``, ``webhook-secret create`` and ``api``: how a platform reaches mediamill."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer

from mediamill.cli.common import console, errors, fail, load_settings, open_catalog
from mediamill.cli.options import WorkspaceOption


class LogLevel(StrEnum):
    """uvicorn's log levels, as ``mediamill api --log-level`` offers them."""

    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"


ScopeList = Annotated[
    list[str] | None,
    typer.Option(
        "--scope",
        "-s",
        help="read, write or admin (admin > write > read); repeat for several. Default: write.",
    ),
]


def token_create(
    workspace: WorkspaceOption,
    user: Annotated[str, typer.Option("--user", "-u", help="Who the token acts as.")],
    scope: ScopeList = None,
    name: Annotated[str | None, typer.Option("--name", help="A label for people.")] = None,
) -> None:
    """Create an API token for a user in a workspace; it is printed once, only its hash is kept."""
    from mediamill.catalog import access
    from mediamill.catalog.engine import begin_immediate

    settings = load_settings()
    scopes = scope or ["write"]
    try:
        access.expand_scopes(scopes)
    except ValueError as error:
        raise fail(str(error)) from error
    with open_catalog(settings, migrate_embedded=True) as session, session.begin():
        begin_immediate(session)
        token = access.create_token(session, workspace, user, scopes, name=name)
    sys.stdout.write(token + "\n")
    # The hint goes to stderr, so `TOKEN=$(mediamill token create ...)` captures the token only.
    errors.print(
        f"token for {user} in {workspace} ({', '.join(scopes)}); store it now, "
        "it cannot be shown again",
        style="dim",
    )


def webhook_secret_create(workspace: WorkspaceOption) -> None:
    """Create the workspace's webhook signing secret (the previous one stops working)."""
    from mediamill.catalog import access
    from mediamill.catalog.engine import begin_immediate

    settings = load_settings()
    with open_catalog(settings, migrate_embedded=True) as session, session.begin():
        begin_immediate(session)
        secret = access.create_webhook_secret(session, workspace)
    sys.stdout.write(secret + "\n")
    errors.print(
        f"webhook secret for {workspace}; senders sign with it "
        "(Mediamill-Signature: t=<unix>,v1=<HMAC-SHA256 of '<t>.<body>'>)",
        style="dim",
    )


def api(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="Server processes (requests are CPU-bound: up to cores).")
    ] = 1,
    access_log: Annotated[
        bool, typer.Option(help="Log every request (uvicorn's access log).")
    ] = True,
    log_level: Annotated[LogLevel, typer.Option(help="uvicorn's log level.")] = LogLevel.info,
) -> None:
    """Serve the API (webhooks, /graphql, /library) with uvicorn until Ctrl-C."""
    import os
    from contextlib import nullcontext

    import uvicorn

    from mediamill.api.balance import BOARD_ENV, BalancedHttpToolsProtocol, connection_board

    settings = load_settings()
    with open_catalog(settings, migrate_embedded=True):
        pass
    # Every worker process builds the app from the environment, so decisions made here
    # are handed down as MEDIAMILL_* variables.
    if settings.dispatch == "auto" and not os.environ.get("PREFECT_API_URL"):
        # No Prefect server configured: run flows embedded, reporting to the same local
        # server the CLI's own runs use.
        from mediamill.cli.common import start_prefect

        os.environ["MEDIAMILL_DISPATCH"] = "embedded"
        start_prefect(settings)
    if "api_public_url" not in settings.model_fields_set:
        # Upload links point back at this server unless a proxy's address is configured.
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        os.environ["MEDIAMILL_API_PUBLIC_URL"] = f"http://{shown}:{port}"

    console.print(f"mediamill API on http://{host}:{port} (picker: /library, GraphQL: /graphql)")
    # Several processes share the listening socket: a board keeps their connections even
    # (see mediamill.api.balance).
    with connection_board(workers) if workers > 1 else nullcontext() as board:
        if board is not None:
            os.environ[BOARD_ENV] = str(board)
        uvicorn.run(
            "mediamill.api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            http=BalancedHttpToolsProtocol if board is not None else "auto",
            log_level=log_level.value,
            access_log=access_log,
        )
