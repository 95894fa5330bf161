"""The ``mediamill`` command tree: the root Typer app, its groups and every command.

Commands are registered here, in the order ``mediamill --help`` lists them (commands
first, then groups); the modules next to this one hold the commands themselves.
"""

from __future__ import annotations

import typer

from mediamill.cli import access, admin, demo, ingest, lifecycle, media, quota, server

app = typer.Typer(
    name="mediamill",
    help="Media pipeline for commerce: validate, dedupe, optimise and publish uploads.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
media_app = typer.Typer(help="Read and manage the media catalog.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the catalog database.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
server_app = typer.Typer(help="The local Prefect server that runs report to.", no_args_is_help=True)
quota_app = typer.Typer(help="Workspace storage quotas.", no_args_is_help=True)
check_app = typer.Typer(help="Check the catalog's data.", no_args_is_help=True)
entity_app = typer.Typer(
    help="Media attached to entities of the host platform.", no_args_is_help=True
)
sweep_app = typer.Typer(
    help="Orphan sweep and purge (deployments run them on a schedule).", no_args_is_help=True
)
token_app = typer.Typer(help="API tokens (GraphQL, picker page).", no_args_is_help=True)
webhook_secret_app = typer.Typer(help="Webhook signing secrets.", no_args_is_help=True)

app.command()(ingest.ingest)
app.command()(ingest.backfill)
app.command("usage")(quota.usage_command)
app.command()(server.serve)
app.command()(access.api)
app.command()(demo.demo)
app.command()(lifecycle.attach)
app.command()(lifecycle.detach)

app.add_typer(media_app, name="media")
media_app.command("list")(media.media_list)
media_app.command("show")(media.media_show)
media_app.command("delete")(media.media_delete)
media_app.command("restore")(media.media_restore)

app.add_typer(db_app, name="db")
db_app.command("upgrade")(admin.db_upgrade)

app.add_typer(config_app, name="config")
config_app.command("check")(admin.config_check)

app.add_typer(server_app, name="server")
server_app.command("start")(server.server_start)
server_app.command("stop")(server.server_stop)
server_app.command("status")(server.server_status)

app.add_typer(quota_app, name="quota")
quota_app.command("set")(quota.quota_set)

app.add_typer(check_app, name="check")
check_app.command("catalog")(admin.check_catalog)

app.add_typer(entity_app, name="entity")
entity_app.command("media")(lifecycle.entity_media)
entity_app.command("delete")(lifecycle.entity_delete)

app.add_typer(sweep_app, name="sweep")
sweep_app.command("orphans")(lifecycle.sweep_orphans)
sweep_app.command("purge")(lifecycle.sweep_purge)

app.add_typer(token_app, name="token")
token_app.command("create")(access.token_create)

app.add_typer(webhook_secret_app, name="webhook-secret")
webhook_secret_app.command("create")(access.webhook_secret_create)
