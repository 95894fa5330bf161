"""The catalog health flow: the Great Expectations suite over the catalog, made visible.

A daily deployment runs ``catalog_health``. Its results become a table artifact, and any
failed expectation emits ``mediamill.catalog.unhealthy`` for an automation to act on. The
run itself completes either way: the suite ran, and what it found is in the artifact.

The suite (and with it Great Expectations, seconds to import) is imported only when the
flow runs, so loading this module to serve or deploy the flow stays quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect import flow
from prefect.artifacts import create_table_artifact
from prefect.events import emit_event

from mediamill.catalog import migrate
from mediamill.catalog.engine import make_engine
from mediamill.settings import Settings, get_settings
from mediamill.storage.keys import workspace_prefix
from mediamill.tasks.recipes import Recipe

if TYPE_CHECKING:
    from mediamill.catalog.health import HealthReport

UNHEALTHY_EVENT = "mediamill.catalog.unhealthy"
ARTIFACT_KEY = "catalog-health"


@flow(name="catalog-health")
def catalog_health(workspace: str | None = None) -> dict[str, Any]:
    """Check one workspace (by slug) or the whole catalog; publish and signal what failed."""
    report = check_health(get_settings(), workspace)
    publish_report(report)
    if not report.healthy:
        emit_unhealthy(report)
    return report.as_dict()


def check_health(settings: Settings, workspace: str | None) -> HealthReport:
    """Run the suite against the configured catalog with the recipe and key layout in force."""
    from mediamill.catalog.health import check_catalog

    engine = make_engine(settings.resolved_database_url)
    try:
        migrate.require_current(engine)
        with engine.connect() as connection:
            return check_catalog(
                connection,
                planned_variants=Recipe.from_settings(settings).planned_variants,
                workspace_prefix=workspace_prefix,
                workspace=workspace,
            )
    finally:
        engine.dispose()


def publish_report(report: HealthReport) -> None:
    """One artifact row per expectation, failures first."""
    rows = sorted((r.record() for r in report.results), key=lambda row: bool(row["success"]))
    for row in rows:
        row["sample"] = "; ".join(row["sample"])
    failed = len(report.failures)
    create_table_artifact(
        key=ARTIFACT_KEY,
        table=rows,
        description=(
            f"Catalog health of {_scope(report)}: "
            + (f"{failed} of {len(rows)} expectations failed" if failed else "healthy")
        ),
    )


def emit_unhealthy(report: HealthReport) -> None:
    """``mediamill.catalog.unhealthy``, naming each failed expectation and a sample."""
    resource = {"prefect.resource.id": "mediamill.catalog"}
    if report.workspace is not None:
        resource = {
            "prefect.resource.id": f"mediamill.catalog.{report.workspace}",
            "mediamill.workspace": report.workspace,
        }
    emit_event(
        event=UNHEALTHY_EVENT,
        resource=resource,
        payload={
            "workspace": report.workspace,
            "failed": [result.record() for result in report.failures],
        },
    )


def _scope(report: HealthReport) -> str:
    return f"workspace `{report.workspace}`" if report.workspace else "every workspace"
