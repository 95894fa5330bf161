"""Write side of ``/graphql``: staged and multipart uploads, edits, attach, delete, restore.

One app for the module; three uploads are ingested once (a staged one, a multipart one
and a file that is not an image) and the edits then work on them.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from mediamill.api import tickets
from mediamill.api.graphql import mutations
from mediamill.catalog.models import Attachment, AuditEvent, Media, MediaStatus
from mediamill.media.samples import photo_jpeg
from mediamill.storage.incoming import incoming_prefix
from tests.api.conftest import Api, module_api

MAX_UPLOAD = 300_000
STAGE = """
mutation($input: [StagedUploadInput!]!) {
  stagedUploadsCreate(input: $input) {
    stagedTargets { url method resourceUrl headers { name value } expiresAt }
    userErrors { field code message }
  }
}"""
MEDIA = "id status filename alt error { code message } variants { name url } mediaType"
CREATE = f"""
mutation($input: MediaCreateInput!) {{
  mediaCreate(input: $input) {{ media {{ {MEDIA} }} userErrors {{ field code message }} }}
}}"""
FROM_URL = f"""
mutation($url: String!, $entity: EntityInput) {{
  mediaCreateFromUrl(url: $url, entity: $entity) {{
    media {{ {MEDIA} }} userErrors {{ field code message }}
  }}
}}"""
UPDATE = f"""
mutation($id: ID!, $alt: String) {{
  mediaUpdate(id: $id, alt: $alt) {{ media {{ {MEDIA} }} userErrors {{ field code message }} }}
}}"""
ATTACH = f"""
mutation($id: ID!, $entity: EntityInput!) {{
  mediaAttach(id: $id, entity: $entity) {{
    media {{ {MEDIA} }} userErrors {{ field code message }}
  }}
}}"""
DETACH = ATTACH.replace("mediaAttach", "mediaDetach")
DELETE = f"""
mutation($id: ID!) {{
  mediaDelete(id: $id) {{ media {{ {MEDIA} }} userErrors {{ field code message }} }}
}}"""
RESTORE = DELETE.replace("mediaDelete", "mediaRestore")
SHOW = f"query($id: ID!) {{ media(id: $id) {{ {MEDIA} }} }}"
GALLERY = """
query($entity: EntityInput) { recentMedia(first: 50, entity: $entity) { nodes { id } } }"""
SHOE = photo_jpeg(120, 90, seed=5)
HAT = photo_jpeg(100, 80, seed=6)


@dataclass
class Uploads:
    api: Api
    token: str
    other: str  # a token of another workspace
    staged: str
    multipart: str
    bad: str

    def call(self, query: str, token: str | None = None, **variables: Any) -> dict[str, Any]:
        body = self.api.graphql(token or self.token, query, variables)
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    def payload(self, query: str, **variables: Any) -> dict[str, Any]:
        data = self.call(query, **variables)
        (payload,) = data.values()
        result: dict[str, Any] = payload
        return result

    def show(self, media_id: str) -> dict[str, Any]:
        media: dict[str, Any] = self.call(SHOW, id=media_id)["media"]
        return media

    def gallery(self, entity_type: str, entity_id: str) -> list[str]:
        nodes = self.call(GALLERY, entity={"type": entity_type, "id": entity_id})
        return [n["id"] for n in nodes["recentMedia"]["nodes"]]

    def media_count(self) -> int:
        with self.api.services.reading() as session:
            return int(session.scalar(select(func.count()).select_from(Media)) or 0)


def stage(api: Api, token: str, *items: dict[str, Any]) -> dict[str, Any]:
    body = api.graphql(token, STAGE, {"input": list(items)})
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["stagedUploadsCreate"]
    return payload


def multipart(api: Api, token: str, data: bytes, filename: str, **fields: Any) -> dict[str, Any]:
    """``mediaCreate(input: {file})`` per the GraphQL multipart request spec."""
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
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()["data"]["mediaCreate"]
    return payload


@pytest.fixture(scope="module")
def uploads(tmp_path_factory: pytest.TempPathFactory, prefect_api: str) -> Iterator[Uploads]:
    with module_api(
        tmp_path_factory, "mutations-home", MEDIAMILL_MAX_UPLOAD_BYTES=str(MAX_UPLOAD)
    ) as api:
        assert api.services.settings.max_upload_bytes == MAX_UPLOAD
        token = api.token("acme", "ana", ("write",))
        other = api.token("globex", "gil", ("write",))

        target = stage(api, token, {"filename": "shoe.jpg", "fileSize": len(SHOE)})
        url = target["stagedTargets"][0]["url"]
        assert api.client.put(url, content=SHOE).status_code == 201
        staged = api.graphql(
            token,
            CREATE,
            {
                "input": {
                    "originalSource": target["stagedTargets"][0]["resourceUrl"],
                    "alt": "A shoe",
                    "entity": {"type": "product", "id": "7"},
                }
            },
        )["data"]["mediaCreate"]
        assert staged["userErrors"] == [], staged
        assert staged["media"]["status"] == "PENDING"
        made = multipart(api, token, HAT, "hat.jpg", alt="A hat")
        assert made["userErrors"] == [], made
        assert made["media"]["status"] == "PENDING"
        bad = multipart(api, token, b"not an image", "fake.jpg")
        assert bad["userErrors"] == [], bad
        api.settle()
        yield Uploads(
            api, token, other, staged["media"]["id"], made["media"]["id"], bad["media"]["id"]
        )


# -- creating ------------------------------------------------------------------------


def test_staged_upload_ends_ready_in_its_gallery(uploads: Uploads) -> None:
    media = uploads.show(uploads.staged)
    assert media["status"] == "READY", media
    assert media["filename"] == "shoe.jpg"
    assert media["alt"] == "A shoe"
    assert media["mediaType"] == "IMAGE"
    assert {"thumb", "optimized"} <= {v["name"] for v in media["variants"]}
    assert uploads.gallery("product", "7") == [uploads.staged]


def test_multipart_upload_ends_ready(uploads: Uploads) -> None:
    media = uploads.show(uploads.multipart)
    assert media["status"] == "READY", media
    assert media["filename"] == "hat.jpg"
    assert media["alt"] == "A hat"
    assert media["error"] is None
    assert all(v["url"].startswith("http://testserver/files/") for v in media["variants"])
    assert media["variants"]


def test_a_file_that_is_not_an_image_fails_with_a_reason(uploads: Uploads) -> None:
    media = uploads.show(uploads.bad)
    assert media["status"] == "FAILED"
    assert media["error"]["code"] == "unsupported_type"
    assert media["error"]["message"]
    assert media["variants"] == []
    assert media["mediaType"] is None


def test_staged_file_size_over_the_cap_is_a_user_error(uploads: Uploads) -> None:
    payload = stage(
        uploads.api,
        uploads.token,
        {"filename": "ok.jpg", "fileSize": 10},
        {"filename": "big.jpg", "fileSize": MAX_UPLOAD + 1},
        {"filename": "neg.jpg", "fileSize": -1},
    )
    assert payload["stagedTargets"] == []
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["input", "1", "fileSize"], "TOO_LARGE"),
        (["input", "2", "fileSize"], "TOO_LARGE"),
    ]
    exact = stage(uploads.api, uploads.token, {"filename": "cap.jpg", "fileSize": MAX_UPLOAD})
    assert exact["userErrors"] == []
    assert len(exact["stagedTargets"]) == 1
    many = stage(uploads.api, uploads.token, *[{"filename": "a", "fileSize": 1}] * 51)
    assert [e["code"] for e in many["userErrors"]] == ["TOO_MANY"]


def test_staged_target_shape(uploads: Uploads) -> None:
    payload = stage(uploads.api, uploads.token, {"filename": "a.jpg", "fileSize": 5})
    (target,) = payload["stagedTargets"]
    assert target["method"] == "PUT"
    assert target["url"].startswith("http://testserver/uploads/")
    assert target["resourceUrl"] == target["url"]
    assert target["headers"] == [{"name": "Content-Type", "value": "application/octet-stream"}]
    assert target["expiresAt"]


def test_put_bigger_than_declared_is_413_and_stores_nothing(uploads: Uploads) -> None:
    api = uploads.api
    (target,) = stage(api, uploads.token, {"filename": "a.jpg", "fileSize": 100})["stagedTargets"]
    assert api.client.put(target["url"], content=b"x" * 101).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap holds while streaming
        yield b"x" * 60
        yield b"x" * 60

    assert api.client.put(target["url"], content=chunks()).status_code == 413
    before = uploads.media_count()
    refused = uploads.payload(CREATE, input={"originalSource": target["resourceUrl"]})
    assert refused["media"] is None
    assert [e["code"] for e in refused["userErrors"]] == ["NOT_UPLOADED"]
    assert uploads.media_count() == before
    # Exactly the declared size is fine.
    assert api.client.put(target["url"], content=b"x" * 100).status_code == 201


def test_tampered_ticket_is_403(uploads: Uploads) -> None:
    api = uploads.api
    (target,) = stage(api, uploads.token, {"filename": "a.jpg", "fileSize": 100})["stagedTargets"]
    ticket = target["url"].rsplit("/", 1)[1]
    payload, _, mac = ticket.partition(".")
    claims = json.loads(tickets._unb64(payload))
    bigger = tickets._b64(json.dumps({**claims, "max_bytes": 10**9}).encode())
    elsewhere = tickets._b64(json.dumps({**claims, "key": claims["key"] + "x"}).encode())
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    for forged in (f"{bigger}.{mac}", f"{elsewhere}.{mac}", f"{payload}.{flipped}", payload, "x"):
        response = api.client.put(f"/uploads/{forged}", content=b"x" * 10)
        assert response.status_code == 403, forged
    assert not api.services.store.exists(claims["key"])
    refused = uploads.payload(
        CREATE, input={"originalSource": f"http://testserver/uploads/{bigger}.{mac}"}
    )
    assert [e["code"] for e in refused["userErrors"]] == ["INVALID"]


def test_another_workspaces_staged_upload_is_not_found(uploads: Uploads) -> None:
    api = uploads.api
    (theirs,) = stage(api, uploads.other, {"filename": "t.jpg", "fileSize": len(SHOE)})[
        "stagedTargets"
    ]
    assert api.client.put(theirs["url"], content=SHOE).status_code == 201
    key = tickets.redeem(api.services.ticket_key, theirs["url"].rsplit("/", 1)[1]).key
    with api.services.reading() as session:
        before = session.execute(
            select(Media.workspace_id, func.count()).group_by(Media.workspace_id)
        ).all()
    refused = uploads.payload(CREATE, input={"originalSource": theirs["resourceUrl"]})
    assert refused["media"] is None
    assert refused["userErrors"] == [
        {
            "field": ["input", "originalSource"],
            "code": "NOT_FOUND",
            "message": "staged upload not found",
        }
    ]
    with api.services.reading() as session:
        after = session.execute(
            select(Media.workspace_id, func.count()).group_by(Media.workspace_id)
        ).all()
    assert after == before
    assert api.services.store.exists(key)  # their upload is untouched


def test_original_source_never_uploaded(uploads: Uploads) -> None:
    (target,) = stage(uploads.api, uploads.token, {"filename": "a.jpg", "fileSize": 5})[
        "stagedTargets"
    ]
    before = uploads.media_count()
    refused = uploads.payload(CREATE, input={"originalSource": target["resourceUrl"]})
    assert refused == {
        "media": None,
        "userErrors": [
            {
                "field": ["input", "originalSource"],
                "code": "NOT_UPLOADED",
                "message": "nothing was uploaded to this target yet",
            }
        ],
    }
    assert uploads.media_count() == before


@pytest.mark.parametrize(
    "source",
    [
        "https://example.com/shoe.jpg",
        "http://testserver/uploads/",
        "http://testserver/uploads/not-a-ticket",
        "http://testserver/files/x",
        "",
    ],
)
def test_original_source_that_is_no_staged_upload_is_invalid(uploads: Uploads, source: str) -> None:
    before = uploads.media_count()
    refused = uploads.payload(CREATE, input={"originalSource": source})
    assert refused["media"] is None
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [
        (["input", "originalSource"], "INVALID")
    ]
    assert uploads.media_count() == before


def test_media_create_needs_exactly_one_source(uploads: Uploads) -> None:
    before = uploads.media_count()
    neither = uploads.payload(CREATE, input={"alt": "nothing"})
    assert [e["code"] for e in neither["userErrors"]] == ["INVALID"]
    operations = {
        "query": CREATE,
        "variables": {"input": {"file": None, "originalSource": "http://testserver/uploads/x"}},
    }
    both = uploads.api.client.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": ("a.jpg", HAT, "image/jpeg")},
        headers={"Authorization": f"Bearer {uploads.token}"},
    ).json()["data"]["mediaCreate"]
    assert [e["code"] for e in both["userErrors"]] == ["INVALID"]
    assert uploads.media_count() == before


def test_multipart_file_over_the_cap_is_too_large(uploads: Uploads) -> None:
    before = uploads.media_count()
    refused = multipart(uploads.api, uploads.token, b"\xff" * (MAX_UPLOAD + 1), "big.jpg")
    assert refused["media"] is None
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [
        (["input", "file"], "TOO_LARGE")
    ]
    assert uploads.media_count() == before


# -- entities ------------------------------------------------------------------------

BAD_ENTITIES = [
    {"type": "Product", "id": "1"},
    {"type": "bad type", "id": "1"},
    {"type": "product", "id": "a b"},
    {"type": "product", "id": ""},
    {"type": "", "id": "1"},
    {"type": "product", "id": "1:2"},
    {"type": "product", "id": "x" * 129},
    {"type": "product", "id": "../1"},
]


def _incoming(uploads: Uploads) -> set[str]:
    return {o.key for o in uploads.api.services.store.list_prefix(incoming_prefix("acme"))}


def _attachments(uploads: Uploads) -> list[tuple[Any, ...]]:
    with uploads.api.services.reading() as session:
        rows = session.execute(
            select(Attachment.media_id, Attachment.entity_type, Attachment.entity_id)
        ).all()
    return sorted(tuple(r) for r in rows)


@pytest.mark.parametrize("entity", BAD_ENTITIES)
def test_entity_input_is_validated(uploads: Uploads, entity: dict[str, str]) -> None:
    before = uploads.media_count()
    attachments, incoming = _attachments(uploads), _incoming(uploads)
    attach = uploads.payload(ATTACH, id=uploads.multipart, entity=entity)
    assert attach["media"] is None
    assert [(e["field"], e["code"]) for e in attach["userErrors"]] == [(["entity"], "INVALID")]
    detach = uploads.payload(DETACH, id=uploads.multipart, entity=entity)
    assert [e["code"] for e in detach["userErrors"]] == ["INVALID"]
    from_url = uploads.payload(FROM_URL, url="https://example.com/a.jpg", entity=entity)
    assert from_url["media"] is None
    assert [e["code"] for e in from_url["userErrors"]] == ["INVALID"]
    created = multipart(uploads.api, uploads.token, HAT, "x.jpg", entity=entity)
    assert [e["code"] for e in created["userErrors"]] == ["INVALID"]
    assert uploads.media_count() == before
    assert _attachments(uploads) == attachments
    assert _incoming(uploads) == incoming  # the refused file was not stored


def test_multipart_alt_over_the_cap_is_refused_before_storing(uploads: Uploads) -> None:
    before, incoming = uploads.media_count(), _incoming(uploads)
    refused = multipart(uploads.api, uploads.token, HAT, "x.jpg", alt="x" * 4097)
    assert refused["media"] is None
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [(["alt"], "TOO_LONG")]
    assert uploads.media_count() == before
    assert _incoming(uploads) == incoming


# -- editing -------------------------------------------------------------------------


def _audit(uploads: Uploads, media_id: str, action: str) -> list[AuditEvent]:
    with uploads.api.services.reading() as session:
        events = list(
            session.scalars(
                select(AuditEvent).where(
                    AuditEvent.media_id == uuid.UUID(media_id), AuditEvent.action == action
                )
            )
        )
        session.expunge_all()
        return events


def test_media_update_changes_alt_text(uploads: Uploads) -> None:
    updated = uploads.payload(UPDATE, id=uploads.multipart, alt="A blue hat, side view")
    assert updated["userErrors"] == []
    assert updated["media"]["alt"] == "A blue hat, side view"
    assert uploads.show(uploads.multipart)["alt"] == "A blue hat, side view"
    (event,) = [
        e
        for e in _audit(uploads, uploads.multipart, "media.updated")
        if e.details == {"alt": "A blue hat, side view"}
    ]
    assert event.actor == "ana"

    too_long = uploads.payload(UPDATE, id=uploads.multipart, alt="x" * 4097)
    assert too_long["media"] is None
    assert [(e["field"], e["code"]) for e in too_long["userErrors"]] == [(["alt"], "TOO_LONG")]
    assert uploads.show(uploads.multipart)["alt"] == "A blue hat, side view"

    cleared = uploads.payload(UPDATE, id=uploads.multipart, alt=None)
    assert cleared["media"]["alt"] is None
    restored = uploads.payload(UPDATE, id=uploads.multipart, alt="A hat")
    assert restored["media"]["alt"] == "A hat"


def test_a_mutation_waiting_for_the_write_lock_leaves_reads_answering(
    uploads: Uploads, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write runs in a worker thread: the event loop serves other requests meanwhile."""
    editing = threading.Event()
    edit = mutations._edit

    def signalled_edit(*args: Any) -> Any:
        editing.set()
        return edit(*args)

    monkeypatch.setattr(mutations, "_edit", signalled_edit)
    turns = uploads.api.services.writer_turns
    assert turns is not None
    with ThreadPoolExecutor(max_workers=2) as pool:
        with turns:  # this thread holds the catalog's writers' turn
            update = pool.submit(
                uploads.payload, UPDATE, id=uploads.multipart, alt="Held back, then written"
            )
            assert editing.wait(timeout=60)
            read = pool.submit(uploads.call, GALLERY)
            # A guard against a hang (the loop blocked by the write), not a timing.
            nodes = read.result(timeout=60)["recentMedia"]["nodes"]
            assert uploads.multipart in {node["id"] for node in nodes}
            assert not update.done()
        updated = update.result(timeout=60)
    assert updated["userErrors"] == []
    assert updated["media"]["alt"] == "Held back, then written"
    assert uploads.show(uploads.multipart)["alt"] == "Held back, then written"


def test_attach_and_detach(uploads: Uploads) -> None:
    shelf = {"type": "collection", "id": "summer-24"}
    assert uploads.gallery("collection", "summer-24") == []
    attached = uploads.payload(ATTACH, id=uploads.multipart, entity=shelf)
    assert attached["userErrors"] == []
    assert attached["media"]["id"] == uploads.multipart
    assert uploads.gallery("collection", "summer-24") == [uploads.multipart]
    again = uploads.payload(ATTACH, id=uploads.multipart, entity=shelf)
    assert again["userErrors"] == []
    second = uploads.payload(ATTACH, id=uploads.staged, entity=shelf)
    assert second["userErrors"] == []
    assert uploads.gallery("collection", "summer-24") == [uploads.multipart, uploads.staged]
    with uploads.api.services.reading() as session:
        rows = session.execute(
            select(Attachment.media_id, Attachment.position)
            .where(Attachment.entity_id == "summer-24")
            .order_by(Attachment.position)
        ).all()
    assert [(str(m), p) for m, p in rows] == [(uploads.multipart, 0), (uploads.staged, 1)]

    detached = uploads.payload(DETACH, id=uploads.multipart, entity=shelf)
    assert detached["userErrors"] == []
    assert uploads.gallery("collection", "summer-24") == [uploads.staged]
    twice = uploads.payload(DETACH, id=uploads.multipart, entity=shelf)
    assert twice["media"] is None
    assert [(e["field"], e["code"]) for e in twice["userErrors"]] == [(["entity"], "NOT_ATTACHED")]
    assert uploads.payload(DETACH, id=uploads.staged, entity=shelf)["userErrors"] == []
    assert uploads.gallery("collection", "summer-24") == []
    assert len(_audit(uploads, uploads.multipart, "media.attached")) == 1
    assert len(_audit(uploads, uploads.multipart, "media.detached")) == 1


def test_delete_then_restore(uploads: Uploads) -> None:
    everything = uploads.call(GALLERY)
    assert uploads.multipart in [n["id"] for n in everything["recentMedia"]["nodes"]]

    deleted = uploads.payload(DELETE, id=uploads.multipart)
    assert deleted["userErrors"] == []
    assert deleted["media"]["status"] == "DELETED"
    listed = [n["id"] for n in uploads.call(GALLERY)["recentMedia"]["nodes"]]
    assert uploads.multipart not in listed
    assert uploads.show(uploads.multipart)["status"] == "DELETED"

    refused = uploads.payload(ATTACH, id=uploads.multipart, entity={"type": "page", "id": "x"})
    assert refused["media"] is None
    assert [e["code"] for e in refused["userErrors"]] == ["REFUSED"]
    again = uploads.payload(DELETE, id=uploads.multipart)  # already deleted: nothing changes
    assert again["media"]["status"] == "DELETED"
    assert len(_audit(uploads, uploads.multipart, "media.deleted")) == 1

    restored = uploads.payload(RESTORE, id=uploads.multipart)
    assert restored["userErrors"] == []
    assert restored["media"]["status"] == "READY"
    listed = [n["id"] for n in uploads.call(GALLERY)["recentMedia"]["nodes"]]
    assert uploads.multipart in listed
    not_deleted = uploads.payload(RESTORE, id=uploads.multipart)
    assert not_deleted["media"] is None
    assert [(e["field"], e["code"]) for e in not_deleted["userErrors"]] == [(["id"], "REFUSED")]


def test_failed_media_can_be_deleted_and_restored(uploads: Uploads) -> None:
    assert uploads.payload(DELETE, id=uploads.bad)["media"]["status"] == "DELETED"
    restored = uploads.payload(RESTORE, id=uploads.bad)
    assert restored["media"]["status"] == "FAILED"
    assert restored["media"]["error"]["code"] == "unsupported_type"


@pytest.mark.parametrize("media_id", ["garbage", str(uuid.uuid4()), ""])
def test_unknown_ids_are_not_found(uploads: Uploads, media_id: str) -> None:
    entity = {"type": "product", "id": "1"}
    for query, variables in (
        (UPDATE, {"alt": "x"}),
        (ATTACH, {"entity": entity}),
        (DETACH, {"entity": entity}),
        (DELETE, {}),
        (RESTORE, {}),
    ):
        payload = uploads.payload(query, id=media_id, **variables)
        assert payload == {
            "media": None,
            "userErrors": [{"field": ["id"], "code": "NOT_FOUND", "message": "media not found"}],
        }


def test_media_create_from_url_answers_pending_at_once(uploads: Uploads) -> None:
    """The fetch itself is tested in test_url_ingest; here only the synchronous answer."""
    created = uploads.payload(
        FROM_URL, url="http://10.0.0.1/a.jpg", entity={"type": "product", "id": "88"}
    )
    assert created["userErrors"] == []
    assert created["media"]["status"] == "PENDING"
    assert uploads.gallery("product", "88") == [created["media"]["id"]]
    uploads.api.settle()
    failed = uploads.show(created["media"]["id"])
    assert failed["status"] == "FAILED"
    assert failed["error"]["code"] == "forbidden_address"
    with uploads.api.services.reading() as session:
        row = session.get(Media, uuid.UUID(created["media"]["id"]))
        assert row is not None
        assert row.status == MediaStatus.failed
