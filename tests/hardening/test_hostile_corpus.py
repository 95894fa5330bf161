"""THREATS.md "Hostile uploads": the whole generated corpus through the real pipeline at once.

Every case of `mediamill.media.hostile_samples.CORPUS` goes into workspace ``acme`` in one
backfill, beside ordinary files (``CONTROLS``), while workspace ``globex`` holds a media
ingested earlier. One run, so the cases share batches and worker processes as a real
backfill would: a hostile file that crashed a worker or poisoned a batch would show up as
a neighbour's failure. The assertions then read the catalog and the store: each case ended
the one safe way, and nothing else changed.

Names longer than a filesystem allows (NAME_MAX, 255 bytes) cannot be files, so they cannot
be in a backfill; they arrive the way they do in production, as uploaded bytes, in a second
run right after the backfill.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from mediamill.catalog import migrate
from mediamill.catalog import repository as repo
from mediamill.catalog.engine import make_engine, make_session_factory
from mediamill.catalog.models import Attachment, Blob, BlobStatus, Media, MediaStatus, Variant
from mediamill.flows.ingest import backfill, ingest_bytes
from mediamill.media import hostile_samples, samples, video_samples
from mediamill.media.hostile_samples import CONTROLS, CORPUS, SENTINEL_TEXT, HostileCase
from mediamill.settings import get_settings
from mediamill.storage.backends.sidecar import sidecar_path
from mediamill.storage.factory import open_store
from mediamill.storage.headers import IMMUTABLE
from mediamill.storage.keys import workspace_prefix
from mediamill.storage.store import ObjectStore

CASES = [*CORPUS, *CONTROLS]
NAME_MAX = 255
KEY = re.compile(
    r"tenants/workspace_\d+/library/[0-9a-f]{2}/unattached/(image|video|model|document)/"
    r"(original|[a-z0-9_-]{1,64})/[0-9a-f]{64}(_[a-z0-9_-]{1,64})?\.[a-z0-9]{1,8}"
)
ACTIVE_CONTENT_TYPES = frozenset(
    {
        "image/svg+xml",
        "text/html",
        "application/xhtml+xml",
        "application/xml",
        "text/xml",
        "application/javascript",
        "text/javascript",
    }
)
STORED_NAMES = {
    "../../x.png": "x.png",
    "..\\..\\windows.webp": "windows.webp",
    "avatar\u202egpj.php": "avatargpj.php",
    "ph\u200bo\u200dto\ufeff.jpg": "photo.jpg",
    ".htaccess": "htaccess",
    "é" * 296 + ".gif": "é" * 251 + ".gif",
}
"""The stored name of each case whose raw name must not be kept as it came."""
USER_TOKENS = ("..", "php", "htaccess", "onerror", "concat", "secret", "windows", "avatar")
"""Fragments of uploaded names; none may appear in a storage key."""


def _case_id(case: HostileCase) -> str:
    return f"{case.threat}: {case.name.encode('unicode_escape').decode()[:48]}"


def _fits_a_filesystem(name: str) -> bool:
    return all(len(os.fsencode(part)) <= NAME_MAX for part in name.split("/"))


@dataclass
class Outcome:
    """How one case ended, read back from the catalog and the store."""

    status: str
    error_code: str | None
    error_message: str | None
    stored_name: str | None
    blob_status: str | None
    original_key: str | None
    variants: dict[str, bytes] = field(default_factory=dict)
    variant_types: dict[str, tuple[str, str | None, str | None]] = field(default_factory=dict)


@dataclass
class Run:
    """Everything the assertions need, gathered once."""

    made: dict[str, bytes]
    summary: dict[str, Any]
    uploads: dict[str, dict[str, Any]]
    outcomes: dict[str, Outcome]
    objects: dict[str, bytes]
    content_types: dict[str, str | None]
    files: set[str]
    ready_keys: set[str]
    unsettled: list[str]
    acme_media: int
    staged_left: list[str]
    messages: list[str]
    globex_before: dict[str, Any]
    globex_after: dict[str, Any]
    sentinel: Path


@pytest.fixture(scope="module")
def run(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """The corpus ingested once, on a fresh home with the corpus' caps."""
    root = tmp_path_factory.mktemp("hostile")
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("MEDIAMILL_"):
                patch.delenv(name)
        patch.setenv("MEDIAMILL_HOME", str(root / "home"))
        for name, value in hostile_samples.RUN_SETTINGS.items():
            patch.setenv(name, value)
        engine = make_engine(get_settings().resolved_database_url)
        migrate.upgrade(engine)
        try:
            yield _ingest(root, make_session_factory(engine))
        finally:
            engine.dispose()


def _ingest(root: Path, sessions: Any) -> Run:
    (root / "private").mkdir()
    sentinel = video_samples.sentinel(root / "private" / "passwd")
    earlier = ingest_bytes(samples.photo_jpeg(200, 150, seed=41), "earlier.jpg", "globex")
    assert earlier["ingested"] == 1, earlier
    globex_before = _workspace_snapshot(sessions, "globex")

    made = {case.name: case.make(sentinel) for case in CASES}
    on_disk = [case for case in CASES if _fits_a_filesystem(case.name)]
    by_upload = [case for case in CASES if not _fits_a_filesystem(case.name)]
    manifest = _write_manifest(root / "uploads" / "in" / "batch", on_disk, made)
    summary = backfill(str(manifest), "acme")
    uploads = [ingest_bytes(made[case.name], case.name, "acme") for case in by_upload]

    media_ids = dict(zip([c.name for c in on_disk], summary["media_ids"], strict=True))
    for case, upload in zip(by_upload, uploads, strict=True):
        (media_ids[case.name],) = upload["media_ids"]
    store = open_store(get_settings())
    objects = {listed.key: store.get(listed.key) for listed in store.list_prefix("")}
    content_types = {key: store.head(key).content_type for key in objects}
    store_root = Path(store.root)
    staging = get_settings().staging_dir
    with sessions() as session:
        outcomes = {
            name: _outcome(session, store, uuid.UUID(str(media_id)), objects, content_types)
            for name, media_id in media_ids.items()
        }
        media = session.scalars(select(Media).options(selectinload(Media.workspace))).all()
        unsettled = [
            f"{m.original_filename}: {m.status}"
            for m in media
            if m.status not in (MediaStatus.ready, MediaStatus.failed)
        ] + [
            f"blob {b.id}: {b.status}"
            for b in session.scalars(select(Blob))
            if b.status == BlobStatus.processing
        ]
        return Run(
            made=made,
            summary=summary,
            uploads={case.name: upload for case, upload in zip(by_upload, uploads, strict=True)},
            outcomes=outcomes,
            objects=objects,
            content_types=content_types,
            files={
                p.relative_to(store_root).as_posix() for p in store_root.rglob("*") if p.is_file()
            },
            ready_keys=_ready_keys(session),
            unsettled=unsettled,
            acme_media=sum(1 for m in media if m.workspace.slug == "acme"),
            staged_left=sorted(p.name for p in staging.iterdir()) if staging.exists() else [],
            messages=[m.error_message or "" for m in media],
            globex_before=globex_before,
            globex_after=_workspace_snapshot(sessions, "globex"),
            sentinel=sentinel,
        )


def _write_manifest(folder: Path, cases: list[HostileCase], made: dict[str, bytes]) -> Path:
    """Each case's bytes under its own name (``../`` names land outside), and a manifest."""
    folder.mkdir(parents=True)
    assert len({(folder / case.name).resolve() for case in cases}) == len(cases)
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["path"])
        for case in cases:
            (folder / case.name).write_bytes(made[case.name])
            writer.writerow([case.name])
    return manifest


def _outcome(
    session: Any,
    store: ObjectStore,
    media_id: uuid.UUID,
    objects: dict[str, bytes],
    content_types: dict[str, str | None],
) -> Outcome:
    media = session.scalars(
        select(Media)
        .where(Media.id == media_id)
        .options(selectinload(Media.blob).selectinload(Blob.variants))
    ).one()
    blob = media.blob
    outcome = Outcome(
        status=str(media.status),
        error_code=media.error_code,
        error_message=media.error_message,
        stored_name=media.original_filename,
        blob_status=str(blob.status) if blob is not None else None,
        original_key=blob.original_key if blob is not None else None,
    )
    for variant in blob.variants if blob is not None else []:
        label = f"{variant.name}.{variant.format}"
        outcome.variants[label] = objects.get(variant.key, b"")
        head = store.head(variant.key) if variant.key in objects else None
        outcome.variant_types[label] = (
            variant.mime_type,
            content_types.get(variant.key),
            head.cache_control if head is not None else None,
        )
    return outcome


def _ready_keys(session: Any) -> set[str]:
    """The originals and variants of every ready blob, of every workspace."""
    ready = session.scalars(
        select(Blob).where(Blob.status == BlobStatus.ready).options(selectinload(Blob.variants))
    ).all()
    return {b.original_key for b in ready} | {v.key for b in ready for v in b.variants}


def _workspace_snapshot(sessions: Any, slug: str) -> dict[str, Any]:
    """Every row and object a workspace owns, down to object bytes and modification times."""
    with sessions() as session:
        workspace = repo.find_workspace(session, slug)
        assert workspace is not None
        blob_ids = session.scalars(select(Blob.id).where(Blob.workspace_id == workspace.id)).all()
        media_ids = session.scalars(
            select(Media.id).where(Media.workspace_id == workspace.id)
        ).all()
        rows = {
            model.__name__: sorted(
                repr(sorted((k, str(v)) for k, v in vars(row).items() if not k.startswith("_")))
                for row in session.scalars(select(model).where(where))
            )
            for model, where in (
                (Media, Media.workspace_id == workspace.id),
                (Blob, Blob.workspace_id == workspace.id),
                (Variant, Variant.blob_id.in_(blob_ids)),
                (Attachment, Attachment.media_id.in_(media_ids)),
            )
        }
        prefix = workspace_prefix(workspace.id)
    store = open_store(get_settings())
    objects = {
        listed.key: (
            hashlib.sha256(store.get(listed.key)).hexdigest(),
            store.head(listed.key),
            listed.modified,
        )
        for listed in store.list_prefix(prefix)
    }
    return {"rows": rows, "objects": objects}


# -- the corpus itself ----------------------------------------------------------------------


def test_the_corpus_covers_every_hostile_upload_row() -> None:
    assert {case.threat for case in CORPUS} == set(hostile_samples.THREATS)
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))
    assert all(case.checks for case in CASES if case.code is None)
    assert any(not _fits_a_filesystem(case.name) for case in CORPUS)  # the 300-char name


def test_the_encrypted_pdf_is_real_encryption_not_damage() -> None:
    """It opens with its password, so failing ``encrypted`` is not a parser giving up."""
    data = hostile_samples.encrypted_pdf("secret")
    with pytest.raises(pdfium.PdfiumError, match=r"(?i)password"):
        pdfium.PdfDocument(data)
    document = pdfium.PdfDocument(data, password="secret")
    try:
        assert len(document) == 1
    finally:
        document.close()


def test_every_case_is_made_the_same_way_each_time(run: Run) -> None:
    remade = {case.name: case.make(run.sentinel) for case in CASES}
    assert [name for name, data in remade.items() if data != run.made[name]] == []


def test_the_payload_each_ready_case_must_lose_is_in_its_upload(run: Run) -> None:
    """Otherwise its absence from the variants would prove nothing."""
    for case in CASES:
        missing = [needle for needle in case.absent if needle not in run.made[case.name]]
        assert missing == [], case.name


def test_the_variant_checks_catch_what_they_look_for(run: Run) -> None:
    """Each check flags the raw upload it exists for, served as if it were a variant."""
    made = run.made
    for name, label in (("gps.jpg", "x.jpeg"), ("gps.png", "x.png"), ("gps.webp", "x.webp")):
        (problem,) = hostile_samples.no_metadata({label: made[name]})
        assert "GPSLatitude" in problem, name
    assert hostile_samples.portrait({"optimized.jpeg": made["gps.jpg"]})
    assert hostile_samples.keeps_alpha({"optimized.png": made["../../x.png"]})
    assert hostile_samples.keeps_alpha({"optimized.png": made["alpha.png"]}) == []
    assert hostile_samples.shows_brochure_page_one({"optimized.webp": made["gps.webp"]})
    gifar = next(case for case in CORPUS if case.name == "gifar.gif")
    assert any("PK" in problem for problem in gifar.problems({"tiny.webp": made["gifar.gif"]}))


# -- the run as a whole ---------------------------------------------------------------------


def test_the_batch_ended_and_counted_every_case(run: Run) -> None:
    on_disk = [case for case in CASES if _fits_a_filesystem(case.name)]
    expected = {case.name: case.code for case in on_disk if case.code is not None}
    summary = run.summary
    assert summary["total"] == len(on_disk)
    assert summary["failed"] == len(expected)
    assert summary["ingested"] + summary["duplicates"] == len(on_disk) - len(expected)
    reported = {failure["source"]: failure["code"] for failure in summary["failures"]}
    assert reported == {Path(name).name: code for name, code in expected.items()}
    for name, upload in run.uploads.items():
        code = next(case.code for case in CASES if case.name == name)
        assert (upload["ingested"], upload["failed"]) == ((1, 0) if code is None else (0, 1))
    assert run.unsettled == []
    assert run.acme_media == len(CASES)
    assert run.staged_left == []


def test_the_store_holds_exactly_the_ready_blobs(run: Run) -> None:
    """No original or partial variant of a failed upload, no temporary file, nothing else."""
    assert set(run.objects) == run.ready_keys
    sidecars = {sidecar_path(key) for key in run.objects}
    assert run.files == set(run.objects) | sidecars


def test_keys_are_generated_never_from_user_input(run: Run) -> None:
    for key in run.objects:
        assert KEY.fullmatch(key), key
        assert not any(token in key for token in USER_TOKENS), key


def test_no_stored_byte_comes_from_the_sentinel_file(run: Run) -> None:
    assert run.sentinel.read_bytes() == SENTINEL_TEXT * 64  # nothing wrote to it either
    needle = SENTINEL_TEXT[:24]
    assert not [key for key, data in run.objects.items() if needle in data]
    assert not [message for message in run.messages if needle.decode() in message]


def test_nothing_is_stored_as_active_content(run: Run) -> None:
    """A raw SVG or HTML page must never be served from the media domain as what it is."""
    for key, content_type in run.content_types.items():
        assert content_type, key
        assert content_type not in ACTIVE_CONTENT_TYPES, key
        assert not content_type.startswith("text/"), key


def test_the_other_workspace_is_untouched(run: Run) -> None:
    assert run.globex_before["objects"]
    assert run.globex_after == run.globex_before


# -- each case ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_each_upload_ends_the_one_safe_way(
    run: Run, case: HostileCase, record_property: Callable[[str, object], None]
) -> None:
    outcome = run.outcomes[case.name]
    observed = outcome.status if outcome.error_code is None else f"failed: {outcome.error_code}"
    if outcome.variants:
        observed += f", {len(outcome.variants)} clean variants"
    for name, value in (
        ("threat", case.threat),
        ("case", case.what or case.name),
        ("expected", case.expected),
        ("observed", observed),
    ):
        record_property(name, value)
    if case.code is not None:
        assert (outcome.status, outcome.error_code) == ("failed", case.code), outcome.error_message
        assert outcome.error_message
        assert outcome.variants == {}
        assert outcome.blob_status in (None, "failed")
        assert outcome.original_key not in run.objects
        return
    assert (outcome.status, outcome.error_code) == ("ready", None), outcome.error_message
    assert outcome.blob_status == "ready"
    assert case.problems(outcome.variants) == []
    for label, (mime, stored_type, cache_control) in outcome.variant_types.items():
        assert outcome.variants[label], f"{label} is missing from the store"
        assert (stored_type, cache_control) == (mime, IMMUTABLE), label
    assert outcome.original_key in run.objects


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_each_name_is_kept_as_clean_capped_text(run: Run, case: HostileCase) -> None:
    stored = run.outcomes[case.name].stored_name
    assert stored == STORED_NAMES.get(case.name, case.name)
    assert 0 < len(stored) <= NAME_MAX
    assert "/" not in stored
    assert "\\" not in stored
    assert not [ch for ch in stored if unicodedata.category(ch) in ("Cc", "Cf")]
