"""Read side of ``/graphql``: recentMedia pages and filters, media(id), usage, auth.

One app for the module: three files are ingested through the API (a duplicate among them)
and a dozen older rows of other media types are written straight to the catalog, so
paging has something to page through without ingesting it all.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from mediamill.catalog import access
from mediamill.catalog.base import utcnow
from mediamill.catalog.models import (
    ApiToken,
    AuditEvent,
    Blob,
    Media,
    MediaStatus,
    MediaType,
    Variant,
    Workspace,
)
from mediamill.catalog.repository import find_workspace
from mediamill.media.samples import photo_jpeg
from tests.api.conftest import Api, module_api

CREATE = """
mutation($input: MediaCreateInput!) {
  mediaCreate(input: $input) { media { id status } userErrors { field code message } }
}"""
NODE = """id mediaType status error { code message } filename alt uploader mimeType size
  width height placeholder sha256 metadata createdAt updatedAt
  variants { name format mimeType width height size url }
  preview { name url }"""
PAGE = """
query($first: Int, $after: String, $mediaType: MediaType, $entity: EntityInput, $search: String) {
  recentMedia(first: $first, after: $after, mediaType: $mediaType, entity: $entity,
              search: $search) {
    edges { cursor node { id createdAt } }
    nodes { id filename mediaType status }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""
SHOW = f"query($id: ID!) {{ media(id: $id) {{ {NODE} }} }}"
USAGE = "{ usage { mediaCount failedCount blobCount logicalBytes physicalBytes quotaBytes } }"
SHOE = photo_jpeg(96, 64, seed=3)
HAT = photo_jpeg(80, 60, seed=4)
OLD = datetime(2024, 6, 1, tzinfo=UTC)


def upload(api: Api, token: str, data: bytes, filename: str, **fields: Any) -> dict[str, Any]:
    """``mediaCreate(input: {file})`` as a GraphQL multipart request."""
    operations = {"query": CREATE, "variables": {"input": {"file": None, **fields}}}
    response = api.client.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": (filename, data, "application/octet-stream")},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()["data"]["mediaCreate"]
    assert payload["userErrors"] == [], payload
    return payload


@dataclass
class Library:
    api: Api
    token: str
    shoe: str
    copy: str
    hat: str
    direct: list[Media]  # written to the catalog, oldest first
    failed: str
    deleted: str

    def page(self, **variables: Any) -> dict[str, Any]:
        body = self.api.graphql(self.token, PAGE, variables)
        assert "errors" not in body, body
        connection: dict[str, Any] = body["data"]["recentMedia"]
        return connection

    def all_ids(self, first: int, **variables: Any) -> list[str]:
        ids: list[str] = []
        after = None
        for _ in range(50):
            page = self.page(first=first, after=after, **variables)
            ids += [node["id"] for node in page["nodes"]]
            if not page["pageInfo"]["hasNextPage"]:
                return ids
            after = page["pageInfo"]["endCursor"]
        raise AssertionError("paging did not end")


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, prefect_api: str) -> Iterator[Library]:
    with module_api(tmp_path_factory, "queries-home") as api:
        token = api.token("acme", "ana", ("write",))
        direct, failed, deleted = _direct_rows(api)
        shoe = upload(
            api,
            token,
            SHOE,
            "red-shoe.jpg",
            alt="A red shoe",
            entity={"type": "product", "id": "42"},
        )
        hat = upload(api, token, HAT, "blue_hat.jpg")
        api.settle()
        copy = upload(api, token, SHOE, "red-shoe-again.jpg")  # the same bytes again
        api.settle()
        yield Library(
            api,
            token,
            shoe["media"]["id"],
            copy["media"]["id"],
            hat["media"]["id"],
            direct,
            failed,
            deleted,
        )


def _direct_rows(api: Api) -> tuple[list[Media], str, str]:
    kinds = [MediaType.video] * 4 + [MediaType.document] * 4 + [MediaType.model] * 3
    extension = {MediaType.video: "mp4", MediaType.document: "pdf", MediaType.model: "glb"}
    with api.services.writing() as session:
        workspace = find_workspace(session, "acme")
        assert workspace is not None
        rows = [
            Media(
                id=uuid.uuid4(),
                workspace_id=workspace.id,
                original_filename=f"{kind.value}-{i}.{extension[kind]}",
                media_type=kind,
                status=MediaStatus.ready,
                meta={},
                created_at=OLD + timedelta(hours=i),
            )
            for i, kind in enumerate(kinds)
        ]
        failed = Media(
            workspace_id=workspace.id,
            original_filename="broken.jpg",
            media_type=MediaType.image,
            status=MediaStatus.failed,
            error_code="corrupt",
            error_message="bad bytes",
            meta={},
            created_at=OLD - timedelta(days=1),
        )
        deleted = Media(
            workspace_id=workspace.id,
            original_filename="gone-shoe.jpg",
            media_type=MediaType.image,
            status=MediaStatus.deleted,
            meta={},
            created_at=OLD + timedelta(days=30),
        )
        session.add_all([*rows, failed, deleted])
        session.flush()
        session.expunge_all()
        return rows, str(failed.id), str(deleted.id)


def _media(api: Api, media_id: str) -> Media:
    with api.services.reading() as session:
        row = session.get(Media, uuid.UUID(media_id))
        assert row is not None
        session.expunge(row)
        return row


def test_ingested_media_are_ready(library: Library) -> None:
    for media_id in (library.shoe, library.copy, library.hat):
        shown = library.api.graphql(library.token, SHOW, {"id": media_id})["data"]["media"]
        assert shown["status"] == "READY", shown


def test_recent_media_shape_and_order(library: Library) -> None:
    page = library.page(first=5)
    edges, nodes, info = page["edges"], page["nodes"], page["pageInfo"]
    # Newest first: the three uploads (last one first), then the newest catalog rows.
    expected = [library.copy, library.hat, library.shoe] + [
        str(m.id) for m in library.direct[::-1][:2]
    ]
    assert [e["node"]["id"] for e in edges] == expected
    assert [n["id"] for n in nodes] == expected
    stamps = [datetime.fromisoformat(e["node"]["createdAt"]) for e in edges]
    assert stamps == sorted(stamps, reverse=True)
    assert len({e["cursor"] for e in edges}) == 5
    assert info == {
        "hasNextPage": True,
        "hasPreviousPage": False,
        "startCursor": edges[0]["cursor"],
        "endCursor": edges[-1]["cursor"],
    }
    assert nodes[0] == {
        "id": library.copy,
        "filename": "red-shoe-again.jpg",
        "mediaType": "IMAGE",
        "status": "READY",
    }


def test_media_node_fields(library: Library) -> None:
    shown = library.api.graphql(library.token, SHOW, {"id": library.shoe})["data"]["media"]
    assert shown["id"] == library.shoe  # the id the CLI prints: the catalog's UUID
    assert _media(library.api, library.shoe).id == uuid.UUID(library.shoe)
    assert shown["mediaType"] == "IMAGE"
    assert shown["status"] == "READY"
    assert shown["error"] is None
    assert shown["filename"] == "red-shoe.jpg"
    assert shown["alt"] == "A red shoe"
    assert shown["uploader"] == "ana"
    assert shown["mimeType"] == "image/jpeg"
    assert shown["size"] == len(SHOE)
    assert (shown["width"], shown["height"]) == (96, 64)
    assert shown["placeholder"]
    assert len(shown["sha256"]) == 64
    assert isinstance(shown["metadata"], dict)
    variants = shown["variants"]
    assert {"thumb", "optimized"} <= {v["name"] for v in variants}
    for variant in variants:
        assert variant["url"].startswith("http://testserver/files/tenants/")
        assert variant["width"] > 0
        assert variant["size"] > 0
    assert shown["preview"]["name"] == "thumb"
    # The CDN URL really serves the variant.
    thumb = library.api.client.get(shown["preview"]["url"])
    assert thumb.status_code == 200
    assert thumb.headers["x-content-type-options"] == "nosniff"


def test_pages_visit_every_live_media_once(library: Library) -> None:
    expected = [library.copy, library.hat, library.shoe]
    expected += [str(m.id) for m in library.direct[::-1]] + [library.failed]
    for first in (1, 4, 5, 15, 100):
        assert library.all_ids(first) == expected, first
    assert library.deleted not in expected


def test_page_info_through_pages(library: Library) -> None:
    first = library.page(first=6)
    second = library.page(first=6, after=first["pageInfo"]["endCursor"])
    third = library.page(first=6, after=second["pageInfo"]["endCursor"])
    assert [len(p["nodes"]) for p in (first, second, third)] == [6, 6, 3]
    assert [p["pageInfo"]["hasNextPage"] for p in (first, second, third)] == [True, True, False]
    assert [p["pageInfo"]["hasPreviousPage"] for p in (first, second, third)] == [
        False,
        True,
        True,
    ]
    # A cursor taken from the middle of a page continues right after that edge.
    middle = first["edges"][2]
    resumed = library.page(first=2, after=middle["cursor"])
    assert [n["id"] for n in resumed["nodes"]] == [e["node"]["id"] for e in first["edges"][3:5]]
    # Past the end: an empty page, no cursors.
    end = library.page(first=5, after=third["pageInfo"]["endCursor"])
    assert end["nodes"] == []
    assert end["edges"] == []
    assert end["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": None,
        "endCursor": None,
    }


def test_filters(library: Library) -> None:
    images = library.all_ids(2, mediaType="IMAGE")
    assert images == [library.copy, library.hat, library.shoe, library.failed]
    videos = library.all_ids(3, mediaType="VIDEO")
    assert videos == [str(m.id) for m in library.direct[:4][::-1]]
    assert library.all_ids(10, mediaType="DOCUMENT") == [
        str(m.id) for m in library.direct[4:8][::-1]
    ]
    assert library.all_ids(10, entity={"type": "product", "id": "42"}) == [library.shoe]
    assert library.all_ids(10, entity={"type": "product", "id": "43"}) == []
    assert library.all_ids(10, entity={"type": "PRODUCT", "id": "42"}) == []
    assert library.all_ids(10, search="shoe") == [library.copy, library.shoe]
    assert library.all_ids(10, search="SHOE", mediaType="IMAGE") == [library.copy, library.shoe]
    assert library.all_ids(10, search="shoe", mediaType="VIDEO") == []
    # LIKE wildcards are plain characters.
    assert library.all_ids(10, search="_") == [library.hat]
    assert library.all_ids(10, search="%") == []
    assert library.all_ids(10, search="video-1") == [str(library.direct[1].id)]


def test_search_longer_than_the_cap_is_an_error(library: Library) -> None:
    body = library.api.graphql(library.token, PAGE, {"first": 5, "search": "x" * 256})
    assert body["data"] is None
    assert "longer than 255" in body["errors"][0]["message"]


@pytest.mark.parametrize("first", [0, -1, 101, 1000])
def test_first_out_of_range_is_an_error(library: Library, first: int) -> None:
    body = library.api.graphql(library.token, PAGE, {"first": first})
    assert body["data"] is None
    assert body["errors"][0]["message"] == "first must be between 1 and 100"
    assert body["errors"][0]["path"] == ["recentMedia"]


@pytest.mark.parametrize(
    "cursor",
    [
        "zzz",
        "!!!!",
        "bm90LWEtY3Vyc29y",  # "not-a-cursor"
        "MjAyNC0wMS0wMXxub3QtYS11dWlk",  # "2024-01-01|not-a-uuid"
        "fDEyMzQ1Njc4LTEyMzQtMTIzNC0xMjM0LTEyMzQ1Njc4OTAxMg",  # "|<uuid>", no time
        "/w",  # not UTF-8
    ],
)
def test_invalid_cursor_is_an_error(library: Library, cursor: str) -> None:
    body = library.api.graphql(library.token, PAGE, {"first": 5, "after": cursor})
    assert body["data"] is None
    assert body["errors"][0]["message"].startswith("invalid cursor")


@pytest.mark.parametrize(
    "media_id", ["garbage", "", "1", "../etc/passwd", str(uuid.uuid4()), "' OR 1=1 --"]
)
def test_media_by_unknown_or_garbage_id_is_null(library: Library, media_id: str) -> None:
    body = library.api.graphql(library.token, SHOW, {"id": media_id})
    assert body == {"data": {"media": None}}


def test_media_by_id_shows_failed_and_deleted_rows_of_the_workspace(library: Library) -> None:
    failed = library.api.graphql(library.token, SHOW, {"id": library.failed})["data"]["media"]
    assert failed["status"] == "FAILED"
    assert failed["error"] == {"code": "corrupt", "message": "bad bytes"}
    assert failed["variants"] == []
    deleted = library.api.graphql(library.token, SHOW, {"id": library.deleted})["data"]["media"]
    assert deleted["status"] == "DELETED"


def test_usage_counts_after_ingesting(library: Library) -> None:
    body = library.api.graphql(library.token, USAGE)
    assert "errors" not in body, body
    usage = body["data"]["usage"]
    with library.api.services.reading() as session:
        workspace = find_workspace(session, "acme")
        assert workspace is not None
        blobs = list(session.scalars(select(Blob).where(Blob.workspace_id == workspace.id)))
        stored = {
            blob.id: blob.size
            + int(
                session.scalar(select(func.sum(Variant.size)).where(Variant.blob_id == blob.id))
                or 0
            )
            for blob in blobs
        }
        ready_blobs = session.scalars(
            select(Media.blob_id).where(
                Media.workspace_id == workspace.id, Media.status == MediaStatus.ready
            )
        ).all()
    per_media = [stored[blob_id] for blob_id in ready_blobs if blob_id is not None]
    assert len(blobs) == 2  # shoe, hat: the second shoe reused its blob
    physical = sum(stored.values())
    assert usage["mediaCount"] == 3 + len(library.direct)
    assert usage["failedCount"] == 1
    assert usage["blobCount"] == 2
    # Byte counts are strings: GraphQL's Int stops at 2^31.
    assert usage["physicalBytes"] == str(physical)
    assert usage["logicalBytes"] == str(sum(per_media))
    assert int(usage["logicalBytes"]) > int(usage["physicalBytes"]) > len(SHOE) + len(HAT)
    assert usage["quotaBytes"] is None  # unlimited

    with library.api.services.writing() as session:
        workspace = find_workspace(session, "acme")
        assert workspace is not None
        workspace.quota_bytes = 5 * 2**31
    try:
        limited = library.api.graphql(library.token, USAGE)["data"]["usage"]
        assert limited["quotaBytes"] == str(5 * 2**31)
    finally:
        with library.api.services.writing() as session:
            workspace = find_workspace(session, "acme")
            assert workspace is not None
            workspace.quota_bytes = None


def test_usage_of_a_workspace_without_media(library: Library) -> None:
    token = library.api.token("empty-co", "eve", ("read",))
    usage = library.api.graphql(token, USAGE)["data"]["usage"]
    assert usage == {
        "mediaCount": 0,
        "failedCount": 0,
        "blobCount": 0,
        "logicalBytes": "0",
        "physicalBytes": "0",
        "quotaBytes": None,
    }


def test_requests_without_a_valid_token_get_401(library: Library) -> None:
    api = library.api
    revoked = api.token("acme", "ana", ("admin",))
    expired = api.token("acme", "ana", ("admin",))
    with api.services.writing() as session:
        for token, column in ((revoked, "revoked_at"), (expired, "expires_at")):
            row = session.scalar(
                select(ApiToken).where(ApiToken.token_hash == access.token_hash(token))
            )
            assert row is not None
            setattr(row, column, utcnow() - timedelta(seconds=1))
    headers: list[dict[str, str]] = [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {library.token}"},
        {"Authorization": f"Bearer {library.token}x"},
        {"Authorization": f"Bearer {access.token_hash(library.token)}"},
        {"Authorization": "Bearer mm_unknown"},
        {"Authorization": f"Bearer {revoked}"},
        {"Authorization": f"Bearer {expired}"},
    ]
    for header in headers:
        for query in (USAGE, 'mutation { mediaDelete(id: "x") { userErrors { code } } }'):
            response = api.client.post("/graphql", json={"query": query}, headers=header)
            assert response.status_code == 401, (header, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            assert "data" not in response.json()
    # The scheme is case-insensitive; the valid token still works.
    ok = api.client.post(
        "/graphql", json={"query": USAGE}, headers={"Authorization": f"bearer {library.token}"}
    )
    assert ok.status_code == 200
    assert ok.json()["data"]["usage"]["blobCount"] == 2


def test_read_only_token_cannot_mutate(library: Library) -> None:
    api = library.api
    reader = api.token("acme", "rita", ("read",))
    assert library.page(first=1)["nodes"]  # reading works for the same workspace
    assert api.graphql(reader, SHOW, {"id": library.hat})["data"]["media"]["id"] == library.hat
    with api.services.reading() as session:
        before_media = session.scalar(select(func.count()).select_from(Media))
        before_audit = session.scalar(select(func.count()).select_from(AuditEvent))
    hat = {"id": library.hat}
    mutations: list[tuple[str, dict[str, Any]]] = [
        ('mutation($id: ID!) { mediaUpdate(id: $id, alt: "x") { media { id } } }', hat),
        (
            'mutation($id: ID!) { mediaAttach(id: $id, entity: {type: "product", id: "1"}) '
            "{ media { id } } }",
            hat,
        ),
        (
            'mutation($id: ID!) { mediaDetach(id: $id, entity: {type: "product", id: "42"}) '
            "{ media { id } } }",
            {"id": library.shoe},
        ),
        ("mutation($id: ID!) { mediaDelete(id: $id) { media { id } } }", hat),
        ("mutation($id: ID!) { mediaRestore(id: $id) { media { id } } }", {"id": library.deleted}),
        (
            'mutation { mediaCreateFromUrl(url: "https://example.com/a.jpg") { media { id } } }',
            {},
        ),
        (
            'mutation { stagedUploadsCreate(input: [{filename: "a.jpg", fileSize: 10}]) '
            "{ stagedTargets { url } } }",
            {},
        ),
        (
            'mutation { mediaCreate(input: {originalSource: "http://testserver/uploads/x"}) '
            "{ media { id } } }",
            {},
        ),
    ]
    for mutation, variables in mutations:
        body = api.graphql(reader, mutation, variables)
        assert body["data"] is None, body
        assert body["errors"][0]["message"] == "this token lacks the 'write' scope"
    with api.services.reading() as session:
        assert session.scalar(select(func.count()).select_from(Media)) == before_media
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == before_audit
    hat_row = _media(api, library.hat)
    assert hat_row.alt_text is None
    assert hat_row.status == MediaStatus.ready
    assert _media(api, library.deleted).status == MediaStatus.deleted
    assert library.all_ids(10, entity={"type": "product", "id": "42"}) == [library.shoe]


def test_tokens_of_another_workspace_see_nothing_here(library: Library) -> None:
    other = library.api.token("globex", "gil", ("admin",))
    body = library.api.graphql(other, PAGE, {"first": 100})
    assert body["data"]["recentMedia"]["nodes"] == []
    assert library.api.graphql(other, SHOW, {"id": library.shoe}) == {"data": {"media": None}}
    with library.api.services.reading() as session:
        assert session.scalar(select(Workspace.id).where(Workspace.slug == "globex")) is not None
