"""Staged uploads on S3 and Azure: the bytes go straight to the bucket through a presigned PUT.

The API hands out the bucket's own signed URL (moto and Azurite, started by the test
setup); ``resourceUrl`` stays the API's link, which names the key and the workspace for
``mediaCreate``. The declared size, which a bucket cannot enforce on a PUT, is enforced
when the media is created.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mediamill.media.samples import photo_jpeg
from tests.api.conftest import Api, module_api
from tests.api.test_graphql_mutations import CREATE, SHOW, STAGE
from tests.services.objectstores import AzuriteService, S3Service

SHOE = photo_jpeg(160, 120, seed=11)


@pytest.fixture(scope="module", params=["s3", "az"])
def cloud_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, prefect_api: str
) -> Iterator[tuple[Api, str]]:
    """An app whose store is a fresh bucket on the emulator; and the service's endpoint."""
    service: S3Service | AzuriteService = request.getfixturevalue(
        "s3_service" if request.param == "s3" else "azurite_service"
    )
    endpoint = service.endpoint_url if isinstance(service, S3Service) else service.blob_endpoint
    env = {
        "MEDIAMILL_STORAGE_URL": service.new_storage_url(),
        "MEDIAMILL_STORAGE_OPTIONS": json.dumps(service.storage_options()),
    }
    with module_api(tmp_path_factory, f"presigned-{request.param}", **env) as api:
        yield api, endpoint


def _data(api: Api, token: str, query: str, **variables: Any) -> dict[str, Any]:
    body = api.graphql(token, query, variables)
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def _stage(api: Api, token: str, size: int) -> dict[str, Any]:
    payload = _data(api, token, STAGE, input=[{"filename": "shoe.jpg", "fileSize": size}])
    payload = payload["stagedUploadsCreate"]
    assert payload["userErrors"] == []
    (target,) = payload["stagedTargets"]
    return dict(target)


def _put(target: dict[str, Any], body: bytes) -> httpx.Response:
    headers = {header["name"]: header["value"] for header in target["headers"]}
    return httpx.request(target["method"], target["url"], content=body, headers=headers)


def test_a_presigned_upload_goes_to_the_bucket_and_ends_ready(cloud_api: tuple[Api, str]) -> None:
    api, endpoint = cloud_api
    token = api.token()
    target = _stage(api, token, len(SHOE))
    assert target["url"].startswith(endpoint)
    assert target["resourceUrl"].startswith("http://testserver/uploads/")

    assert _put(target, SHOE).is_success

    created = _data(api, token, CREATE, input={"originalSource": target["resourceUrl"]})
    payload = created["mediaCreate"]
    assert payload["userErrors"] == []
    api.settle()
    media = _data(api, token, SHOW, id=payload["media"]["id"])["media"]
    assert media["status"] == "READY", media
    assert media["filename"] == "shoe.jpg"
    store = api.services.store
    stored = [listed.key for listed in store.list_prefix("tenants/")]
    assert {"thumb", "optimized"} <= {v["name"] for v in media["variants"]}
    for variant in media["variants"]:  # every variant's URL names an object in the bucket
        assert any(variant["url"].endswith(key) for key in stored), variant
    # The staged object is gone once ingested.
    assert list(store.list_prefix("incoming/")) == []


def test_an_upload_larger_than_declared_is_refused_and_dropped(
    cloud_api: tuple[Api, str],
) -> None:
    api, _ = cloud_api
    token = api.token()
    target = _stage(api, token, 100)
    assert _put(target, b"x" * 101).is_success  # the bucket cannot hold it to 100 bytes

    created = _data(api, token, CREATE, input={"originalSource": target["resourceUrl"]})
    payload = created["mediaCreate"]
    assert payload["media"] is None
    assert [e["code"] for e in payload["userErrors"]] == ["TOO_LARGE"]
    assert list(api.services.store.list_prefix("incoming/")) == []


def test_another_workspace_cannot_create_from_the_upload(cloud_api: tuple[Api, str]) -> None:
    api, _ = cloud_api
    target = _stage(api, api.token(), len(SHOE))
    assert _put(target, SHOE).is_success

    other = api.token(workspace="globex")
    created = _data(api, other, CREATE, input={"originalSource": target["resourceUrl"]})
    assert [e["code"] for e in created["mediaCreate"]["userErrors"]] == ["NOT_FOUND"]
