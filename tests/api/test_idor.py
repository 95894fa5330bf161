"""IDOR: workspace A acting on workspace B's media by id, cursor, alias and staged upload.

Another workspace's ids must behave exactly like ids that do not exist, with no side
effect: B's rows, attachments, blobs and audit trail are compared before and after.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from mediamill.catalog.models import Attachment, AuditEvent, Blob, Media, Variant
from mediamill.catalog.repository import find_workspace
from mediamill.media.samples import photo_jpeg
from tests.api.conftest import Api, module_api

CREATE = """
mutation($input: MediaCreateInput!) {
  mediaCreate(input: $input) { media { id status } userErrors { field code message } }
}"""
MEDIA = "id status alt filename variants { url }"
SHOW = f"query($id: ID!) {{ media(id: $id) {{ {MEDIA} }} }}"
PAGE = """
query($first: Int, $after: String, $entity: EntityInput, $search: String) {
  recentMedia(first: $first, after: $after, entity: $entity, search: $search) {
    edges { cursor node { id } }
    pageInfo { hasNextPage endCursor }
  }
}"""
PAYLOAD = "{ media { id status alt } userErrors { field code message } }"
PRODUCT = {"type": "product", "id": "1"}
MUTATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "mediaUpdate": (
        f'mutation($id: ID!) {{ mediaUpdate(id: $id, alt: "pwned") {PAYLOAD} }}',
        {},
    ),
    "mediaAttach": (
        f"mutation($id: ID!, $e: EntityInput!) {{ mediaAttach(id: $id, entity: $e) {PAYLOAD} }}",
        {"e": {"type": "product", "id": "666"}},
    ),
    "mediaDetach": (
        f"mutation($id: ID!, $e: EntityInput!) {{ mediaDetach(id: $id, entity: $e) {PAYLOAD} }}",
        {"e": PRODUCT},
    ),
    "mediaDelete": (f"mutation($id: ID!) {{ mediaDelete(id: $id) {PAYLOAD} }}", {}),
    "mediaRestore": (f"mutation($id: ID!) {{ mediaRestore(id: $id) {PAYLOAD} }}", {}),
}
NOT_FOUND = {
    "media": None,
    "userErrors": [{"field": ["id"], "code": "NOT_FOUND", "message": "media not found"}],
}
SAME_BYTES = photo_jpeg(72, 48, seed=7)


def upload(api: Api, token: str, data: bytes, filename: str, **fields: Any) -> str:
    operations = {"query": CREATE, "variables": {"input": {"file": None, **fields}}}
    response = api.client.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": (filename, data, "image/jpeg")},
        headers={"Authorization": f"Bearer {token}"},
    )
    payload = response.json()["data"]["mediaCreate"]
    assert payload["userErrors"] == [], payload
    media_id: str = payload["media"]["id"]
    return media_id


@dataclass
class Tenants:
    api: Api
    a: str  # a write token of workspace A
    a_admin: str
    b: str  # a write token of workspace B
    a_ids: list[str]  # oldest first
    b_ids: list[str]  # oldest first; b_ids[-1] is deleted
    b_live: list[str]

    def call(self, token: str, query: str, **variables: Any) -> dict[str, Any]:
        body = self.api.graphql(token, query, variables)
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    def listed(self, token: str, first: int = 2, **variables: Any) -> list[str]:
        ids: list[str] = []
        after = variables.pop("after", None)
        for _ in range(50):
            page = self.call(token, PAGE, first=first, after=after, **variables)["recentMedia"]
            ids += [edge["node"]["id"] for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                return ids
            after = page["pageInfo"]["endCursor"]
        raise AssertionError("paging did not end")

    def snapshot(self, workspace: str) -> dict[str, Any]:
        """Every row of a workspace an attack could change, column by column."""
        with self.api.services.reading() as session:
            owner = find_workspace(session, workspace)
            assert owner is not None

            def rows(model: Any, *where: Any) -> list[dict[str, Any]]:
                found = session.scalars(select(model).where(*where)).all()
                table = model.__table__
                return sorted(
                    ({c.name: getattr(r, c.key) for c in table.columns} for r in found),
                    key=repr,
                )

            blob_ids = select(Blob.id).where(Blob.workspace_id == owner.id)
            return {
                "media": rows(Media, Media.workspace_id == owner.id),
                "attachments": rows(Attachment, Attachment.workspace_id == owner.id),
                "audit": rows(AuditEvent, AuditEvent.workspace_id == owner.id),
                "blobs": rows(Blob, Blob.workspace_id == owner.id),
                "variants": rows(Variant, Variant.blob_id.in_(blob_ids)),
                "workspace": (owner.slug, owner.name, owner.quota_bytes),
            }


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory, prefect_api: str) -> Iterator[Tenants]:
    with module_api(tmp_path_factory, "idor-home") as api:
        a = api.token("acme", "ana", ("write",))
        a_admin = api.token("acme", "root", ("admin",))
        b = api.token("globex", "gil", ("write",))
        # Interleaved, so B's cursors fall between A's media in time; the same bytes in
        # both workspaces, so a shared blob would show.
        a1 = upload(api, a, SAME_BYTES, "shoe.jpg", entity=PRODUCT)
        b1 = upload(api, b, SAME_BYTES, "shoe.jpg", entity=PRODUCT, alt="B's shoe")
        a2 = upload(api, a, photo_jpeg(64, 64, seed=8), "a-hat.jpg")
        b2 = upload(api, b, photo_jpeg(64, 64, seed=9), "b-secret.jpg")
        api.settle()
        deleted = api.graphql(b, MUTATIONS["mediaDelete"][0], {"id": b2})
        assert deleted["data"]["mediaDelete"]["media"]["status"] == "DELETED"
        yield Tenants(api, a, a_admin, b, [a1, a2], [b1, b2], [b1])


def test_setup_both_workspaces_have_ready_media(tenants: Tenants) -> None:
    for media_id in tenants.a_ids:
        assert tenants.call(tenants.a, SHOW, id=media_id)["media"]["status"] == "READY"
    b1 = tenants.call(tenants.b, SHOW, id=tenants.b_ids[0])["media"]
    assert b1["status"] == "READY"
    assert tenants.call(tenants.b, SHOW, id=tenants.b_ids[1])["media"]["status"] == "DELETED"
    # The same bytes, but separate blobs and objects in each workspace.
    a1 = tenants.call(tenants.a, SHOW, id=tenants.a_ids[0])["media"]
    assert not {v["url"] for v in a1["variants"]} & {v["url"] for v in b1["variants"]}
    with tenants.api.services.reading() as session:
        blobs = session.execute(select(Blob.workspace_id, Blob.sha256)).all()
    assert len(blobs) == 4
    assert len({workspace for workspace, _ in blobs}) == 2


@pytest.mark.parametrize("token_name", ["a", "a_admin"])
def test_reading_b_by_id_is_null(tenants: Tenants, token_name: str) -> None:
    token = getattr(tenants, token_name)
    for media_id in tenants.b_ids:
        target = uuid.UUID(media_id)
        for spelling in (media_id, media_id.upper(), target.hex, f"{{{media_id}}}", target.urn):
            assert tenants.call(token, SHOW, id=spelling) == {"media": None}, spelling
    # Exactly what an id that never existed gets.
    assert tenants.call(token, SHOW, id=str(uuid.uuid4())) == {"media": None}


def test_recent_media_never_lists_b(tenants: Tenants) -> None:
    a_ids, b_ids = set(tenants.a_ids), set(tenants.b_ids)
    assert set(tenants.listed(tenants.a, first=1)) == a_ids
    assert set(tenants.listed(tenants.a_admin, first=100)) == a_ids
    assert tenants.listed(tenants.a, entity=PRODUCT) == [tenants.a_ids[0]]
    assert tenants.listed(tenants.a, search="shoe") == [tenants.a_ids[0]]
    assert tenants.listed(tenants.a, search="secret") == []
    assert set(tenants.listed(tenants.b, first=1)) == set(tenants.b_live)
    assert not b_ids & set(tenants.listed(tenants.a, first=3))


def test_b_cursor_used_by_a_returns_only_a_media(tenants: Tenants) -> None:
    b_page = tenants.call(tenants.b, PAGE, first=1, entity=None)["recentMedia"]
    (b_edge,) = b_page["edges"]
    assert b_edge["node"]["id"] == tenants.b_ids[0]
    # B1 was created after A1 and before A2: from B's cursor, A sees what is older: A1.
    after_b1 = tenants.listed(tenants.a, first=10, after=b_edge["cursor"])
    assert after_b1 == [tenants.a_ids[0]]
    for media_id in tenants.b_ids:
        assert media_id not in tenants.listed(tenants.a, first=1, after=b_edge["cursor"])


def test_mutations_on_b_ids_are_not_found_without_side_effects(tenants: Tenants) -> None:
    before = tenants.snapshot("globex")
    a_before = tenants.snapshot("acme")
    for token in (tenants.a, tenants.a_admin):
        for name, (mutation, extra) in MUTATIONS.items():
            for media_id in tenants.b_ids:
                payload = tenants.call(token, mutation, id=media_id, **extra)[name]
                assert payload == NOT_FOUND, (name, media_id)
            unknown = tenants.call(token, mutation, id=str(uuid.uuid4()), **extra)[name]
            assert unknown == NOT_FOUND
    assert tenants.snapshot("globex") == before
    assert tenants.snapshot("acme") == a_before  # nothing landed on A's side either
    # B still sees its own media exactly as it left them.
    b1 = tenants.call(tenants.b, SHOW, id=tenants.b_ids[0])["media"]
    assert b1["alt"] == "B's shoe"
    assert b1["status"] == "READY"
    assert tenants.listed(tenants.b, entity=PRODUCT) == [tenants.b_ids[0]]
    assert tenants.listed(tenants.b, entity={"type": "product", "id": "666"}) == []


def test_batched_aliases_return_only_a_data(tenants: Tenants) -> None:
    a1, a2 = tenants.a_ids
    b1, b2 = tenants.b_ids
    query = (
        "query($a1: ID!, $b1: ID!, $a2: ID!, $b2: ID!) { "
        + " ".join(f"{n}: media(id: ${n}) {{ id status }}" for n in ("a1", "b1", "a2", "b2"))
        + " }"
    )
    data = tenants.call(tenants.a, query, a1=a1, b1=b1, a2=a2, b2=b2)
    assert data == {
        "a1": {"id": a1, "status": "READY"},
        "b1": None,
        "a2": {"id": a2, "status": "READY"},
        "b2": None,
    }


def test_batched_alias_mutations_touch_only_a(tenants: Tenants) -> None:
    a1, _ = tenants.a_ids
    b1, b2 = tenants.b_ids
    before = tenants.snapshot("globex")
    mutation = (
        "mutation($a1: ID!, $b1: ID!, $b2: ID!) { "
        f'mine: mediaUpdate(id: $a1, alt: "ok") {PAYLOAD} '
        f'theirs: mediaUpdate(id: $b1, alt: "pwned") {PAYLOAD} '
        f"gone: mediaRestore(id: $b2) {PAYLOAD} "
        f"del: mediaDelete(id: $b1) {PAYLOAD} "
        "}"
    )
    data = tenants.call(tenants.a, mutation, a1=a1, b1=b1, b2=b2)
    assert data["mine"] == {"media": {"id": a1, "status": "READY", "alt": "ok"}, "userErrors": []}
    assert data["theirs"] == NOT_FOUND
    assert data["gone"] == NOT_FOUND
    assert data["del"] == NOT_FOUND
    assert tenants.snapshot("globex") == before


def test_b_staged_upload_is_not_found_for_a(tenants: Tenants) -> None:
    api = tenants.api
    staged = api.graphql(
        tenants.b,
        "mutation($i: [StagedUploadInput!]!) { stagedUploadsCreate(input: $i) "
        "{ stagedTargets { url resourceUrl } } }",
        {"i": [{"filename": "b.jpg", "fileSize": len(SAME_BYTES)}]},
    )["data"]["stagedUploadsCreate"]["stagedTargets"][0]
    assert api.client.put(staged["url"], content=SAME_BYTES).status_code == 201
    before_a, before_b = tenants.snapshot("acme"), tenants.snapshot("globex")
    refused = tenants.call(tenants.a, CREATE, input={"originalSource": staged["resourceUrl"]})
    assert refused["mediaCreate"]["media"] is None
    assert [e["code"] for e in refused["mediaCreate"]["userErrors"]] == ["NOT_FOUND"]
    assert tenants.snapshot("acme") == before_a
    assert tenants.snapshot("globex") == before_b
