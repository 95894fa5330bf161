"""Usage per workspace and per user: logical bytes as owned, physical bytes after dedupe."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sqlalchemy.orm import Session

from mediamill.catalog.models import Blob, BlobStatus, MediaStatus, MediaType, Workspace
from mediamill.catalog.usage import COUNT_COLUMNS, as_records, usage
from tests.catalog.factories import add_blob, add_media, add_workspace, new_variant


def stored_blob(
    session: Session, workspace: Workspace, content: str, size: int, variants: list[int]
) -> Blob:
    blob = add_blob(session, workspace, content, size=size, status=BlobStatus.ready)
    for number, variant_size in enumerate(variants):
        session.add(new_variant(blob, name=f"v{number}", size=variant_size))
    session.flush()
    return blob


def owned(
    session: Session,
    workspace: Workspace,
    blob: Blob | None,
    user: str | None,
    media_type: MediaType = MediaType.image,
    status: MediaStatus = MediaStatus.ready,
) -> None:
    add_media(session, workspace, blob, uploader=user, media_type=media_type, status=status)


@pytest.fixture
def acme(session: Session, workspace: Workspace) -> Workspace:
    """Two users; one blob uploaded by both, plus gone and failed media that own nothing.

    photo: 100 B original + 30 B of variants, uploaded by ann and by bob.
    clip: 50 B original + 5 B of variants, uploaded by ann.
    """
    photo = stored_blob(session, workspace, "photo", 100, [10, 20])
    clip = stored_blob(session, workspace, "clip", 50, [5])
    owned(session, workspace, photo, "ann")
    owned(session, workspace, photo, "bob")
    owned(session, workspace, clip, "ann", MediaType.video)
    owned(session, workspace, clip, "ann", MediaType.video, MediaStatus.deleted)
    owned(session, workspace, photo, "bob", status=MediaStatus.purged)
    owned(session, workspace, None, "bob", status=MediaStatus.failed)
    session.commit()
    return workspace


def row(frame: pd.DataFrame, **where: object) -> dict[str, object]:
    selected = frame
    for column, value in where.items():
        selected = selected[selected[column].isna() if value is None else selected[column] == value]
    assert len(selected) == 1, selected
    return as_records(selected)[0]


def test_columns_are_documented_and_integers(session: Session, acme: Workspace) -> None:
    frame = usage(session, "acme")
    assert list(frame.columns) == ["workspace", "quota_bytes", *COUNT_COLUMNS]
    assert COUNT_COLUMNS[2:6] == ["images", "videos", "models", "documents"]
    assert all(frame[column].dtype == "int64" for column in COUNT_COLUMNS)
    assert str(frame["quota_bytes"].dtype) == "Int64"

    by_user = usage(session, "acme", by_user=True)
    assert list(by_user.columns) == ["workspace", "user", "quota_bytes", *COUNT_COLUMNS]


def test_logical_counts_duplicates_again_physical_counts_each_blob_once(
    session: Session, acme: Workspace
) -> None:
    totals = row(usage(session, "acme"))

    assert totals == {
        "workspace": "acme",
        "quota_bytes": None,
        "media": 3,
        "failed": 1,
        "images": 2,
        "videos": 1,
        "models": 0,
        "documents": 0,
        "blobs": 2,
        "logical_original_bytes": 100 + 100 + 50,
        "logical_variant_bytes": 30 + 30 + 5,
        "logical_bytes": 315,
        "physical_original_bytes": 150,
        "physical_variant_bytes": 35,
        "physical_bytes": 185,
    }


def test_by_user_each_owner_pays_for_what_they_uploaded(session: Session, acme: Workspace) -> None:
    frame = usage(session, "acme", by_user=True)

    assert list(frame["user"]) == ["ann", "bob"]
    ann, bob = as_records(frame)
    assert (ann["media"], ann["blobs"], ann["logical_bytes"], ann["physical_bytes"]) == (
        2,
        2,
        185,
        185,
    )
    # bob's only live upload is a duplicate of ann's photo: he still owns its bytes.
    assert (bob["media"], bob["failed"], bob["logical_bytes"], bob["physical_bytes"]) == (
        1,
        1,
        130,
        130,
    )


def test_uploads_without_a_user_are_one_owner(session: Session, workspace: Workspace) -> None:
    blob = stored_blob(session, workspace, "anon", 40, [])
    owned(session, workspace, blob, None)
    owned(session, workspace, blob, None)
    owned(session, workspace, blob, "ann")
    session.commit()

    frame = usage(session, "acme", by_user=True)

    assert list(frame["user"].isna()) == [False, True]
    anonymous = row(frame, user=None)
    assert (anonymous["media"], anonymous["logical_bytes"], anonymous["physical_bytes"]) == (
        2,
        80,
        40,
    )


def test_only_stored_blobs_hold_bytes(session: Session, workspace: Workspace) -> None:
    # Being processed: the original counts, its variants do not exist yet.
    processing = add_blob(session, workspace, "pending", size=70)
    owned(session, workspace, processing, "ann", status=MediaStatus.processing)
    # A blob that failed stores nothing, whatever its media say.
    failed = add_blob(session, workspace, "broken", size=900, status=BlobStatus.failed)
    owned(session, workspace, failed, "ann", status=MediaStatus.failed)
    # Every media of this blob is deleted: it is no longer anyone's.
    orphan = stored_blob(session, workspace, "orphan", 500, [50])
    owned(session, workspace, orphan, "ann", status=MediaStatus.deleted)
    session.commit()

    totals = row(usage(session, "acme"))

    assert (totals["media"], totals["failed"], totals["blobs"]) == (1, 1, 1)
    assert (totals["logical_bytes"], totals["physical_bytes"]) == (70, 70)


def test_every_workspace_or_one_and_none_leaks_into_another(
    session: Session, acme: Workspace
) -> None:
    globex = add_workspace(session, "globex")
    globex.quota_bytes = 10_000
    empty = add_workspace(session, "empty")
    shared = stored_blob(session, globex, "photo", 100, [1])  # same bytes as acme's photo
    owned(session, globex, shared, "ann")
    session.commit()

    everything = usage(session)

    assert list(everything["workspace"]) == ["acme", "empty", "globex"]
    assert row(everything, workspace="globex")["physical_bytes"] == 101
    assert row(everything, workspace="globex")["quota_bytes"] == 10_000
    assert row(everything, workspace=empty.slug)["media"] == 0
    assert row(usage(session, "acme"))["physical_bytes"] == 185
    assert usage(session, "empty", by_user=True).empty
    assert usage(session, "nobody").empty


def test_records_are_plain_json(session: Session, acme: Workspace) -> None:
    records = as_records(usage(session, "acme", by_user=True))
    assert json.loads(json.dumps(records)) == records
    assert all(type(record["media"]) is int for record in records)
