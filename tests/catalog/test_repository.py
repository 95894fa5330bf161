"""The repository's writes that skip the unit of work keep the models' rules.

Claiming a blob, adding variants and finishing a blob run once per asset on a backfill's
orchestrating process, so they are plain statements on the session's connection. These
tests hold them to what the ORM gave before: defaults filled in, the unique hash deciding
races, overlong strings refused alike on both backends, every settled media audited.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mediamill.catalog import repository as repo
from mediamill.catalog.models import (
    AuditEvent,
    Blob,
    BlobStatus,
    Media,
    MediaStatus,
    Variant,
    Workspace,
)
from tests.catalog.factories import add_blob, add_media, add_workspace, blob_values


def _claim(session: Session, workspace: Workspace, content: str, **extra: Any) -> tuple[Blob, bool]:
    return repo.claim_blob(session, **blob_values(workspace, content, **extra))


def _variant(name: str, fmt: str = "webp", **fields: Any) -> repo.NewVariant:
    values: dict[str, Any] = {
        "name": name,
        "format": fmt,
        "spec_version": "v1",
        "mime_type": f"image/{fmt}",
        "width": 300,
        "height": 200,
        "size": 999,
        "key": f"variants/{name}.{fmt}",
        "encoder": "libvips",
        "library_versions": {"libvips": "8"},
    }
    return repo.NewVariant(**(values | fields))


def test_claim_inserts_a_processing_blob_with_its_defaults(
    session: Session, workspace: Workspace
) -> None:
    blob, ours = _claim(session, workspace, "cat", meta={"key_entity": {"type": "p", "id": "1"}})
    session.commit()

    assert ours
    stored = session.scalars(select(Blob)).one()
    assert stored.id == blob.id
    assert stored.status == BlobStatus.processing
    assert stored.meta == {"key_entity": {"type": "p", "id": "1"}}
    assert stored.claimed_at is not None
    assert stored.created_at is not None
    assert stored.updated_at is not None


def test_a_second_claim_of_the_same_content_gets_the_first_blob(
    session: Session, workspace: Workspace
) -> None:
    first, first_ours = _claim(session, workspace, "cat")
    second, second_ours = _claim(session, workspace, "cat", meta={"ignored": True})
    other = add_workspace(session, "other")
    elsewhere, elsewhere_ours = _claim(session, other, "cat")
    session.commit()

    assert (first_ours, second_ours, elsewhere_ours) == (True, False, True)
    assert second.id == first.id
    assert second.meta == {}
    assert elsewhere.id != first.id
    assert len(session.scalars(select(Blob)).all()) == 2


def test_claiming_leaves_pending_media_for_one_flush(
    session: Session, workspace: Workspace
) -> None:
    """No autoflush per claim: a batch's new media rows are written together at the end.

    A claim that loses to an existing blob rolls back its own savepoint only.
    """
    media = Media(workspace_id=workspace.id, status=MediaStatus.processing, meta={})
    session.add(media)
    blob, _ = _claim(session, workspace, "cat")
    again, ours = _claim(session, workspace, "cat")

    assert media in session.new
    assert (again.id, ours) == (blob.id, False)
    media.blob_id = blob.id
    session.commit()
    assert session.get(Media, media.id) is not None


def test_claim_refuses_an_overlong_string_on_every_backend(
    session: Session, workspace: Workspace
) -> None:
    with pytest.raises(ValueError, match=r"blobs\.mime_type holds at most 255 characters, not 256"):
        _claim(session, workspace, "cat", mime_type="image/" + "x" * 250)


def test_add_variants_skips_the_ones_the_blob_has(session: Session, workspace: Workspace) -> None:
    blob = add_blob(session, workspace)

    assert repo.add_variants(session, blob.id, [_variant("thumb"), _variant("tiny")]) == 2
    assert repo.add_variants(session, blob.id, [_variant("thumb"), _variant("thumb", "jpeg")]) == 1
    session.commit()

    names = session.execute(select(Variant.name, Variant.format).order_by(Variant.id)).all()
    assert [tuple(row) for row in names] == [("thumb", "webp"), ("tiny", "webp"), ("thumb", "jpeg")]
    assert repo.variant_ids(session, [blob.id]) == {
        blob.id: {("thumb", "webp", "v1"), ("tiny", "webp", "v1"), ("thumb", "jpeg", "v1")}
    }


def test_add_variants_refuses_an_overlong_encoder(session: Session, workspace: Workspace) -> None:
    blob = add_blob(session, workspace)

    with pytest.raises(ValueError, match=r"variants\.encoder holds at most 128"):
        repo.add_variants(session, blob.id, [_variant("thumb", encoder="e" * 129)])


def test_finishing_a_blob_settles_and_audits_every_waiting_media(
    session: Session, workspace: Workspace
) -> None:
    blob = add_blob(session, workspace, status=BlobStatus.processing, meta={"kept": 1})
    waiting = [
        add_media(session, workspace, blob, status=MediaStatus.processing, uploader=f"u{i}")
        for i in range(2)
    ]
    settled_before = add_media(session, workspace, blob, status=MediaStatus.failed)
    session.commit()
    updated_before = blob.updated_at

    locked = repo.lock_blob_for_finish(session, blob.id)
    repo.update_blob(
        session, locked.id, {"status": BlobStatus.ready, "metadata": {**locked.meta, "w": 2}}
    )
    ids = repo.settle_waiting_media(
        session, locked, status=MediaStatus.ready, details={"variants": 7}
    )
    session.commit()
    session.expire_all()

    assert sorted(ids) == sorted(media.id for media in waiting)
    assert locked.meta == {"kept": 1}
    stored = session.get(Blob, blob.id)
    assert stored is not None
    assert (stored.status, stored.meta) == (BlobStatus.ready, {"kept": 1, "w": 2})
    assert stored.updated_at > updated_before
    for media in waiting:
        row = session.get(Media, media.id)
        assert row is not None
        assert (row.status, row.mime_type, row.size) == (MediaStatus.ready, "image/jpeg", 3)
    still = session.get(Media, settled_before.id)
    assert still is not None
    assert still.status == MediaStatus.failed
    audits = session.execute(
        select(AuditEvent.media_id, AuditEvent.actor, AuditEvent.action, AuditEvent.details)
    ).all()
    assert sorted(tuple(row) for row in audits) == sorted(
        (media.id, media.uploader, "media.ready", {"variants": 7}) for media in waiting
    )


def test_updating_a_blob_refuses_a_name_that_is_no_column(
    session: Session, workspace: Workspace
) -> None:
    blob = add_blob(session, workspace, status=BlobStatus.processing)
    session.commit()

    with pytest.raises(ValueError, match="blobs has no column stauts"):
        repo.update_blob(session, blob.id, {"stauts": BlobStatus.ready})
    session.rollback()

    stored = session.get(Blob, blob.id)
    assert stored is not None
    assert stored.status == BlobStatus.processing


def test_locking_a_blob_that_is_gone_says_so(session: Session, workspace: Workspace) -> None:
    with pytest.raises(LookupError, match="blob 12345 vanished"):
        repo.lock_blob_for_finish(session, 12345)
