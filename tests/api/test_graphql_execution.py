"""The plain-leaf executor answers exactly what strawberry's stock executor answers.

Each document runs twice on the same types, once per executor, and the two results must
match byte for byte once serialised: data (key order included), errors, messages, paths.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.scalars import JSON
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from mediamill.api.graphql.execution import PlainFieldExecutor, plans_for
from mediamill.api.graphql.schema import make_schema
from mediamill.api.graphql.types import MediaNode, MediaStatusEnum
from mediamill.catalog.library import MediaCard, VariantCard
from mediamill.catalog.models import MediaStatus, MediaType
from mediamill.settings import Settings

MOMENT = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def card(index: int, *, failed: bool = False) -> MediaCard:
    """A library row as ``card_page`` returns it: a ready image, or a failed upload."""
    variants = [
        VariantCard(
            name, fmt, f"image/{fmt}", width, width, 1000 + width, f"w/{index}/{name}.{fmt}"
        )
        for name, width in (("optimized", 1200), ("thumb", 300))
        for fmt in ("webp", "jpeg")
    ]
    return MediaCard(
        id=uuid.UUID(int=index),
        media_type=None if failed else MediaType.image,
        status=MediaStatus.failed if failed else MediaStatus.ready,
        error_code="corrupt" if failed else None,
        error_message=None,
        filename=f"photo-{index}.jpg",
        alt=None if index % 2 else "a shoe",
        uploader="ana",
        mime_type=None if failed else "image/jpeg",
        size=None if failed else 123_456,
        width=None if failed else 4000,
        height=None if failed else 3000,
        placeholder=None if failed else "1QcSHQRnh493V4dIh4eXh1h4kJUI",
        sha256=None if failed else "ab" * 32,
        metadata={} if failed else {"camera": "X100", "iso": 200},
        variants=[] if failed else variants,
        created_at=MOMENT,
        updated_at=MOMENT,
    )


class Exploding:
    """A source whose ``name`` cannot be read: the error must point at that field."""

    format = "jpeg"

    @property
    def name(self) -> str:
        raise RuntimeError("storage gone")


class Odd:
    """Values a plain field can hold that the shortcut must leave to graphql-core."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


@strawberry.type
class Item:
    name: str
    format: str | None
    count: int
    status: MediaStatusEnum
    data: JSON | None = None  # coerced as is: only the awaitable check stops a coroutine


@strawberry.type
class Query:
    @strawberry.field
    def library(self) -> list[MediaNode]:
        return [
            MediaNode.from_card(card(i, failed=i == 2), lambda key: f"https://cdn/{key}")
            for i in range(4)
        ]

    @strawberry.field
    def exploding(self) -> list[Item]:
        return [Exploding()]  # type: ignore[list-item]

    @strawberry.field
    def missing(self) -> Item | None:
        return Odd(name=None, format=None, count=1, status=MediaStatusEnum.READY)  # type: ignore[return-value]

    @strawberry.field
    def refused(self) -> list[Item]:
        return [Odd(name="a", format="b", count="not a number", status="nope")]  # type: ignore[list-item]

    @strawberry.field
    def wide(self) -> list[Item]:
        """An int the shortcut must not pass as is: Int stops at 32 bits."""
        return [Odd(name="wide", format=None, count=2**40, status=MediaStatusEnum.READY)]  # type: ignore[list-item]

    @strawberry.field
    def flag(self) -> list[Item]:
        """A bool is an int to Python; Int answers it as 1."""
        return [Odd(name="flag", format=None, count=True, status=MediaStatusEnum.READY)]  # type: ignore[list-item]

    @strawberry.field
    def gaps(self) -> list[Item | None]:
        return [Odd(name="a", format=None, count=1, status=MediaStatusEnum.READY), None]  # type: ignore[list-item]

    @strawberry.field
    def holes(self) -> list[Item] | None:
        return [Odd(name="a", format=None, count=1, status=MediaStatusEnum.READY), None]  # type: ignore[list-item]

    @strawberry.field
    def pending(self) -> Item:
        async def later() -> str:
            return "late"

        return Odd(  # type: ignore[return-value]
            name="n", format="x", count=2, status=MediaStatusEnum.PENDING, data=later()
        )


NODE = """id mediaType status error { code message } filename alt uploader mimeType size
  width height placeholder sha256 metadata createdAt updatedAt
  variants { name format mimeType width height size url }
  preview { name url } __typename"""
# name: (document, whether its answer carries errors)
DOCUMENTS = {
    "library page": (f"{{ library {{ {NODE} }} }}", False),
    "aliases and repeats": (
        """{ library { a: id id b: filename filename status
            variants { w: width width url n: name } } }""",
        False,
    ),
    "fragments and directives": (
        """query($skip: Boolean!) { library { ...Card variants { ... on Variant { name }
             size @skip(if: $skip) format @include(if: $skip) } } }
           fragment Card on Media { id alt @skip(if: $skip) uploader }""",
        False,
    ),
    "a list with a null item": ("{ gaps { name format count status } }", False),
    "a null item in a non-null list": ("{ holes { name count } }", True),
    "an attribute that raises": ("{ exploding { format name } }", True),
    "null in a non-null field": ("{ missing { count name format } }", True),
    "values the scalars refuse": ("{ refused { name count status } }", True),
    "an int past 32 bits": ("{ wide { name count } }", True),
    "a bool as an int": ("{ flag { name count } }", False),
}


def run(executor: type[StrawberryGraphQLCoreExecutionContext], document: str) -> str:
    schema = strawberry.Schema(query=Query, execution_context_class=executor)
    result = schema.execute_sync(document, variable_values={"skip": True})
    return dump(result)


def dump(result: Any) -> str:
    errors = [
        {"message": e.message, "path": e.path, "locations": [tuple(x) for x in e.locations or ()]}
        for e in result.errors or ()
    ]
    return json.dumps({"data": result.data, "errors": errors}, default=str)


@pytest.mark.parametrize("name", DOCUMENTS)
def test_answers_what_the_stock_executor_answers(name: str) -> None:
    document, has_errors = DOCUMENTS[name]
    plain = run(PlainFieldExecutor, document)
    assert plain == run(StrawberryGraphQLCoreExecutionContext, document)
    assert bool(json.loads(plain)["errors"]) is has_errors


def test_an_awaitable_value_is_awaited_as_graphql_core_would() -> None:
    def execute(executor: type[StrawberryGraphQLCoreExecutionContext]) -> str:
        schema = strawberry.Schema(query=Query, execution_context_class=executor)
        return dump(asyncio.run(schema.execute("{ pending { name format count status data } }")))

    plain = execute(PlainFieldExecutor)
    assert plain == execute(StrawberryGraphQLCoreExecutionContext)
    assert json.loads(plain)["data"] == {
        "pending": {"name": "n", "format": "x", "count": 2, "status": "PENDING", "data": "late"}
    }


@pytest.fixture
def slow_path_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The fields that reach graphql-core's own ``execute_field``, by name."""
    calls: list[str] = []
    original = StrawberryGraphQLCoreExecutionContext.execute_field

    def counted(self: Any, parent_type: Any, source: Any, fields: Any, *args: Any) -> Any:
        calls.append(f"{parent_type.name}.{fields[0].node.name.value}")
        return original(self, parent_type, source, fields, *args)

    monkeypatch.setattr(StrawberryGraphQLCoreExecutionContext, "execute_field", counted)
    return calls


def test_resolver_less_fields_skip_graphql_cores_field_machinery(
    slow_path_calls: list[str],
) -> None:
    run(PlainFieldExecutor, DOCUMENTS["library page"][0])
    # Only resolvers and __typename (graphql-core's own resolver) go graphql-core's way.
    assert sorted(set(slow_path_calls)) == ["Media.__typename", "Media.preview", "Query.library"]


class Watching(SchemaExtension):
    """An extension with a ``resolve`` hook: it must see every field, plain ones too."""

    seen: ClassVar[list[str]] = []

    def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        Watching.seen.append(info.field_name)
        return _next(root, info, *args, **kwargs)


def test_a_resolve_hook_switches_the_shortcut_off() -> None:
    Watching.seen = []
    schema = strawberry.Schema(
        query=Query, extensions=[Watching], execution_context_class=PlainFieldExecutor
    )
    result = schema.execute_sync("{ library { filename variants { url } } }")
    assert result.errors is None
    assert Watching.seen.count("filename") == 4
    assert Watching.seen.count("url") == 12


def test_the_api_schema_runs_on_it_and_plans_every_resolver_less_field() -> None:
    schema = make_schema(Settings())
    assert schema.execution_context_class is PlainFieldExecutor
    plans = plans_for(schema._schema)
    for field in ("name", "format", "mimeType", "width", "height", "size", "url"):
        assert plans[("Variant", field)] is not None
    for type_, field in (
        ("MediaConnection", "edges"),
        ("MediaEdge", "node"),
        ("Media", "variants"),
    ):
        assert plans[(type_, field)] is not None
    assert plans[("Media", "preview")] is None  # resolvers
    assert plans[("Query", "recentMedia")] is None
