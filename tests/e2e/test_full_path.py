"""The full path on PostgreSQL + S3 and on PostgreSQL + Azure, walked as a user walks it.

Each backend pair (see ``conftest.pair``) gets one ``TestFullPath`` run: a manifest
backfill of every media type, dedupe, attach, an entity deletion, the four sweeps, then API
uploads. The steps build on each other (an entity is deleted after its media were
ingested and attached; purge frees what the deletion left), so they share a ``Journey``
and run in the order they are written, one test per step so a failure names its step. A
step that needs an earlier one asserts that it completed first: when a step fails, the
ones after it fail saying which step to look at, not with a confusing error of their own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import selectinload
from typer.testing import CliRunner

from mediamill.api.app import create_app
from mediamill.api.dispatch import EmbeddedDispatcher
from mediamill.api.services import services_of
from mediamill.catalog import lifecycle as life
from mediamill.catalog import repository as repo
from mediamill.catalog.models import Blob, BlobStatus, Media
from mediamill.catalog.repository import utcnow
from mediamill.catalog.views import media_record
from mediamill.cli import app as cli_app
from mediamill.flows.health import catalog_health
from mediamill.flows.ingest import backfill
from mediamill.flows.lifecycle import entity_cleanup
from mediamill.flows.quota import quota_sweep
from mediamill.flows.sweeps import orphan_sweep, purge
from mediamill.media import mesh_samples, pdf_samples, samples, video_samples
from mediamill.settings import get_settings
from mediamill.storage.headers import IMMUTABLE
from mediamill.storage.incoming import incoming_prefix
from mediamill.storage.keys import shard, workspace_prefix
from mediamill.tasks.recipes import Recipe
from tests.api.conftest import Api
from tests.e2e.conftest import Pair

pytestmark = pytest.mark.slow

WORKSPACE = "acme"
OTHER_WORKSPACE = "globex"
DAY = timedelta(days=1)

# The manifest: file name -> (entity, expected media type or failure code).
MANIFEST: dict[str, tuple[str, str]] = {
    "shoe.jpg": ("product:42", "image"),
    "bag.jpg": ("product:42", "image"),
    "clip.mp4": ("product:42", "video"),
    "hat.jpg": ("page:home", "image"),
    "logo.png": ("page:home", "image"),
    "spinner.gif": ("page:home", "image"),
    "box.glb": ("product:7", "model"),
    "sheet.pdf": ("product:7", "document"),
    "draft.jpg": ("", "image"),
    "truncated.jpg": ("product:7", "corrupt"),
    "invoice.jpg": ("product:7", "unsupported_type"),
}
FAILING = {"truncated.jpg", "invoice.jpg"}
# Ready and never deleted, once the entity deletion and the sweeps are done.
LIVE = ("bag.jpg", "hat.jpg", "logo.png", "spinner.gif", "box.glb", "sheet.pdf", "shoe-again.jpg")
MEDIA_FIELDS = "id status filename mediaType error { code message } variants { name url }"
STAGE = """
mutation($input: [StagedUploadInput!]!) {
  stagedUploadsCreate(input: $input) {
    stagedTargets { url method resourceUrl headers { name value } }
    userErrors { field code message }
  }
}"""
CREATE = f"""
mutation($input: MediaCreateInput!) {{
  mediaCreate(input: $input) {{ media {{ {MEDIA_FIELDS} }} userErrors {{ field code message }} }}
}}"""
SHOW = f"query($id: ID!) {{ media(id: $id) {{ {MEDIA_FIELDS} }} }}"
RECENT = "query { recentMedia(first: 50) { nodes { id status } } }"


@dataclass
class Journey:
    """What the steps of one pair hand each other, and which of them completed."""

    folder: Path
    ids: dict[str, uuid.UUID] = field(default_factory=dict)
    api_ids: dict[str, uuid.UUID] = field(default_factory=dict)
    upload_route: str | None = None
    done: set[str] = field(default_factory=set)

    def need(self, *steps: str) -> None:
        """Fail at once, naming the step, when a step this one builds on did not complete."""
        missing = [step for step in steps if step not in self.done]
        assert not missing, f"earlier step(s) {missing} did not complete: see their failure"


@pytest.fixture(scope="class")
def journey(pair: Pair) -> Journey:
    return Journey(folder=pair.root / "catalogue" / "media")


@pytest.fixture(scope="class")
def api(pair: Pair) -> Iterator[Api]:
    """The API on the pair's catalog and store, running its flows in this process."""
    dispatcher = EmbeddedDispatcher()
    settings = get_settings(
        dispatch="embedded", api_public_url="http://testserver", dispatch_wait_ms=120_000
    )
    app = create_app(settings, dispatcher=dispatcher)
    with TestClient(app) as client:
        yield Api(client, services_of(app.state), dispatcher)


# -- looking at the catalog, the bucket and the command line ------------------------------


def records(pair: Pair) -> dict[str, dict[str, Any]]:
    """``media show --json`` of every media of the workspace, by file name (newest wins)."""
    store = pair.store()
    with pair.sessions() as session:
        rows = session.scalars(
            select(Media)
            .options(
                selectinload(Media.workspace),
                selectinload(Media.blob).selectinload(Blob.variants),
            )
            .order_by(Media.created_at)
        ).all()
        return {str(m.original_filename): media_record(m, store.url) for m in rows}


def record_of(pair: Pair, media_id: uuid.UUID) -> dict[str, Any]:
    with pair.sessions() as session:
        media = repo.get_media(session, media_id)
        assert media is not None, f"no media {media_id}"
        return media_record(media, pair.store().url)


def keys_of(record: dict[str, Any]) -> set[str]:
    """The original's key and every variant key of a media record."""
    assert record["original"] is not None, record
    return {record["original"]["key"], *(v["key"] for v in record["variants"])}


def listing(pair: Pair, prefix: str = "tenants/") -> dict[str, int]:
    """Every object under ``prefix`` in the bucket, with its size."""
    return {o.key: o.size for o in pair.store().list_prefix(prefix)}


def referenced_keys(pair: Pair) -> set[str]:
    """Every key a ready blob of the catalog points at."""
    with pair.sessions() as session:
        blobs = session.scalars(
            select(Blob).where(Blob.status == BlobStatus.ready).options(selectinload(Blob.variants))
        ).all()
        return {key for blob in blobs for key in life.blob_keys(blob)}


def statuses(pair: Pair, ids: dict[str, uuid.UUID]) -> dict[str, str]:
    with pair.sessions() as session:
        return {name: session.get_one(Media, i).status.value for name, i in ids.items()}


def media_count(pair: Pair) -> int:
    with pair.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Media)) or 0)


def workspace_id(pair: Pair, slug: str = WORKSPACE) -> int:
    with pair.sessions() as session:
        found = repo.find_workspace(session, slug)
        assert found is not None, f"no workspace {slug}"
        return found.id


def check_published(pair: Pair, record: dict[str, Any]) -> None:
    """Every object of a ready media is in the bucket, immutable, typed and sized right."""
    store = pair.store()
    original = store.head(record["original"]["key"])
    assert (original.content_type, original.cache_control) == (record["mime_type"], IMMUTABLE)
    assert original.size == record["size"]
    for variant in record["variants"]:
        head = store.head(variant["key"])
        assert (head.content_type, head.cache_control, head.size) == (
            variant["mime_type"],
            IMMUTABLE,
            variant["size"],
        ), (record["filename"], variant["name"], variant["format"])


def planned(record: dict[str, Any]) -> set[tuple[str, str, str]]:
    """The variants the recipe in force plans for this media."""
    recipe = Recipe.from_settings(get_settings())
    has_alpha = bool(record["metadata"].get("has_alpha"))
    return set(recipe.planned_variants(record["media_type"], has_alpha))


def made(record: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(v["name"], v["format"], v["spec_version"]) for v in record["variants"]}


def cli(*args: str) -> str:
    """Run ``mediamill ARGS`` in this process (no Prefect) and return its standard output."""
    result = CliRunner().invoke(cli_app, list(args))
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


def gallery(entity: str) -> list[uuid.UUID]:
    """``mediamill entity media ENTITY --json``: the entity's live media, in order."""
    rows = json.loads(cli("entity", "media", entity, "--workspace", WORKSPACE, "--json"))
    return [uuid.UUID(row["id"]) for row in rows]


def graphql(api: Api, token: str, query: str, **variables: Any) -> dict[str, Any]:
    body = api.graphql(token, query, variables)
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def check_api_media(pair: Pair, api: Api, token: str, media_id: uuid.UUID) -> dict[str, Any]:
    """``media(id)`` is READY, and its variant URLs are objects of the bucket."""
    media: dict[str, Any] = graphql(api, token, SHOW, id=str(media_id))["media"]
    assert media["status"] == "READY", media
    record = record_of(pair, media_id)
    assert made(record) == planned(record)
    store = pair.store()
    assert sorted(v["url"] for v in media["variants"]) == sorted(
        store.url(v["key"]) for v in record["variants"]
    )
    check_published(pair, record)
    return media


# -- the walk ------------------------------------------------------------------------------


def write_catalogue(folder: Path) -> Path:
    """Small samples of every media type, two broken files, and a manifest placing them."""
    folder.mkdir(parents=True)
    files = {
        "shoe.jpg": samples.photo_jpeg(160, 120, seed=1),
        "bag.jpg": samples.photo_jpeg(160, 120, seed=2),
        "hat.jpg": samples.photo_jpeg(120, 160, seed=3),
        "logo.png": samples.alpha_png(96, 64),
        "spinner.gif": samples.animated_gif(64, 48, frames=4),
        "box.glb": mesh_samples.textured_box_glb(),
        "sheet.pdf": pdf_samples.brochure(pages=1),
        "draft.jpg": samples.photo_jpeg(160, 120, seed=4),
        "truncated.jpg": samples.corrupt_jpeg(),
        "invoice.jpg": samples.html_as_jpg(),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    video_samples.clip(folder / "clip.mp4", width=160, height=120, seconds=1)
    # Beside the folder, not in it: step 2 backfills the folder itself.
    manifest = folder.parent / "manifest.csv"
    rows = ["path,entity,user"] + [
        f"{folder.name}/{name},{entity},ann" for name, (entity, _) in MANIFEST.items()
    ]
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


@pytest.mark.usefixtures("prefect_api")
class TestFullPath:
    def test_1_a_backfill_publishes_every_media_type(self, pair: Pair, journey: Journey) -> None:
        manifest = write_catalogue(journey.folder)

        summary: dict[str, Any] = backfill(str(manifest), WORKSPACE)

        assert (summary["total"], summary["ingested"], summary["failed"]) == (11, 9, 2), summary
        assert {f["source"]: f["code"] for f in summary["failures"]} == {
            name: MANIFEST[name][1] for name in FAILING
        }
        journey.ids = {
            name: uuid.UUID(str(media_id))
            for name, media_id in zip(MANIFEST, summary["media_ids"], strict=True)
        }
        found = records(pair)
        for name, (_, expected) in MANIFEST.items():
            record = found[name]
            assert record["id"] == str(journey.ids[name])
            if name in FAILING:
                assert record["status"] == "failed"
                assert record["error"]["code"] == expected
                assert record["error"]["message"]
                assert record["variants"] == []
                # A failed render writes nothing, not even the original its blob planned.
                original = record["original"]
                assert original is None or not pair.store().exists(original["key"])
                continue
            assert (record["status"], record["media_type"]) == ("ready", expected), record
            assert made(record) == planned(record), name
            check_published(pair, record)
        prefix = workspace_prefix(workspace_id(pair))
        assert all(
            k.startswith(f"{prefix}product/{shard('42')}/42/image/")
            for k in keys_of(found["shoe.jpg"])
        )
        unattached = f"{prefix}library/{shard('unattached')}/unattached/image/"
        assert all(k.startswith(unattached) for k in keys_of(found["draft.jpg"]))
        assert found["logo.png"]["metadata"]["has_alpha"] is True
        assert {v["format"] for v in found["clip.mp4"]["variants"]} >= {"mp4", "jpeg"}
        # The bucket holds exactly what the catalog points at: nothing half-written or stray.
        assert set(listing(pair)) == referenced_keys(pair)
        assert listing(pair, "incoming/") == {}
        journey.done.add("ingest")

    def test_2_the_same_bytes_again_reuse_the_blob_and_a_rerun_adds_nothing(
        self, pair: Pair, journey: Journey
    ) -> None:
        journey.need("ingest")
        before, rows = listing(pair), media_count(pair)
        (journey.folder / "shoe-again.jpg").write_bytes((journey.folder / "shoe.jpg").read_bytes())

        summary: dict[str, Any] = backfill(str(journey.folder), WORKSPACE)

        assert (summary["total"], summary["duplicates"], summary["unchanged"]) == (12, 1, 11)
        assert (summary["ingested"], summary["failed"], summary["pixel_seconds"]) == (0, 0, 0.0)
        copy = records(pair)["shoe-again.jpg"]
        journey.ids["shoe-again.jpg"] = uuid.UUID(copy["id"])
        shoe = record_of(pair, journey.ids["shoe.jpg"])
        assert copy["status"] == "ready"
        assert copy["id"] != shoe["id"]
        assert (copy["sha256"], keys_of(copy)) == (shoe["sha256"], keys_of(shoe))
        assert media_count(pair) == rows + 1
        assert listing(pair) == before

        rerun: dict[str, Any] = backfill(str(journey.folder), WORKSPACE)

        assert (rerun["unchanged"], rerun["duplicates"], rerun["ingested"]) == (12, 0, 0)
        assert media_count(pair) == rows + 1
        assert listing(pair) == before
        journey.done.add("dedupe")

    def test_3_attach_from_the_command_line(self, pair: Pair, journey: Journey) -> None:
        journey.need("dedupe")
        ids = journey.ids

        for name in ("bag.jpg", "shoe-again.jpg"):
            out = cli("attach", str(ids[name]), "--entity", "page:home", "-w", WORKSPACE)
            assert "attached to page:home" in out, out
        again = cli("attach", str(ids["bag.jpg"]), "--entity", "page:home", "-w", WORKSPACE)

        assert "already attached" in again
        home = gallery("page:home")
        assert set(home[:3]) == {ids["hat.jpg"], ids["logo.png"], ids["spinner.gif"]}
        assert home[3:] == [ids["bag.jpg"], ids["shoe-again.jpg"]]
        assert set(gallery("product:42")) == {ids["shoe.jpg"], ids["bag.jpg"], ids["clip.mp4"]}
        journey.done.add("attach")

    def test_4_deleting_an_entity_deletes_what_was_uploaded_for_it_alone(
        self, pair: Pair, journey: Journey
    ) -> None:
        journey.need("attach")
        ids, before = journey.ids, listing(pair)

        report = entity_cleanup(WORKSPACE, "product:42", actor="shop")

        assert report["counts"] == {
            "media.detached": {"done": 3},
            "media.deleted": {"done": 2, "skipped": 1},
        }
        assert statuses(pair, ids) == {
            **{name: "ready" for name in ids if name not in FAILING},
            **{name: "failed" for name in FAILING},
            "shoe.jpg": "deleted",
            "clip.mp4": "deleted",
        }
        assert gallery("product:42") == []
        assert ids["bag.jpg"] in gallery("page:home")
        assert listing(pair) == before  # a soft delete keeps every object
        journey.done.add("entity delete")

    def test_5a_the_orphan_sweep_expires_a_never_attached_upload(
        self, pair: Pair, journey: Journey
    ) -> None:
        journey.need("entity delete")
        draft = journey.ids["draft.jpg"]
        old = utcnow() - 2 * DAY
        with pair.sessions.begin() as session:
            session.execute(
                update(Media).where(Media.id == draft).values(created_at=old, updated_at=old)
            )
        # Unreferenced but younger than the grace period: an upload may still point at it.
        stray = f"{workspace_prefix(workspace_id(pair))}crash/left-over.bin"
        store = pair.store()
        store.put(stray, b"partial", content_type="image/jpeg", cache_control=IMMUTABLE)
        before = listing(pair)

        report = orphan_sweep(WORKSPACE)

        assert report["counts"] == {
            "media.deleted": {"done": 1},
            "object.deleted": {"skipped": 1},
        }, report["actions"]
        assert statuses(pair, {"draft": draft}) == {"draft": "deleted"}
        assert listing(pair) == before
        store.delete_many([stray])
        journey.done.add("orphan sweep")

    def test_5b_purge_frees_objects_no_live_media_uses(self, pair: Pair, journey: Journey) -> None:
        journey.need("orphan sweep")
        ids = journey.ids
        gone = {name: ids[name] for name in ("shoe.jpg", "clip.mp4", "draft.jpg")}
        keys = {name: keys_of(record_of(pair, media_id)) for name, media_id in gone.items()}
        with pair.sessions.begin() as session:
            session.execute(
                update(Media)
                .where(Media.id.in_(gone.values()))
                .values(deleted_at=utcnow() - 31 * DAY)
            )
        before = listing(pair)

        report = purge(WORKSPACE)

        assert report["counts"] == {
            "media.purged": {"done": 3},
            "blob.purged": {"done": 2, "skipped": 1},
        }, report["actions"]
        assert statuses(pair, gone) == dict.fromkeys(gone, "purged")
        after = listing(pair)
        assert set(before) - set(after) == keys["clip.mp4"] | keys["draft.jpg"]
        assert keys["shoe.jpg"] <= set(after)  # its blob is shoe-again's too
        assert set(after) == referenced_keys(pair)
        assert (
            record_of(pair, ids["shoe.jpg"])["sha256"]
            == record_of(pair, ids["shoe-again.jpg"])["sha256"]
        )
        journey.done.add("purge")

    def test_5c_the_quota_sweep_counts_what_the_bucket_holds(
        self, pair: Pair, journey: Journey
    ) -> None:
        journey.need("purge")
        stored = sum(listing(pair, workspace_prefix(workspace_id(pair))).values())

        (row,) = quota_sweep(WORKSPACE)

        assert (row["workspace"], row["state"]) == (WORKSPACE, "unlimited")
        assert row["physical_bytes"] == stored
        # shoe-again.jpg keeps the purged shoe.jpg's blob: one blob per live media.
        assert (row["media"], row["blobs"]) == (len(LIVE), len(LIVE))

        cli("quota", "set", WORKSPACE, str(stored - 1))
        try:
            (over,) = quota_sweep(WORKSPACE)
        finally:
            cli("quota", "set", WORKSPACE, "none")

        assert (over["state"], over["previous_state"]) == ("exceeded", "unlimited")
        journey.done.add("quota sweep")

    def test_5d_the_catalog_is_healthy_after_the_sweeps(self, pair: Pair, journey: Journey) -> None:
        journey.need("quota sweep")

        report = catalog_health(WORKSPACE)

        failed = [r for r in report["expectations"] if not r["success"]]
        assert report["healthy"] is True, failed
        checked = json.loads(cli("check", "catalog", "--workspace", WORKSPACE, "--json"))
        assert checked["healthy"] is True
        journey.done.add("health")

    def test_6a_a_staged_api_upload_goes_through_the_bucket(
        self, pair: Pair, journey: Journey, api: Api
    ) -> None:
        journey.need("health")
        token = api.token(WORKSPACE, "ana")
        data = samples.photo_jpeg(200, 150, seed=21)
        staged = graphql(
            api, token, STAGE, input=[{"filename": "api-shoe.jpg", "fileSize": len(data)}]
        )["stagedUploadsCreate"]
        assert staged["userErrors"] == []
        (target,) = staged["stagedTargets"]
        headers = {h["name"]: h["value"] for h in target["headers"]}

        if target["url"].startswith("http://testserver/"):
            journey.upload_route = "api"
            response = api.client.request(
                target["method"], target["url"], content=data, headers=headers
            )
        else:
            journey.upload_route = "presigned"
            assert target["url"].startswith(f"{pair.endpoint}/{pair.bucket}/"), target["url"]
            with httpx.Client(trust_env=False) as client:
                response = client.request(
                    target["method"], target["url"], content=data, headers=headers
                )
        assert response.is_success, (journey.upload_route, response.status_code, response.text)
        assert len(listing(pair, incoming_prefix(WORKSPACE))) == 1

        created = graphql(
            api,
            token,
            CREATE,
            input={"originalSource": target["resourceUrl"], "filename": "api-shoe.jpg"},
        )["mediaCreate"]
        assert created["userErrors"] == [], created
        assert created["media"]["status"] == "PENDING"
        media_id = uuid.UUID(created["media"]["id"])
        api.settle()

        media = check_api_media(pair, api, token, media_id)
        assert (media["filename"], media["mediaType"]) == ("api-shoe.jpg", "IMAGE")
        assert listing(pair, "incoming/") == {}
        journey.api_ids["staged"] = media_id
        # Checked last, so a regression still shows whether the upload itself worked.
        assert journey.upload_route == "presigned", "the bytes went through the API"
        journey.done.add("staged upload")

    def test_6b_signed_webhooks_ingest_objects_put_in_the_incoming_area(
        self, pair: Pair, journey: Journey, api: Api
    ) -> None:
        journey.need("staged upload")
        token, secret, store = api.token(WORKSPACE, "ana"), api.secret(WORKSPACE), pair.store()
        events: dict[str, tuple[str, bytes]] = {}
        crate = f"{incoming_prefix(WORKSPACE)}crate.jpg"
        events["upload"] = (
            "/webhooks/uploads",
            json.dumps(
                {
                    "id": f"evt-{uuid.uuid4().hex}",
                    "type": "upload.completed",
                    "workspace": WORKSPACE,
                    "key": crate,
                    "entity": {"type": "product", "id": "9"},
                }
            ).encode(),
        )
        store.put(
            crate,
            samples.photo_jpeg(180, 120, seed=22),
            content_type="application/octet-stream",
            cache_control="private, no-store",
        )
        if pair.backend == "s3":
            parcel = f"{incoming_prefix(WORKSPACE)}parcel.jpg"
            store.put(
                parcel,
                samples.photo_jpeg(180, 120, seed=23),
                content_type="application/octet-stream",
                cache_control="private, no-store",
            )
            record = {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": pair.bucket},
                    "object": {"key": parcel, "size": 1, "eTag": "e2e", "sequencer": "01"},
                },
            }
            events["storage"] = ("/webhooks/storage", json.dumps({"Records": [record]}).encode())

        started: dict[str, uuid.UUID] = {}
        for name, (path, body) in events.items():
            response = api.webhook(path, body, secret)
            assert response.status_code == 202, (name, response.text)
            answer = response.json()
            result = answer["results"][0] if name == "storage" else answer
            assert result["status"] == "accepted", (name, answer)
            started[name] = uuid.UUID(result["media_id"])
        api.settle()

        for name, media_id in started.items():
            check_api_media(pair, api, token, media_id)
            journey.api_ids[name] = media_id
        assert listing(pair, "incoming/") == {}
        assert set(started) == ({"upload", "storage"} if pair.backend == "s3" else {"upload"})
        journey.done.add("webhooks")

    def test_6c_another_workspace_sees_none_of_it_and_the_catalog_stays_healthy(
        self, pair: Pair, journey: Journey, api: Api
    ) -> None:
        journey.need("webhooks")
        mine, theirs = api.token(WORKSPACE, "ana"), api.token(OTHER_WORKSPACE, "gil")
        # Failed media stay in the library, with their reason, until someone deletes them.
        shown = {journey.ids[name] for name in (*LIVE, *FAILING)} | set(journey.api_ids.values())

        ours = graphql(api, mine, RECENT)["recentMedia"]["nodes"]

        assert {uuid.UUID(n["id"]) for n in ours} == shown
        assert graphql(api, theirs, RECENT)["recentMedia"]["nodes"] == []
        for media_id in journey.api_ids.values():
            assert graphql(api, theirs, SHOW, id=str(media_id))["media"] is None
        assert set(listing(pair)) == referenced_keys(pair)
        assert catalog_health()["healthy"] is True
