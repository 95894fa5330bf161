"""Great Expectations, run quietly over pandas DataFrames and reported as plain rows.

Catalog health and backfill manifests are both checked with GE suites. This module keeps
GE's API in one place: an ephemeral context (nothing written to disk, no progress bars, its
logging turned down so a CLI table or a Prefect log is not drowned), one DataFrame asset
per table, and each expectation's result turned into a small `CheckResult` that a CLI
table, a Prefect artifact or a notebook can show. Expectations are told apart by their
``description``, which is also the name reports show.

Importing this module imports GE, which takes seconds: import it only where a check runs,
and import GE through it (``gxe``, ``Column``) so its import-time warnings stay silenced.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

# GE logs its own bookkeeping at INFO while importing, and imports modules Python deprecates
# (sre_constants): none of it is ours to act on, and inside a flow run Prefect would log it.
logging.getLogger("great_expectations").setLevel(logging.ERROR)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import great_expectations as gx
    from great_expectations import expectations as gxe
    from great_expectations.core.expectation_validation_result import (
        ExpectationValidationResult,
    )
    from great_expectations.data_context import AbstractDataContext
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )
    from great_expectations.expectations import Expectation
    from great_expectations.expectations.row_conditions import Column

__all__ = ["CheckResult", "Column", "Table", "gxe", "results_frame", "run_checks"]

SAMPLE_SIZE = 5
# Longest value shown in a sample: a sample names the row, it does not dump it.
SAMPLE_VALUE_CHARS = 120


@dataclass(frozen=True)
class Table:
    """A DataFrame and the expectations its rows must meet.

    ``id_columns`` name a row in samples and in ``CheckResult.unexpected_rows``.
    """

    name: str
    frame: pd.DataFrame
    expectations: Sequence[Expectation]
    id_columns: Sequence[str] = ("id",)


@dataclass(frozen=True)
class CheckResult:
    """How one expectation went: what reports show, and which rows broke it."""

    expectation: str
    table: str
    column: str | None
    success: bool
    checked: int
    unexpected: int
    sample: tuple[str, ...]
    # The id columns of the unexpected rows: every one with ``every_row``, else a sample.
    unexpected_rows: tuple[dict[str, Any], ...] = ()

    def record(self) -> dict[str, Any]:
        """JSON-ready, for ``--json``, artifacts and events."""
        return {
            "expectation": self.expectation,
            "table": self.table,
            "column": self.column,
            "success": self.success,
            "checked": self.checked,
            "unexpected": self.unexpected,
            "sample": list(self.sample),
        }


def run_checks(tables: Iterable[Table], *, every_row: bool = False) -> list[CheckResult]:
    """Validate each table against its expectations, in the order they were given.

    ``every_row`` keeps the ids of every unexpected row (a manifest needs them all to skip
    its bad rows); otherwise only a sample is kept, which is what a large catalog can afford.
    """
    context = _quiet_context()
    source = context.data_sources.add_pandas("mediamill")
    results: list[CheckResult] = []
    for table in tables:
        names = [_name_of(expectation) for expectation in table.expectations]
        if len(set(names)) != len(names):
            raise ValueError(f"expectations of {table.name} must have distinct descriptions")
        batch = (
            source.add_dataframe_asset(table.name)
            .add_batch_definition_whole_dataframe("whole")
            .get_batch(batch_parameters={"dataframe": table.frame})
        )
        suite = gx.ExpectationSuite(name=table.name, expectations=list(table.expectations))
        outcome = batch.validate(suite, result_format=_result_format(table, every_row))
        by_name = {_name_of(r.expectation_config): r for r in outcome.results}
        results.extend(_check_result(table, by_name[name]) for name in names)
    return results


def results_frame(results: Sequence[CheckResult]) -> pd.DataFrame:
    """One row per expectation: what a notebook displays and the CLI prints."""
    columns = ["expectation", "table", "column", "success", "checked", "unexpected", "sample"]
    return pd.DataFrame([r.record() for r in results], columns=columns)


def _quiet_context() -> AbstractDataContext:
    """An in-memory context: no files, no progress bars."""
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _name_of(expectation: Any) -> str:
    name = expectation.description
    if not name:
        raise ValueError(f"{type(expectation).__name__} needs a description to be reported")
    return str(name)


def _result_format(table: Table, every_row: bool) -> dict[str, Any]:
    return {
        "result_format": "COMPLETE" if every_row else "SUMMARY",
        "unexpected_index_column_names": list(table.id_columns),
        "partial_unexpected_count": SAMPLE_SIZE,
    }


def _check_result(table: Table, result: ExpectationValidationResult) -> CheckResult:
    config = result.expectation_config
    assert config is not None
    details: Mapping[str, Any] = result.result or {}
    error = _exception_message(result)
    rows = (
        details.get("unexpected_index_list") or details.get("partial_unexpected_index_list") or []
    )
    if error is not None:
        sample: tuple[str, ...] = (error,)
    elif rows:
        sample = tuple(_describe_row(row, table.id_columns) for row in rows[:SAMPLE_SIZE])
    else:
        sample = tuple(_short(value) for value in _table_level_sample(details))
    unexpected = details.get("unexpected_count")
    if unexpected is None:  # a table-level expectation, or one that could not run
        unexpected = 0 if result.success else 1
    return CheckResult(
        expectation=_name_of(config),
        table=table.name,
        column=_column_of(config.kwargs),
        success=bool(result.success),
        # Null values are not checked (an optional cell left blank), so they are not counted.
        checked=int(details.get("element_count") or 0) - int(details.get("missing_count") or 0),
        unexpected=int(unexpected),
        sample=sample,
        unexpected_rows=tuple(
            {column: _plain(row.get(column)) for column in table.id_columns} for row in rows
        ),
    )


def _exception_message(result: ExpectationValidationResult) -> str | None:
    """GE reports an expectation that could not run (a missing column) as info, not a raise."""
    info: Mapping[str, Any] = result.exception_info or {}
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for nested in info.values():
        if isinstance(nested, Mapping) and nested.get("raised_exception"):
            return str(nested.get("exception_message"))
    return None


def _table_level_sample(details: Mapping[str, Any]) -> list[Any]:
    """Table expectations (which columns exist) report mismatches instead of rows."""
    mismatched = (details.get("details") or {}).get("mismatched") or {}
    if isinstance(mismatched, Mapping):
        return [*mismatched.get("unexpected", []), *mismatched.get("missing", [])]
    return []


def _column_of(kwargs: Mapping[str, Any]) -> str | None:
    if "column" in kwargs:
        return str(kwargs["column"])
    if "column_list" in kwargs:
        return ", ".join(str(c) for c in kwargs["column_list"])
    if "column_A" in kwargs:
        return f"{kwargs['column_A']}, {kwargs['column_B']}"
    return None


def _describe_row(row: Mapping[str, Any], id_columns: Sequence[str]) -> str:
    """``id=12: sha256='ABC…'``: the row's ids, then the values that broke the expectation."""
    ids = " ".join(f"{column}={_plain(row.get(column))}" for column in id_columns)
    values = ", ".join(
        f"{column}={_short(value)}" for column, value in row.items() if column not in id_columns
    )
    return f"{ids}: {values}" if values else ids


def _plain(value: Any) -> Any:
    """NumPy scalars become Python ones, so results serialise as JSON."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _short(value: Any) -> str:
    text = repr(_plain(value))
    return text if len(text) <= SAMPLE_VALUE_CHARS else text[: SAMPLE_VALUE_CHARS - 1] + "…"
