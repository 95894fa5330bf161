"""``server start``, ``stop`` and ``status``, and ``serve``: the Prefect side of a machine."""

from __future__ import annotations

from typing import Annotated

import typer

from mediamill.cli.common import console, fail, load_settings, open_catalog


def server_start() -> None:
    """Start the local Prefect server (UI and API) in the background."""
    from mediamill.deployments.local_server import start_server

    info = start_server(load_settings())
    console.print(f"Prefect server running at {info.ui_url} (pid {info.pid})")


def server_stop() -> None:
    """Stop the local Prefect server."""
    from mediamill.deployments.local_server import stop_server

    stopped = stop_server(load_settings())
    console.print("Prefect server stopped" if stopped else "no local Prefect server was running")


def server_status() -> None:
    """Say whether the local Prefect server is running, and where."""
    from mediamill.deployments.local_server import running_server

    info = running_server(load_settings())
    if info is None:
        console.print("no local Prefect server is running")
        raise typer.Exit(1)
    console.print(f"Prefect server running at {info.ui_url} (pid {info.pid})")


def serve(
    api_host: Annotated[str, typer.Option(help="Interface the API listens on.")] = "127.0.0.1",
    api_port: Annotated[int, typer.Option(help="Port the API listens on.")] = 8000,
) -> None:
    """Prefect server, every deployment in prefect.yaml, a worker and the API, until Ctrl-C."""
    from mediamill.deployments.serve import ServeError
    from mediamill.deployments.serve import serve as run_serve

    settings = load_settings()
    with open_catalog(settings, migrate_embedded=True):
        pass
    try:
        code = run_serve(settings, console.print, api_host, api_port)
    except ServeError as error:
        raise fail(str(error)) from error
    raise typer.Exit(code)
