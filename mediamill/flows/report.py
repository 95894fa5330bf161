"""Run summaries: the flow's return value, a Prefect table artifact, lifecycle events."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.events import emit_event


@dataclass
class RunSummary:
    """What a run did, in input order; JSON-ready for the CLI and notebooks."""

    workspace: str
    total: int = 0
    ingested: int = 0
    duplicates: int = 0
    unchanged: int = 0
    failed: int = 0
    waiting: int = 0
    seconds: float = 0.0
    pixel_seconds: float = 0.0
    peak_worker_rss_bytes: int = 0
    media_ids: list[str | None] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        """Assets per second over the whole run."""
        return self.total / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "throughput": round(self.throughput, 2)}


def emit_media_event(
    kind: str, media_id: uuid.UUID, workspace: str, payload: dict[str, Any] | None = None
) -> None:
    """``mediamill.media.ready`` / ``.failed``: what automations and webhooks follow."""
    emit_event(
        event=f"mediamill.media.{kind}",
        resource={
            "prefect.resource.id": f"mediamill.media.{media_id}",
            "mediamill.workspace": workspace,
        },
        payload=payload or {},
    )


def publish_summary(summary: RunSummary) -> None:
    """A table artifact of the counts and one row per failed asset."""
    create_table_artifact(
        key="ingest-summary",
        table=[
            {"measure": "assets", "value": summary.total},
            {"measure": "ingested", "value": summary.ingested},
            {"measure": "duplicates", "value": summary.duplicates},
            {"measure": "unchanged (rerun)", "value": summary.unchanged},
            {"measure": "failed", "value": summary.failed},
            {"measure": "waiting on another run", "value": summary.waiting},
            {"measure": "seconds", "value": round(summary.seconds, 2)},
            {"measure": "assets per second", "value": round(summary.throughput, 2)},
        ],
        description=f"Ingest into workspace `{summary.workspace}`",
    )
    if summary.failures:
        create_table_artifact(
            key="ingest-failures",
            table=summary.failures,
            description="Failed assets and why; nothing else in the batch was affected.",
        )
    else:
        create_markdown_artifact(key="ingest-failures", markdown="No asset failed.")
