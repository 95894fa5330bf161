from __future__ import annotations

from mediamill.media.samples import photo_jpeg
from tests.api.conftest import Api

STAGE = """
mutation($input: [StagedUploadInput!]!) {
  stagedUploadsCreate(input: $input) {
    stagedTargets { url method resourceUrl headers { name value } }
    userErrors { field code message }
  }
}"""
CREATE = """
mutation($input: MediaCreateInput!) {
  mediaCreate(input: $input) {
    media { id status filename }
    userErrors { field code message }
  }
}"""
SHOW = """
query($id: ID!) { media(id: $id) { id status mediaType width variants { name format url } } }"""


def test_staged_upload_turns_ready(api: Api) -> None:
    token = api.token()
    data = photo_jpeg(640, 480, seed=1)
    staged = api.graphql(token, STAGE, {"input": [{"filename": "shoe.jpg", "fileSize": len(data)}]})
    target = staged["data"]["stagedUploadsCreate"]["stagedTargets"][0]
    put = api.client.put(target["url"], content=data)
    assert put.status_code == 201, put.text
    created = api.graphql(token, CREATE, {"input": {"originalSource": target["resourceUrl"]}})
    payload = created["data"]["mediaCreate"]
    assert payload["userErrors"] == []
    assert payload["media"]["status"] == "PENDING"
    assert payload["media"]["filename"] == "shoe.jpg"
    api.settle()
    shown = api.graphql(token, SHOW, {"id": payload["media"]["id"]})["data"]["media"]
    assert shown["status"] == "READY", shown
    assert shown["width"] == 640
    assert any(v["name"] == "thumb" for v in shown["variants"])
