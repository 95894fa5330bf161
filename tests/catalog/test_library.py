"""``card_page`` on a real migrated catalog: order, keyset pages, filters, workspace scope,
and each media shaped as ``media_record`` shapes it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from mediamill.catalog import repository as repo
from mediamill.catalog.library import MediaCard, Position, card_page
from mediamill.catalog.lifecycle import Entity
from mediamill.catalog.models import Attachment, Media, MediaStatus, MediaType, Workspace
from mediamill.catalog.views import media_record
from tests.catalog.factories import add_blob, add_media, add_workspace, new_variant

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _media(
    session: Session,
    workspace: Workspace,
    minute: int,
    *,
    name: str = "photo.jpg",
    media_type: MediaType = MediaType.image,
    status: MediaStatus = MediaStatus.ready,
    media_id: uuid.UUID | None = None,
) -> Media:
    return add_media(
        session,
        workspace,
        id=media_id or uuid.uuid4(),
        original_filename=name,
        media_type=media_type,
        status=status,
        meta={},
        created_at=T0 + timedelta(minutes=minute),
    )


def _attach(session: Session, media: Media, entity: Entity, position: int = 0) -> None:
    session.add(
        Attachment(
            workspace_id=media.workspace_id,
            media_id=media.id,
            entity_type=entity.type,
            entity_id=entity.id,
            position=position,
        )
    )
    session.flush()


def _all_pages(
    session: Session, workspace_id: int, first: int, **filters: object
) -> list[list[MediaCard]]:
    pages: list[list[MediaCard]] = []
    after: Position | None = None
    while True:
        page = card_page(session, workspace_id, first=first, after=after, **filters)  # type: ignore[arg-type]
        pages.append(page.items)
        if not page.has_next:
            return pages
        assert len(page.items) == first
        last = page.items[-1]
        after = Position(last.created_at, last.id)
        assert len(pages) < 100, "pagination does not terminate"


def _ids(items: list[MediaCard]) -> list[uuid.UUID]:
    return [m.id for m in items]


def test_newest_first_with_ids_breaking_ties(session: Session) -> None:
    acme = add_workspace(session, "acme")
    old = _media(session, acme, 1)
    new = _media(session, acme, 3)
    # Two rows at the same instant: the larger id comes first.
    low = _media(session, acme, 2, media_id=uuid.UUID(int=1))
    high = _media(session, acme, 2, media_id=uuid.UUID(int=2))
    page = card_page(session, acme.id, first=10)
    assert _ids(page.items) == [new.id, high.id, low.id, old.id]
    assert page.has_next is False


def test_keyset_pages_visit_every_row_exactly_once(session: Session) -> None:
    acme = add_workspace(session, "acme")
    made = [_media(session, acme, minute) for minute in range(20)]
    # Ties straddling a page boundary (rows 10 and 11 of the order share a timestamp).
    made += [_media(session, acme, 50) for _ in range(5)]
    session.commit()
    expected = sorted(made, key=lambda m: (m.created_at, m.id), reverse=True)

    pages = _all_pages(session, acme.id, first=10)
    assert [len(p) for p in pages] == [10, 10, 5]
    seen = [m.id for page in pages for m in page]
    assert seen == _ids(expected)
    assert len(set(seen)) == 25


def test_has_next_is_exact_at_the_boundary(session: Session) -> None:
    acme = add_workspace(session, "acme")
    for minute in range(10):
        _media(session, acme, minute)
    full = card_page(session, acme.id, first=10)
    assert len(full.items) == 10
    assert full.has_next is False
    short = card_page(session, acme.id, first=9)
    assert len(short.items) == 9
    assert short.has_next is True
    last = short.items[-1]
    rest = card_page(session, acme.id, first=9, after=Position(last.created_at, last.id))
    assert len(rest.items) == 1
    assert rest.has_next is False


def test_rows_added_after_a_cursor_do_not_shift_the_next_page(session: Session) -> None:
    acme = add_workspace(session, "acme")
    rows = [_media(session, acme, minute) for minute in range(6)]
    first = card_page(session, acme.id, first=3)
    last = first.items[-1]
    _media(session, acme, 100)  # newer than everything: belongs before page 1
    second = card_page(session, acme.id, first=3, after=Position(last.created_at, last.id))
    assert _ids(second.items) == [rows[2].id, rows[1].id, rows[0].id]


def test_media_type_filter(session: Session) -> None:
    acme = add_workspace(session, "acme")
    image = _media(session, acme, 1, media_type=MediaType.image)
    video = _media(session, acme, 2, media_type=MediaType.video)
    model = _media(session, acme, 3, media_type=MediaType.model)
    image2 = _media(session, acme, 4, media_type=MediaType.image)
    assert _ids(card_page(session, acme.id, first=10, media_type=MediaType.image).items) == [
        image2.id,
        image.id,
    ]
    assert _ids(card_page(session, acme.id, first=10, media_type=MediaType.video).items) == [
        video.id
    ]
    assert _ids(card_page(session, acme.id, first=10, media_type=MediaType.model).items) == [
        model.id
    ]
    assert card_page(session, acme.id, first=10, media_type=MediaType.document).items == []


def test_media_type_filter_pages(session: Session) -> None:
    acme = add_workspace(session, "acme")
    images = [_media(session, acme, 2 * i, media_type=MediaType.image) for i in range(7)]
    for i in range(7):
        _media(session, acme, 2 * i + 1, media_type=MediaType.video)
    pages = _all_pages(session, acme.id, first=3, media_type=MediaType.image)
    assert [m.id for p in pages for m in p] == _ids(images[::-1])


def test_entity_filter_keeps_the_gallery_of_that_entity_only(session: Session) -> None:
    acme = add_workspace(session, "acme")
    shoe, hat = Entity("product", "42"), Entity("product", "43")
    a = _media(session, acme, 1)
    b = _media(session, acme, 2)
    c = _media(session, acme, 3)
    _attach(session, a, shoe, 0)
    _attach(session, b, shoe, 1)
    _attach(session, b, hat, 0)  # a media in two galleries appears once in each
    _attach(session, c, hat, 1)
    assert _ids(card_page(session, acme.id, first=10, entity=shoe).items) == [b.id, a.id]
    assert _ids(card_page(session, acme.id, first=10, entity=hat).items) == [c.id, b.id]
    assert card_page(session, acme.id, first=10, entity=Entity("product", "4")).items == []
    assert card_page(session, acme.id, first=10, entity=Entity("page", "42")).items == []


def test_search_matches_filenames_case_insensitively(session: Session) -> None:
    acme = add_workspace(session, "acme")
    shoe = _media(session, acme, 1, name="Red-Shoe.JPG")
    _media(session, acme, 2, name="hat.png")
    assert _ids(card_page(session, acme.id, first=10, search="shoe").items) == [shoe.id]
    assert _ids(card_page(session, acme.id, first=10, search="RED-s").items) == [shoe.id]
    assert card_page(session, acme.id, first=10, search="boot").items == []


def test_search_escapes_like_wildcards(session: Session) -> None:
    acme = add_workspace(session, "acme")
    percent = _media(session, acme, 1, name="50%off.jpg")
    underscore = _media(session, acme, 2, name="a_b.jpg")
    backslash = _media(session, acme, 3, name="c\\d.jpg")
    _media(session, acme, 4, name="50 off.jpg")
    _media(session, acme, 5, name="axb.jpg")
    _media(session, acme, 6, name="cd.jpg")

    def found(text: str) -> list[uuid.UUID]:
        return _ids(card_page(session, acme.id, first=10, search=text).items)

    assert found("%") == [percent.id]
    assert found("50%") == [percent.id]
    assert found("_") == [underscore.id]
    assert found("a_b") == [underscore.id]
    assert found("\\") == [backslash.id]
    assert found("c\\d") == [backslash.id]
    assert found("%%") == []


def test_deleted_and_purged_media_are_excluded(session: Session) -> None:
    acme = add_workspace(session, "acme")
    live = {
        status: _media(session, acme, i, status=status)
        for i, status in enumerate(
            [MediaStatus.pending, MediaStatus.processing, MediaStatus.ready, MediaStatus.failed]
        )
    }
    deleted = _media(session, acme, 10, status=MediaStatus.deleted)
    purged = _media(session, acme, 11, status=MediaStatus.purged)
    _attach(session, deleted, Entity("product", "1"))
    _attach(session, purged, Entity("product", "1"))
    _attach(session, live[MediaStatus.ready], Entity("product", "1"))
    seen = _ids(card_page(session, acme.id, first=10).items)
    assert set(seen) == {m.id for m in live.values()}
    assert deleted.id not in seen
    assert purged.id not in seen
    gallery = card_page(session, acme.id, first=10, entity=Entity("product", "1")).items
    assert _ids(gallery) == [live[MediaStatus.ready].id]
    assert card_page(session, acme.id, first=10, search="photo").has_next is False


def test_other_workspaces_rows_are_never_returned(session: Session) -> None:
    acme = add_workspace(session, "acme")
    globex = add_workspace(session, "globex")
    mine = [_media(session, acme, 2 * i, name=f"shoe{i}.jpg") for i in range(6)]
    theirs = [_media(session, globex, 2 * i + 1, name=f"shoe{i}.jpg") for i in range(6)]
    entity = Entity("product", "42")
    for m in mine[:2] + theirs[1:]:
        _attach(session, m, entity)
    # Their attachment rows, even if mis-scoped onto acme's workspace id, do not leak their
    # media: the media row itself must belong to the workspace asked for.
    session.add(
        Attachment(
            workspace_id=acme.id,
            media_id=theirs[0].id,
            entity_type="product",
            entity_id="42",
            position=99,
        )
    )
    session.flush()
    theirs_ids = {m.id for m in theirs}
    mine_ids = {m.id for m in mine}

    everything = [m for page in _all_pages(session, acme.id, first=4) for m in page]
    assert _ids(everything) == _ids(mine[::-1])
    for filters in (
        {"media_type": MediaType.image},
        {"entity": entity},
        {"search": "shoe"},
    ):
        items = [m for p in _all_pages(session, acme.id, first=2, **filters) for m in p]
        assert not theirs_ids & set(_ids(items)), filters
        assert set(_ids(items)) <= mine_ids, filters
    # A position taken from the other workspace's rows only names a point in time.
    after = Position(theirs[-1].created_at, theirs[-1].id)
    assert set(_ids(card_page(session, acme.id, first=10, after=after).items)) <= mine_ids


def test_page_cards_carry_blob_facts_and_variants(session: Session) -> None:
    acme = add_workspace(session, "acme")
    blob = add_blob(session, acme)
    session.add(new_variant(blob))
    session.flush()
    add_media(session, acme, blob, status=MediaStatus.ready, meta={}, original_filename="x")
    session.commit()
    sha256, size = blob.sha256, blob.size
    session.expunge_all()
    (card,) = card_page(session, acme.id, first=1).items
    assert (card.sha256, card.size) == (sha256, size)
    assert [v.name for v in card.variants] == ["optimized"]


def _card_record(card: MediaCard) -> dict[str, object]:
    return {
        "id": str(card.id),
        "media_type": card.media_type.value if card.media_type else None,
        "status": card.status.value,
        "error": (
            {"code": card.error_code, "message": card.error_message}
            if card.error_code is not None
            else None
        ),
        "filename": card.filename,
        "uploader": card.uploader,
        "alt": card.alt,
        "sha256": card.sha256,
        "size": card.size,
        "mime_type": card.mime_type,
        "width": card.width,
        "height": card.height,
        "placeholder": card.placeholder,
        "metadata": card.metadata,
        "variants": [
            {
                "name": v.name,
                "format": v.format,
                "mime_type": v.mime_type,
                "width": v.width,
                "height": v.height,
                "size": v.size,
                "key": v.key,
            }
            for v in card.variants
        ],
        "created_at": card.created_at.isoformat(),
        "updated_at": card.updated_at.isoformat(),
    }


def _shown(record: dict[str, object]) -> dict[str, object]:
    """``media_record`` without what a card does not carry."""
    kept = {
        k: v
        for k, v in record.items()
        if k not in ("workspace", "source", "original", "flow_run_id")
    }
    kept["variants"] = [
        {k: v for k, v in variant.items() if k not in ("spec_version", "url")}
        for variant in record["variants"]  # type: ignore[attr-defined]
    ]
    return kept


def test_card_page_matches_media_record(session: Session) -> None:
    acme = add_workspace(session, "acme")
    globex = add_workspace(session, "globex")
    blob = add_blob(session, acme, meta={"duration": 3, "key_entity": "product/1"}, width=640)
    for name, fmt, width in [
        ("optimized", "webp", 1600),
        ("thumb", "jpeg", 320),
        ("thumb", "webp", 320),
    ]:
        session.add(new_variant(blob, name, fmt, width=width))
    # An older spec version of the same slot: history, not shown.
    session.add(new_variant(blob, "thumb", "jpeg", spec_version="v0", key="old", created_at=T0))
    session.flush()
    with_blob = add_media(
        session,
        acme,
        blob,
        status=MediaStatus.ready,
        meta={},
        original_filename="a.jpg",
        media_type=MediaType.image,
        created_at=T0 + timedelta(minutes=5),
    )
    failed = add_media(
        session,
        acme,
        status=MediaStatus.failed,
        meta={"sha256": "ab" * 32},
        original_filename="b.jpg",
        error_code="too_large",
        error_message=None,
        size=9,
        mime_type="image/png",
        created_at=T0 + timedelta(minutes=5),
    )
    others = [_media(session, acme, minute) for minute in (1, 2, 3)]
    _media(session, globex, 4)
    _attach(session, others[0], Entity("product", "1"))
    session.commit()
    session.expunge_all()

    for filters in (
        {},
        {"media_type": MediaType.image},
        {"entity": Entity("product", "1")},
        {"search": "b.j"},
    ):
        after = None
        while True:
            page = card_page(session, acme.id, first=2, after=after, **filters)  # type: ignore[arg-type]
            # Each card as the single-media view shapes the same row, loaded as an entity.
            entities = [repo.get_media(session, card.id, acme.id) for card in page.items]
            assert [_card_record(c) for c in page.items] == [
                _shown(media_record(m, str)) for m in entities if m is not None
            ]
            if not page.has_next:
                break
            after = Position(page.items[-1].created_at, page.items[-1].id)
    (card,) = [c for c in card_page(session, acme.id, first=10).items if c.id == with_blob.id]
    assert [(v.name, v.format) for v in card.variants] == [
        ("optimized", "webp"),
        ("thumb", "webp"),
        ("thumb", "jpeg"),
    ]
    assert "key_entity" not in card.metadata
    assert failed.id in {c.id for c in card_page(session, acme.id, first=10).items}
