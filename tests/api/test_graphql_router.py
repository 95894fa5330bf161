"""The GraphQL router's JSON: orjson, with the same answers and errors as ``json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cross_web import HTTPException

from mediamill.api.graphql.schema import MediaLibraryRouter, make_router
from mediamill.settings import Settings


@pytest.fixture
def router(tmp_path: Path) -> MediaLibraryRouter:
    made = make_router(Settings(home=tmp_path))
    assert isinstance(made, MediaLibraryRouter)
    return made


def test_a_body_encodes_to_what_json_reads_back(router: MediaLibraryRouter) -> None:
    body = {"data": {"recentMedia": {"nodes": [{"id": "a", "width": 4000, "alt": None}]}}}
    assert json.loads(router.encode_json(body)) == body


def test_an_integer_orjson_cannot_hold_is_still_written(router: MediaLibraryRouter) -> None:
    body = {"data": {"meta": {"count": 2**70}}}
    assert json.loads(router.encode_json(body)) == body


def test_a_malformed_body_is_a_400(router: MediaLibraryRouter) -> None:
    with pytest.raises(HTTPException) as refused:
        router.parse_json(b'{"query": ')
    assert refused.value.status_code == 400
    assert router.parse_json(b'{"query": "{ usage { bytes } }"}') == {
        "query": "{ usage { bytes } }"
    }
