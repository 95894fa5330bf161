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


def test_every_deployment_exists_with_its_trigger_or_schedule() -> None:
    by_name = {d["name"]: d for d in _deployments()}
    assert set(by_name) == {
        "ingest-media",
        "ingest-upload",
        "backfill",
        "entity-cleanup",
        "orphan-sweep",
        "purge",
        "quota-sweep",
        "catalog-health",
    }
    triggered = {
        name: [event for t in d.get("triggers", []) for event in t["expect"]]
        for name, d in by_name.items()
    }
    assert triggered["ingest-media"] == ["mediamill.upload.received"]
    assert triggered["entity-cleanup"] == ["mediamill.entity.deleted"]
    crons = {name: [s["cron"] for s in d.get("schedules", [])] for name, d in by_name.items()}
    assert crons["orphan-sweep"] == ["0 * * * *"]
    for daily in ("purge", "quota-sweep", "catalog-health"):
        (cron,) = crons[daily]
        assert cron.split()[2:] == ["*", "*", "*"], (daily, cron)  # once a day
    for on_demand in ("backfill", "ingest-upload"):
        assert not crons[on_demand]
        assert not triggered[on_demand]


@pytest.mark.parametrize("deployment", _deployments(), ids=lambda d: d["name"])
def test_trigger_parameters_name_real_flow_parameters(deployment: dict[str, Any]) -> None:
    path, _, attribute = deployment["entrypoint"].partition(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    accepted = set(getattr(module, attribute).parameters.properties)
    for trigger in deployment.get("triggers", []):
        assert set(trigger["parameters"]) <= accepted


@pytest.mark.parametrize("deployment", _deployments(), ids=lambda d: d["name"])
def test_entrypoints_are_flows_on_the_process_pool(deployment: dict[str, Any]) -> None:
    path, _, attribute = deployment["entrypoint"].partition(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    target = getattr(module, attribute)
    assert isinstance(target, Flow)
    assert target.name == deployment["name"]
    assert deployment["work_pool"]["name"] == "mediamill-process"
