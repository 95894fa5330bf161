"""prefect.yaml must point at real flows, so `prefect deploy --all` works from a checkout."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect import Flow

ROOT = Path(__file__).resolve().parents[2]


def _deployments() -> list[dict[str, Any]]:
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    deployments: list[dict[str, Any]] = config["deployments"]
    return deployments


def test_the_ingest_and_backfill_deployments_exist() -> None:
    assert {d["name"] for d in _deployments()} >= {"ingest-media", "backfill"}


@pytest.mark.parametrize("deployment", _deployments(), ids=lambda d: d["name"])
def test_entrypoints_are_flows_on_the_process_pool(deployment: dict[str, Any]) -> None:
    path, _, attribute = deployment["entrypoint"].partition(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    target = getattr(module, attribute)
    assert isinstance(target, Flow)
    assert target.name == deployment["name"]
    assert deployment["work_pool"]["name"] == "mediamill-process"
