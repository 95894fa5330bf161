"""What a run ingests: local files, in-memory bytes, or the rows of a manifest CSV."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

ENTITY_PATTERN = re.compile(r"^(?P<type>[a-z][a-z0-9_]{0,63}):(?P<id>[A-Za-z0-9_-]{1,128})$")


class SourceError(ValueError):
    """A backfill source or manifest that cannot be read at all."""


@dataclass(frozen=True)
class EntityRef:
    """The entity (product, collection, ...) an upload is for."""

    type: str
    id: str

    @classmethod
    def parse(cls, text: str) -> EntityRef:
        match = ENTITY_PATTERN.match(text.strip())
        if match is None:
            raise ValueError(
                f"entity {text!r} must look like TYPE:ID, e.g. product:42 "
                "(type: lowercase letters, digits, _; id: letters, digits, _ or -)"
            )
        return cls(type=match["type"], id=match["id"])

    def __str__(self) -> str:
        return f"{self.type}:{self.id}"


@dataclass(frozen=True)
class Source:
    """One asset to ingest: a local file (an upload is staged to one first).

    ``source_key`` is set for backfill sources only: a backfill rerun over the same source
    must not add media, while every explicit upload is a media record of its own.
    """

    location: str
    filename: str
    path: Path | None = None
    entity: EntityRef | None = None
    uploader: str | None = None
    alt_text: str | None = None
    idempotent: bool = False
    problem: str | None = None  # why this source cannot be ingested (a bad manifest row)

    @property
    def source_key(self) -> str | None:
        if not self.idempotent:
            return None
        return hashlib.sha256(self.location.encode()).hexdigest()


def file_source(
    path: Path,
    *,
    entity: EntityRef | None = None,
    uploader: str | None = None,
    alt_text: str | None = None,
    idempotent: bool = False,
) -> Source:
    resolved = path.resolve()
    return Source(
        location=str(resolved),
        filename=path.name,
        path=resolved,
        entity=entity,
        uploader=uploader,
        alt_text=alt_text,
        idempotent=idempotent,
    )


def _inside(path: Path, excluded: Sequence[Path]) -> bool:
    return any(path == item or path.is_relative_to(item) for item in excluded)


def discover(
    source: Path,
    *,
    entity: EntityRef | None = None,
    uploader: str | None = None,
    exclude: Sequence[Path] = (),
) -> list[Source]:
    """Every regular file under a directory (sorted), or the rows of a manifest CSV.

    Hidden files and anything in ``exclude`` (mediamill's own catalog, store and Prefect
    state) are skipped, so backfilling a parent folder never ingests our own state.
    """
    if source.is_dir():
        skipped = [folder.resolve() for folder in exclude]
        files = sorted(
            p
            for p in source.rglob("*")
            if p.is_file() and not p.name.startswith(".") and not _inside(p.resolve(), skipped)
        )
        return [file_source(p, entity=entity, uploader=uploader, idempotent=True) for p in files]
    if source.is_file() and source.suffix.lower() == ".csv":
        return read_manifest(source, entity=entity, uploader=uploader)
    raise SourceError(f"{source} is neither a directory nor a manifest .csv file")


def read_manifest(
    manifest: Path, *, entity: EntityRef | None = None, uploader: str | None = None
) -> list[Source]:
    """Rows of ``path[,entity][,alt][,user]``; relative paths are relative to the manifest."""
    import pandas as pd  # only manifests need it; keeps directory backfills quick to start

    try:
        frame = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as error:
        raise SourceError(f"cannot read manifest {manifest}: {error}") from error
    if "path" not in frame.columns:
        raise SourceError(f"manifest {manifest} has no 'path' column")
    sources = []
    for number, row in enumerate(frame.to_dict("records"), start=2):
        path = Path(str(row["path"]).strip())
        if not path.is_absolute():
            path = manifest.parent / path
        row_entity, problem = entity, None
        if row.get("entity"):
            try:
                row_entity = EntityRef.parse(str(row["entity"]))
            except ValueError as error:
                problem = f"manifest line {number}: {error}"
        source = file_source(
            path,
            entity=row_entity,
            uploader=str(row.get("user") or "") or uploader,
            alt_text=str(row.get("alt") or "") or None,
            idempotent=True,
        )
        sources.append(replace(source, problem=problem) if problem else source)
    return sources
