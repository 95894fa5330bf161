"""What a run ingests: local files, in-memory bytes, or the rows of a manifest CSV."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_ENTITY_TYPE = r"[a-z][a-z0-9_]{0,63}"
_ENTITY_ID = r"[A-Za-z0-9_-]{1,128}"
ENTITY_PATTERN = re.compile(rf"^(?P<type>{_ENTITY_TYPE}):(?P<id>{_ENTITY_ID})$")
# The same rule without groups, for checks that only ask whether a whole value matches.
ENTITY_TEXT = rf"^{_ENTITY_TYPE}:{_ENTITY_ID}$"


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
    problem_code: str | None = None  # the machine reason for ``problem``, e.g. a refused URL
    # The pending media the API already created for this upload, adopted instead of a new row.
    media_id: uuid.UUID | None = None

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
    """Rows of ``path[,entity][,alt][,user]``; relative paths are relative to the manifest.

    The manifest is validated first (`mediamill.tasks.manifest`): a row that breaks an
    expectation comes back as a source with a ``problem``, which the pipeline reports as
    a failure without reading any file; a manifest that is unusable as a whole raises.
    Inside a flow run the validation is also published as a table artifact.
    """
    # Only manifests need pandas and Great Expectations (seconds to import): directory
    # backfills and single uploads start without them.
    from mediamill.tasks.manifest import load_manifest, publish_validation, validate_manifest

    frame = load_manifest(manifest)
    try:
        validation = validate_manifest(frame, manifest.parent)
    except SourceError as error:
        raise SourceError(f"{manifest}: {error}") from error
    publish_validation(validation, manifest)
    sources = []
    for row in validation.rows.to_dict("records"):
        line = int(row["line"])
        problems = validation.problems.get(line)
        if problems:
            sources.append(_rejected_row(manifest, line, str(row["path"]), problems))
            continue
        path = Path(str(row["path"]))
        sources.append(
            file_source(
                path if path.is_absolute() else manifest.parent / path,
                entity=EntityRef.parse(row["entity"]) if row["entity"] else entity,
                uploader=row["user"] or uploader,
                alt_text=row["alt"],
                idempotent=True,
            )
        )
    return sources


def _rejected_row(manifest: Path, line: int, path: str, problems: Sequence[str]) -> Source:
    """A manifest row that is not ingested, only reported.

    Its location names the manifest line, not the file: a bad row must never share the
    backfill identity (``source_key``) of a good row for the same file, or a rerun would
    mistake the one for the other.
    """
    from mediamill.tasks.filenames import display_filename

    return Source(
        location=f"{manifest.resolve()}:{line}",
        filename=display_filename(path) if path else f"{manifest.name}:{line}",
        idempotent=True,
        problem=f"manifest line {line}: {'; '.join(problems)}",
    )
