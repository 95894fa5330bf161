"""Backfill manifests, validated with Great Expectations before anything is ingested.

A manifest is a CSV of ``path[,entity][,alt][,user]``. Two kinds of problem:

- The manifest as a whole: no ``path`` column, or a column mediamill does not know. Nothing
  is ingested (`SourceError`): a misspelt ``entity`` column would otherwise ingest every
  row unattached, and a rerun after fixing it would find those rows done and not attach
  them either.
- One row: an empty, overlong or control-character path, a path an earlier row already
  lists (the first row wins), an entity that is not ``TYPE:ID``, an overlong alt text or
  user. That row is reported and skipped; every other row is ingested.

The same `validate_manifest` runs in a backfill and in a notebook, on a DataFrame read
with pandas. Importing this module imports Great Expectations (seconds), so `sources`
imports it only when a manifest is actually read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mediamill.catalog.expectations import CheckResult, Table, gxe, results_frame, run_checks
from mediamill.tasks.sources import ENTITY_TEXT, SourceError

__all__ = [
    "KNOWN_COLUMNS",
    "ManifestValidation",
    "load_manifest",
    "publish_validation",
    "validate_manifest",
]

KNOWN_COLUMNS = ("path", "entity", "alt", "user")
OPTIONAL_COLUMNS = KNOWN_COLUMNS[1:]
MAX_PATH_CHARS = 4096  # PATH_MAX on Linux
MAX_ALT_CHARS = 1000  # alt text describes an image; anything longer is a pasted description
MAX_USER_CHARS = 255  # the width of the catalog's uploader column
CONTROL_CHARACTERS = r"[\x00-\x1f\x7f]"
# The header is line 1; a row's line is its position plus 2 (a quoted value spanning lines
# shifts the count, which the row's path still identifies).
FIRST_ROW_LINE = 2
ARTIFACT_KEY = "manifest-validation"


@dataclass(frozen=True)
class _Rule:
    """A row expectation, and how a row that breaks it is described to the user."""

    expectation: gxe.Expectation
    problem: Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class ManifestValidation:
    """Each expectation's outcome, and the rows to ingest or skip.

    ``rows`` is the manifest as validated: stripped values (``None`` for a blank optional
    value), with its ``line`` in the file and the line of the first row with the same path.
    """

    rows: pd.DataFrame
    results: tuple[CheckResult, ...]
    problems: dict[int, tuple[str, ...]] = field(default_factory=dict)  # by line

    @property
    def valid(self) -> bool:
        return not self.problems

    def summary(self) -> pd.DataFrame:
        """Expectation, success, rows checked, unexpected count and a sample, one row each."""
        return results_frame(self.results)

    def rejected(self) -> pd.DataFrame:
        """The rows a backfill skips, with why."""
        bad = self.rows[self.rows["line"].isin(list(self.problems))]
        return bad.assign(problems=["; ".join(self.problems[int(line)]) for line in bad["line"]])[
            ["line", *KNOWN_COLUMNS, "problems"]
        ]

    def accepted(self) -> pd.DataFrame:
        """The rows a backfill ingests."""
        return self.rows[~self.rows["line"].isin(list(self.problems))][["line", *KNOWN_COLUMNS]]


def load_manifest(manifest: Path) -> pd.DataFrame:
    """The manifest's cells as text, exactly as written (blank cells are empty strings).

    ``utf-8-sig``: spreadsheets save CSV with a byte-order mark, which would otherwise end
    up in the first header and hide the ``path`` column.
    """
    try:
        return pd.read_csv(manifest, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, ValueError) as error:
        raise SourceError(f"cannot read manifest {manifest}: {error}") from error


def validate_manifest(frame: pd.DataFrame, base: Path) -> ManifestValidation:
    """Check a manifest's columns, then its rows; relative paths are relative to ``base``.

    Raises `SourceError` when the manifest as a whole is unusable; bad rows are returned
    in ``problems`` instead, so the good ones can still be ingested.
    """
    frame = _as_text(frame)
    _check_columns(frame)
    rows = _prepared(frame, base)
    rules = _row_rules()
    table = Table("manifest", rows, [rule.expectation for rule in rules], id_columns=("line",))
    results = tuple(run_checks([table], every_row=True))
    problems: dict[int, list[str]] = {}
    by_line = rows.set_index("line", drop=False)
    for rule, result in zip(rules, results, strict=True):
        for row_id in result.unexpected_rows:
            line = int(row_id["line"])
            row = {str(column): value for column, value in by_line.loc[line].items()}
            problems.setdefault(line, []).append(rule.problem(row))
    return ManifestValidation(
        rows=rows,
        results=results,
        problems={line: tuple(found) for line, found in sorted(problems.items())},
    )


def publish_validation(validation: ManifestValidation, manifest: Path) -> None:
    """Inside a flow run, a table artifact of the manifest's expectations; else nothing."""
    from prefect.artifacts import create_table_artifact
    from prefect.context import FlowRunContext

    if FlowRunContext.get() is None:
        return
    rows = [result.record() for result in validation.results]
    for row in rows:
        row["sample"] = "; ".join(row["sample"])
    skipped = len(validation.problems)
    create_table_artifact(
        key=ARTIFACT_KEY,
        table=rows,
        description=(
            f"Manifest `{manifest.name}`: {len(validation.rows)} rows, "
            + (f"{skipped} skipped (see the ingest failures)" if skipped else "all valid")
        ),
    )


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell as text and headers lowercased, however the caller read the CSV."""
    text = frame.astype(object).where(frame.notna(), "").astype(str)
    text.columns = [str(column).replace("\ufeff", "").strip().lower() for column in frame.columns]
    return text.reset_index(drop=True)


def _check_columns(frame: pd.DataFrame) -> None:
    """The whole-manifest expectations: a ``path`` column, and no column we do not know."""
    known = [column for column in frame.columns if column in KNOWN_COLUMNS]
    table = Table(
        "manifest columns",
        frame,
        [
            gxe.ExpectColumnToExist(column="path", description="has a path column"),
            # Exactly the known columns it has: fails on any other, and lists them.
            gxe.ExpectTableColumnsToMatchSet(
                column_set=known, exact_match=True, description="has only known columns"
            ),
        ],
    )
    missing_path, unknown = (not result.success for result in run_checks([table]))
    if missing_path:
        raise SourceError("the manifest has no 'path' column")
    if unknown:
        extra = ", ".join(repr(c) for c in frame.columns if c not in KNOWN_COLUMNS)
        raise SourceError(
            f"the manifest has columns mediamill does not know: {extra} "
            f"(known: {', '.join(KNOWN_COLUMNS)}); rename or remove them"
        )


def _prepared(frame: pd.DataFrame, base: Path) -> pd.DataFrame:
    """Stripped values, ``None`` for blank optional ones, and each row's line numbers."""
    rows = pd.DataFrame({"line": range(FIRST_ROW_LINE, FIRST_ROW_LINE + len(frame))})
    rows["path"] = frame["path"].str.strip().to_numpy()
    for column in OPTIONAL_COLUMNS:
        values = (
            frame[column].str.strip()
            if column in frame.columns
            else pd.Series([""] * len(frame), dtype=object)
        )
        rows[column] = values.where(values != "", None).to_numpy()
    rows["first_line"] = _first_lines(rows, base)
    return rows


def _first_lines(rows: pd.DataFrame, base: Path) -> list[int]:
    """The first line listing each row's file; a row's own line when it names no file."""
    first: dict[str, int] = {}
    lines = []
    for line, path in zip(rows["line"], rows["path"], strict=True):
        resolved = _resolved(str(path), base)
        lines.append(first.setdefault(resolved, int(line)) if resolved else int(line))
    return lines


def _resolved(path: str, base: Path) -> str | None:
    """The file a path names, as the backfill will read it: ``a.jpg`` and ``./a.jpg`` match."""
    if not path or any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        return None
    candidate = Path(path)
    return str((candidate if candidate.is_absolute() else base / candidate).resolve())


def _row_rules() -> list[_Rule]:
    return [
        _Rule(
            gxe.ExpectColumnValueLengthsToBeBetween(
                column="path", min_value=1, description="path is not empty"
            ),
            lambda row: "path is empty",
        ),
        _Rule(
            gxe.ExpectColumnValueLengthsToBeBetween(
                column="path",
                max_value=MAX_PATH_CHARS,
                description=f"path is at most {MAX_PATH_CHARS} characters",
            ),
            lambda row: f"path is longer than {MAX_PATH_CHARS} characters",
        ),
        _Rule(
            gxe.ExpectColumnValuesToNotMatchRegex(
                column="path",
                regex=CONTROL_CHARACTERS,
                description="path has no control characters",
            ),
            lambda row: "path contains control characters",
        ),
        _Rule(
            gxe.ExpectColumnPairValuesToBeEqual(
                column_A="line",
                column_B="first_line",
                description="path is listed once (the first row wins)",
            ),
            lambda row: f"path repeats line {row['first_line']}",
        ),
        _Rule(
            gxe.ExpectColumnValuesToMatchRegex(
                column="entity",
                regex=ENTITY_TEXT,
                description="entity, when given, is TYPE:ID",
            ),
            lambda row: (
                f"entity {row['entity']!r} must look like TYPE:ID, e.g. product:42 "
                "(type: lowercase letters, digits, _; id: letters, digits, _ or -)"
            ),
        ),
        _Rule(
            gxe.ExpectColumnValueLengthsToBeBetween(
                column="alt",
                max_value=MAX_ALT_CHARS,
                description=f"alt is at most {MAX_ALT_CHARS} characters",
            ),
            lambda row: f"alt is longer than {MAX_ALT_CHARS} characters",
        ),
        _Rule(
            gxe.ExpectColumnValueLengthsToBeBetween(
                column="user",
                max_value=MAX_USER_CHARS,
                description=f"user is at most {MAX_USER_CHARS} characters",
            ),
            lambda row: f"user is longer than {MAX_USER_CHARS} characters",
        ),
    ]
