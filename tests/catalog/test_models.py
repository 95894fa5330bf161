from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, InvalidRequestError, StatementError
from sqlalchemy.orm import Session, selectinload

from mediamill.catalog.models import (
    Attachment,
    AuditEvent,
    Blob,
    BlobStatus,
    Media,
    MediaStatus,
    Variant,
    Workspace,
)
from tests.catalog.factories import add_blob, add_media, add_workspace, new_variant


def test_defaults(session: Session, workspace: Workspace) -> None:
    blob = add_blob(session, workspace)
    media = add_media(session, workspace, blob)
    session.commit()

    assert isinstance(media.id, uuid.UUID)
    assert media.status is MediaStatus.pending
    assert media.meta == {}
    assert blob.status is BlobStatus.processing
    assert blob.meta == {}
    assert media.created_at.tzinfo is UTC
    assert media.updated_at >= media.created_at


def test_enums_are_stored_as_their_values(session: Session, workspace: Workspace) -> None:
    add_media(session, workspace, status=MediaStatus.ready)
    session.commit()
    assert session.execute(sa.text("SELECT status FROM media")).scalar_one() == "ready"


def test_unknown_enum_value_is_refused_by_the_database(
    session: Session, workspace: Workspace
) -> None:
    # Bypasses the ORM's own validation: the CHECK constraint is what protects raw SQL.
    media = add_media(session, workspace)
    session.commit()
    with pytest.raises(IntegrityError):
        session.execute(
            sa.text("UPDATE media SET status = 'sideways' WHERE id = :id"),
            {"id": media.id.hex},
        )
    session.rollback()


def test_one_blob_per_workspace_and_hash(session: Session, workspace: Workspace) -> None:
    add_blob(session, workspace, "cat")
    session.commit()
    with pytest.raises(IntegrityError):
        add_blob(session, workspace, "cat")
    session.rollback()

    # The same bytes in another workspace are another blob.
    other = add_workspace(session, "globex")
    add_blob(session, other, "cat")
    session.commit()
    assert session.scalar(sa.select(sa.func.count()).select_from(Blob)) == 2


def test_sha256_must_be_64_characters(session: Session, workspace: Workspace) -> None:
    with pytest.raises(IntegrityError):
        add_blob(session, workspace, sha256="abc")
    session.rollback()


def test_sizes_beyond_32_bits(session: Session, workspace: Workspace) -> None:
    big = 5 * 2**30 * 1024  # 5 TiB
    blob = add_blob(session, workspace, size=big)
    session.commit()
    session.expire_all()
    assert session.get(Blob, blob.id).size == big  # type: ignore[union-attr]


def test_negative_size_is_refused(session: Session, workspace: Workspace) -> None:
    with pytest.raises(IntegrityError):
        add_blob(session, workspace, size=-1)
    session.rollback()


def test_one_variant_per_blob_name_format_and_spec_version(
    session: Session, workspace: Workspace
) -> None:
    blob = add_blob(session, workspace)
    session.add(new_variant(blob, "optimized", "webp"))
    session.add(new_variant(blob, "optimized", "avif"))  # another format
    session.add(new_variant(blob, "optimized", "webp", spec_version="v2"))  # another spec
    session.commit()

    session.add(new_variant(blob, "optimized", "webp", key="variants/again.webp"))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def test_deleting_a_blob_cascades_to_variants_and_unlinks_media(
    session: Session, workspace: Workspace
) -> None:
    blob = add_blob(session, workspace)
    session.add_all([new_variant(blob, "optimized"), new_variant(blob, "thumbnail")])
    media = add_media(session, workspace, blob, status=MediaStatus.purged)
    session.commit()

    # variants were never loaded: passive_deletes leaves them to ON DELETE CASCADE.
    session.delete(blob)
    session.commit()
    session.expire_all()

    assert session.scalar(sa.select(sa.func.count()).select_from(Variant)) == 0
    assert session.get(Media, media.id).blob_id is None  # type: ignore[union-attr]


def test_deleting_media_cascades_to_attachments_not_audit(
    session: Session, workspace: Workspace
) -> None:
    media = add_media(session, workspace)
    session.add_all(
        [
            Attachment(
                workspace_id=workspace.id,
                media_id=media.id,
                entity_type="product",
                entity_id="sku-1",
                position=0,
            ),
            AuditEvent(
                workspace_id=workspace.id,
                action="media.created",
                media_id=media.id,
                details={"source": "test"},
            ),
        ]
    )
    session.commit()

    session.delete(media)
    session.commit()

    assert session.scalar(sa.select(sa.func.count()).select_from(Attachment)) == 0
    event = session.scalars(sa.select(AuditEvent)).one()
    assert event.media_id == media.id
    assert event.details == {"source": "test"}


def test_one_attachment_per_media_and_entity(session: Session, workspace: Workspace) -> None:
    media = add_media(session, workspace)

    def attach(entity_id: str) -> None:
        session.add(
            Attachment(
                workspace_id=workspace.id,
                media_id=media.id,
                entity_type="product",
                entity_id=entity_id,
            )
        )
        session.flush()

    attach("sku-1")
    attach("sku-2")
    with pytest.raises(IntegrityError):
        attach("sku-1")
    session.rollback()


def test_workspace_slug_is_unique(session: Session, workspace: Workspace) -> None:
    with pytest.raises(IntegrityError):
        add_workspace(session, workspace.slug)
    session.rollback()


def test_foreign_keys_are_enforced(session: Session) -> None:
    session.add(Media(workspace_id=12345))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def test_timestamps_come_back_aware_in_utc(session: Session, workspace: Workspace) -> None:
    paris = timezone(timedelta(hours=2))
    written = datetime(2024, 6, 1, 14, 30, 15, 123456, tzinfo=paris)
    media = add_media(session, workspace, deleted_at=written)
    session.commit()
    session.expunge_all()

    read = session.get(Media, media.id)
    assert read is not None
    assert read.deleted_at == written
    assert read.deleted_at is not None
    assert read.deleted_at.tzinfo is UTC
    assert read.deleted_at.hour == 12
    assert read.created_at.tzinfo is UTC


def test_timestamp_comparisons_in_queries(session: Session, workspace: Workspace) -> None:
    old = add_media(session, workspace, created_at=datetime(2024, 1, 1, 12, tzinfo=UTC))
    add_media(session, workspace, created_at=datetime(2024, 1, 1, 14, tzinfo=UTC))
    session.commit()

    def created_before(cutoff: datetime) -> list[uuid.UUID]:
        return list(session.scalars(sa.select(Media.id).where(Media.created_at < cutoff)))

    # 13:30 at UTC+2 is 11:30 UTC, before both; the offset is honoured, not dropped.
    assert created_before(datetime(2024, 1, 1, 13, 30, tzinfo=timezone(timedelta(hours=2)))) == []
    assert created_before(datetime(2024, 1, 1, 13, tzinfo=UTC)) == [old.id]


def test_naive_datetimes_are_refused(session: Session, workspace: Workspace) -> None:
    with pytest.raises(StatementError, match="tz-aware"):
        add_media(session, workspace, deleted_at=datetime(2024, 1, 1))
    session.rollback()


def test_json_metadata_round_trip(session: Session, workspace: Workspace) -> None:
    meta = {"exif": {"Make": "Canon", "ISO": 200}, "tags": ["a", "b"], "ok": True, "r": 0.1}
    # Integers past 64 bits: a fast decoder that read them as floats would lose digits.
    meta |= {"big": 2**70, "below": -(2**63) - 1, "top": 2**64 - 1}
    media = add_media(session, workspace, meta=meta)
    session.commit()
    session.expunge_all()
    stored = session.get(Media, media.id)
    assert stored is not None
    assert stored.meta == meta
    assert isinstance(stored.meta["big"], int)


def test_relationships_refuse_lazy_loading(session: Session, workspace: Workspace) -> None:
    blob = add_blob(session, workspace)
    session.add(new_variant(blob))
    media = add_media(session, workspace, blob)
    session.commit()
    session.expunge_all()

    plain = session.get(Media, media.id)
    assert plain is not None
    with pytest.raises(InvalidRequestError):
        _ = plain.blob
    session.expunge_all()

    loaded = session.scalars(
        sa.select(Media)
        .where(Media.id == media.id)
        .options(
            selectinload(Media.blob).selectinload(Blob.variants),
            selectinload(Media.workspace),
            selectinload(Media.attachments),
        )
    ).one()
    assert loaded.blob is not None
    assert [v.name for v in loaded.blob.variants] == ["optimized"]
    assert loaded.workspace.slug == "acme"
    assert loaded.attachments == []


def test_sha256_is_indexed_on_its_own(session: Session) -> None:
    # Lookups by hash across workspaces cannot use the (workspace_id, sha256) constraint.
    indexes = sa.inspect(session.get_bind()).get_indexes("blobs")
    assert ["sha256"] in [index["column_names"] for index in indexes]


def test_a_value_longer_than_its_column_is_refused_on_every_backend(session: Session) -> None:
    # PostgreSQL enforces VARCHAR(n), SQLite would store the value whole: the catalog
    # refuses it first, so a workspace slug that works embedded works in production too.
    session.add(Workspace(slug="s" * 65, name="Too long"))
    with pytest.raises(ValueError, match=r"workspaces\.slug holds at most 64 characters, not 65"):
        session.flush()
    session.rollback()

    session.add(Workspace(slug="s" * 64, name="n" * 255))
    session.commit()
    assert session.scalar(sa.select(sa.func.length(Workspace.slug))) == 64


def test_an_update_to_a_value_longer_than_its_column_is_refused(
    session: Session, workspace: Workspace
) -> None:
    blob = add_blob(session, workspace)
    media = add_media(session, workspace, blob, original_filename="cat.jpg")
    session.commit()

    media.original_filename = "é" * 256  # characters, not bytes, as PostgreSQL counts them
    with pytest.raises(ValueError, match=r"media\.original_filename holds at most 255"):
        session.flush()
    session.rollback()
    assert session.get(Media, media.id).original_filename == "cat.jpg"  # type: ignore[union-attr]
