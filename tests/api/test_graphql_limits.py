"""GraphQL abuse: depth, page size, alias floods, cost and fragment bombs, introspection.

Every refused document must be refused before any resolver touches the catalog, so the
resolvers' catalog calls are spied on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse

from mediamill.api.app import create_app
from mediamill.api.dispatch import EmbeddedDispatcher
from mediamill.api.graphql import limits
from mediamill.api.graphql.limits import (
    DEFAULT_FIRST,
    MAX_SELECTIONS,
    FragmentCycleError,
    document_errors,
    selection_cost,
)
from mediamill.api.services import services_of
from mediamill.catalog.library import card_page
from mediamill.catalog.repository import get_media
from mediamill.settings import get_settings
from tests.api.conftest import Api

LARGEST_PAGE = 100


@pytest.fixture(scope="module")
def limits_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One MEDIAMILL_HOME for the module's apps: no flow runs here, only the catalog."""
    with pytest.MonkeyPatch.context() as patch:
        path = tmp_path_factory.mktemp("limits-home")
        for name in list(os.environ):
            if name.startswith("MEDIAMILL_"):
                patch.delenv(name)
        patch.setenv("MEDIAMILL_HOME", str(path))
        yield path


@contextmanager
def _serve(**overrides: Any) -> Iterator[Api]:
    dispatcher = EmbeddedDispatcher()
    settings = get_settings(dispatch="embedded", api_public_url="http://testserver", **overrides)
    app = create_app(settings, dispatcher=dispatcher)
    with TestClient(app) as client:
        yield Api(client, services_of(app.state), dispatcher)


@pytest.fixture(scope="module")
def api(limits_home: Path) -> Iterator[Api]:
    """The app with default limits."""
    with _serve() as served:
        yield served


@pytest.fixture(scope="module")
def strict(limits_home: Path) -> Iterator[Api]:
    """Same catalog, tighter settings: no introspection, depth 3, 5 aliases, cost 200."""
    with _serve(
        graphql_introspection=False,
        graphql_max_depth=3,
        graphql_max_aliases=5,
        graphql_max_cost=200,
    ) as served:
        yield served


@pytest.fixture(scope="module")
def token(api: Api) -> str:
    return api.token("acme", "ana", ("write",))


@pytest.fixture
def resolver_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the catalog reads the query resolvers made during the test."""
    calls: list[str] = []

    def page(*args: Any, **kwargs: Any) -> Any:
        calls.append("card_page")
        return card_page(*args, **kwargs)

    def get(*args: Any, **kwargs: Any) -> Any:
        calls.append("get_media")
        return get_media(*args, **kwargs)

    monkeypatch.setattr("mediamill.api.graphql.queries.card_page", page)
    monkeypatch.setattr("mediamill.catalog.repository.get_media", get)
    return calls


def _messages(body: dict[str, Any]) -> list[str]:
    return [error["message"] for error in body.get("errors") or []]


def _refused(body: dict[str, Any], fragment: str) -> None:
    assert body.get("data") is None, body
    assert any(fragment in message for message in _messages(body)), _messages(body)


def _cost(query: str) -> int:
    document = parse(query)
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return selection_cost(operation.selection_set, fragments, LARGEST_PAGE)


# -- selection_cost ------------------------------------------------------------------


def test_scalars_are_free_and_objects_count_one() -> None:
    assert _cost("{ usage { mediaCount blobCount logicalBytes } }") == 1
    assert _cost('{ media(id: "x") { id status filename } }') == 1
    assert _cost('{ media(id: "x") { id error { code } } }') == 2
    assert _cost("{ __typename }") == 0


def test_lists_count_their_typical_length() -> None:
    weight = limits.LIST_WEIGHTS["variants"]
    assert _cost('{ media(id: "x") { variants { url } } }') == 1 + weight
    # Nested objects of every list item count once per item.
    assert _cost('{ media(id: "x") { variants { url } preview { url } } }') == 1 + weight + 1


def test_connections_multiply_by_first() -> None:
    per_item = 1 + 1  # a node and its error object
    assert _cost("{ recentMedia(first: 7) { nodes { id error { code } } } }") == 1 + 7 * per_item
    # A variable may be as large as the largest page the resolver serves.
    assert (
        _cost("query($n: Int!) { recentMedia(first: $n) { nodes { id error { code } } } }")
        == 1 + LARGEST_PAGE * per_item
    )
    # Without `first` (arguments absent altogether), the resolver's default page size.
    assert _cost("{ recentMedia { nodes { error { code } } } }") == 1 + DEFAULT_FIRST * per_item
    assert _cost("{ recentMedia(first: -5) { nodes { error { code } } } }") == 1 + 1 * per_item


def test_aliases_count_separately() -> None:
    one = _cost('{ media(id: "a") { variants { url } } }')
    assert (
        _cost('{ a: media(id: "a") { variants { url } } b: media(id: "b") { variants { url } } }')
        == 2 * one
    )


def test_fragments_cost_what_they_expand_to() -> None:
    inline = _cost('{ media(id: "x") { ... on Media { variants { url } } } }')
    spread = _cost('{ media(id: "x") { ...V } } fragment V on Media { variants { url } }')
    written_out = _cost('{ media(id: "x") { variants { url } } }')
    assert inline == spread == written_out
    twice = _cost(
        '{ a: media(id: "x") { ...V } b: media(id: "y") { ...V } } '
        "fragment V on Media { variants { url } }"
    )
    assert twice == 2 * written_out


def test_fragment_chains_are_priced_once_per_fragment() -> None:
    levels = 60
    fragments = " ".join(
        f"fragment F{i} on Media {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    last = f"fragment F{levels} on Media {{ error {{ code }} }}"
    query = f'{{ media(id: "x") {{ ...F0 }} }} {fragments} {last}'
    started = time.monotonic()
    cost = _cost(query)
    assert time.monotonic() - started < 10  # expanded, 2^60 selections would never finish
    assert cost == 1 + 2**levels


def test_fragment_cycles_are_refused() -> None:
    with pytest.raises(FragmentCycleError, match="'A'"):
        _cost(
            '{ media(id: "x") { ...A } } fragment A on Media { ...B } fragment B on Media { ...A }'
        )
    document = parse('{ media(id: "x") { ...A } } fragment A on Media { id ...A }')
    (error,) = document_errors(document, 5000, LARGEST_PAGE)
    assert "within itself" in error.message


def test_document_errors_name_the_operation_over_the_cost() -> None:
    cheap = parse("query Cheap { recentMedia(first: 10) { nodes { id } } }")
    assert document_errors(cheap, 11, LARGEST_PAGE) == []
    (error,) = document_errors(cheap, 10, LARGEST_PAGE)
    assert "'Cheap' may return 11 objects; the limit is 10" in error.message


# -- over HTTP -----------------------------------------------------------------------


def test_a_page_of_full_media_fits_the_default_cost(api: Api, token: str) -> None:
    """What a client (the picker page) asks for: a page with variants, preview and errors."""
    media = (
        "id status mediaType filename alt mimeType size width height placeholder "
        'error { code message } preview(name: "thumb") { url width } '
        "variants { name format mimeType width height url }"
    )
    query = f"""query($after: String) {{
      recentMedia(first: 24, after: $after) {{
        nodes {{ {media} }}
        pageInfo {{ hasNextPage endCursor }}
      }}
    }}"""
    body = api.graphql(token, query)
    assert "errors" not in body, body
    assert body["data"]["recentMedia"]["nodes"] == []
    one = api.graphql(token, f'{{ media(id: "{"0" * 32}") {{ {media} }} }}')
    assert one == {"data": {"media": None}}


def test_huge_first_is_refused(api: Api, token: str, resolver_calls: list[str]) -> None:
    for first in (1000, 101, 0, -1):
        _refused(
            api.graphql(token, f"{{ recentMedia(first: {first}) {{ nodes {{ id }} }} }}"),
            "first must be between 1 and 100",
        )
    variable = "query($n: Int!) { recentMedia(first: $n) { nodes { id } } }"
    _refused(api.graphql(token, variable, {"n": 1000}), "first must be between 1 and 100")
    # Priced by its literal first, this one never reaches the resolver at all.
    _refused(
        api.graphql(token, "{ recentMedia(first: 1000) { nodes { variants { url } } } }"),
        "may return",
    )
    assert resolver_calls == []  # the resolver checks `first` before reading the catalog
    body = api.graphql(token, "{ recentMedia(first: 100) { nodes { id } } }")
    assert body == {"data": {"recentMedia": {"nodes": []}}}
    assert resolver_calls == ["card_page"]


def test_alias_flood_is_refused(api: Api, token: str, resolver_calls: list[str]) -> None:
    def aliases(n: int) -> str:
        return "{ " + " ".join(f'a{i}: media(id: "{i}") {{ id }}' for i in range(n)) + " }"

    _refused(api.graphql(token, aliases(50)), "50 aliases found. Allowed: 30")
    assert resolver_calls == []
    allowed = api.graphql(token, aliases(30))
    assert allowed["data"] == {f"a{i}": None for i in range(30)}


def test_cost_bomb_is_refused_before_any_resolver(
    api: Api, token: str, resolver_calls: list[str]
) -> None:
    bomb = """{
      recentMedia(first: 100) {
        edges { cursor node { id variants { url } preview { url } } }
        nodes { variants { name url } }
      }
    }"""
    assert _cost(bomb) > get_settings().graphql_max_cost
    _refused(api.graphql(token, bomb), f"may return {_cost(bomb):,} objects; the limit is 5,000")
    # Aliases multiply the cost as well, each under the alias limit.
    many = (
        "{ "
        + " ".join(
            f"p{i}: recentMedia(first: 100) {{ nodes {{ variants {{ url }} }} }}" for i in range(3)
        )
        + " }"
    )
    _refused(api.graphql(token, many), "the limit is 5,000")
    assert resolver_calls == []


def test_fragment_bomb_is_refused_at_once(api: Api, token: str, resolver_calls: list[str]) -> None:
    """~1 KB of fragments spreading the next one twice: 2^40 selections if expanded."""
    levels = 40
    fragments = " ".join(
        f"fragment F{i} on Media {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    query = f'{{ media(id: "x") {{ ...F0 }} }} {fragments} fragment F{levels} on Media {{ id }}'
    started = time.monotonic()
    body = api.graphql(token, query)
    assert time.monotonic() - started < 30  # expanded, 2^40 selections would not finish
    _refused(body, f"the limit is {MAX_SELECTIONS:,}")
    cyclic = (
        '{ media(id: "x") { ...A } } '
        "fragment A on Media { ...B ...B } fragment B on Media { ...A ...A }"
    )
    _refused(api.graphql(token, cyclic), "within itself")
    assert resolver_calls == []


def test_token_flood_is_refused(api: Api, token: str, resolver_calls: list[str]) -> None:
    query = "{ usage { " + "mediaCount " * 2100 + "} }"
    _refused(api.graphql(token, query), "token")
    assert resolver_calls == []


def test_depth_over_the_limit_is_refused(strict: Api, resolver_calls: list[str]) -> None:
    token = strict.token("acme", "ana", ("read",))
    deep = "{ recentMedia(first: 1) { edges { node { variants { url } } } } }"
    _refused(strict.graphql(token, deep), "exceeds maximum operation depth of 3")
    # Fragments do not hide depth.
    hidden = (
        "{ recentMedia(first: 1) { edges { ...E } } } "
        "fragment E on MediaEdge { node { variants { url } } }"
    )
    _refused(strict.graphql(token, hidden), "exceeds maximum operation depth of 3")
    assert resolver_calls == []
    shallow = strict.graphql(token, "{ recentMedia(first: 1) { nodes { variants { url } } } }")
    assert shallow == {"data": {"recentMedia": {"nodes": []}}}


def test_default_depth_limit_holds(api: Api, token: str, resolver_calls: list[str]) -> None:
    nine = "{ recentMedia { edges { node { a { b { c { d { e { f { g } } } } } } } } } }"
    _refused(api.graphql(token, nine), "exceeds maximum operation depth of 8")
    assert resolver_calls == []


def test_limits_follow_the_settings(strict: Api, resolver_calls: list[str]) -> None:
    token = strict.token("acme", "ana", ("read",))
    six = "{ " + " ".join(f'a{i}: media(id: "{i}") {{ id }}' for i in range(6)) + " }"
    _refused(strict.graphql(token, six), "6 aliases found. Allowed: 5")
    costly = "{ recentMedia(first: 10) { nodes { variants { url } } } }"  # 1 + 10 * 41
    _refused(strict.graphql(token, costly), "may return 411 objects; the limit is 200")
    assert resolver_calls == []


INTROSPECTION = '{ __schema { queryType { name } } __type(name: "Media") { fields { name } } }'


def test_introspection_works_by_default(api: Api, token: str) -> None:
    body = api.graphql(token, INTROSPECTION)
    assert body["data"]["__schema"] == {"queryType": {"name": "Query"}}
    fields = {f["name"] for f in body["data"]["__type"]["fields"]}
    assert {"id", "status", "variants", "placeholder", "metadata"} <= fields
    auth = {"Accept": "text/html", "Authorization": f"Bearer {token}"}
    page = api.client.get("/graphql", headers=auth)
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()


def test_introspection_can_be_switched_off(strict: Api, resolver_calls: list[str]) -> None:
    token = strict.token("acme", "ana", ("read",))
    _refused(strict.graphql(token, INTROSPECTION), "introspection")
    _refused(strict.graphql(token, '{ __type(name: "Media") { name } }'), "introspection")
    # Hiding the schema inside a fragment or behind an alias does not help.
    _refused(
        strict.graphql(token, "{ ...Q } fragment Q on Query { s: __schema { types { name } } }"),
        "introspection",
    )
    assert resolver_calls == []
    # __typename is not introspection of the schema; ordinary queries still work.
    assert strict.graphql(token, "{ __typename }") == {"data": {"__typename": "Query"}}
    auth = {"Accept": "text/html", "Authorization": f"Bearer {token}"}
    page = strict.client.get("/graphql", headers=auth)
    assert page.status_code != 200
    assert "graphiql" not in page.text.lower()


def test_a_document_is_validated_once(api: Api, token: str) -> None:
    from strawberry.extensions.validation_cache import _get_validate_cache

    # The depth and alias rules are part of the cache key: rebuilt per request, they
    # made every request a miss.
    cache = _get_validate_cache(limits.DOCUMENT_CACHE_SIZE)
    query = "{ recentMedia(first: 3) { nodes { id filename } pageInfo { hasNextPage } } }"
    before = cache.cache_info()
    for _ in range(3):
        assert "errors" not in api.graphql(token, query)
    after = cache.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 2)
