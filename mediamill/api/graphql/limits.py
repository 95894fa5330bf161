"""Limits on what one GraphQL document may ask for: tokens, size, depth, aliases and cost.

Cost is a worst-case count of the objects an operation could return, Shopify style: a
scalar field is free, an object counts 1, a list of objects its typical length, and a
connection multiplies its selection by ``first`` (by the largest page when ``first`` is a
variable, since the resolver caps it there).

Cost and size (selections once fragments are expanded) are priced *before* validation,
each fragment once: graphql-core's rules and strawberry's depth limiter walk every
expansion of every spread, so a few hundred bytes of fragments that each spread the next
one twice would keep the event loop busy for hours if they ever saw such a document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)

from mediamill.settings import Settings

MAX_TOKENS = 2000
DOCUMENT_CACHE_SIZE = 256
# Fields, inline fragments and spreads of one document once its fragments are expanded.
MAX_SELECTIONS = 10_000
# Typical lengths of list fields that are not paged.
LIST_WEIGHTS = {"variants": 40, "stagedTargets": 50, "userErrors": 5, "headers": 2}
PAGED_FIELDS = {"recentMedia"}
DEFAULT_FIRST = 20


class FragmentCycleError(ValueError):
    """A fragment spreads itself, directly or through others (validation refuses it too)."""


def _first(field: FieldNode, largest_page: int) -> int:
    for argument in field.arguments or ():
        if argument.name.value == "first":
            if isinstance(argument.value, IntValueNode):
                return max(int(argument.value.value), 1)
            return largest_page
    return DEFAULT_FIRST


def _price(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    largest_page: int,
    entered: frozenset[str],
    memo: dict[str, tuple[int, int]],
) -> tuple[int, int]:
    """(cost, size) under ``selection_set``; each fragment is priced once, into ``memo``."""
    if selection_set is None:
        return 0, 0
    cost = size = 0
    for selection in selection_set.selections:
        size += 1
        if isinstance(selection, FieldNode):
            if selection.selection_set is None:
                continue  # a scalar: free
            children, below = _price(
                selection.selection_set, fragments, largest_page, entered, memo
            )
            size += below
            name = selection.name.value
            if name in PAGED_FIELDS:
                cost += 1 + _first(selection, largest_page) * children
            else:
                cost += LIST_WEIGHTS.get(name, 1) * (1 + children)
        elif isinstance(selection, InlineFragmentNode):
            inner, below = _price(selection.selection_set, fragments, largest_page, entered, memo)
            cost, size = cost + inner, size + below
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in entered:
                raise FragmentCycleError(f"Cannot spread fragment '{name}' within itself.")
            fragment = fragments.get(name)
            if fragment is None:
                continue  # validation reports the unknown fragment
            if name not in memo:
                memo[name] = _price(
                    fragment.selection_set, fragments, largest_page, entered | {name}, memo
                )
            inner, below = memo[name]
            cost, size = cost + inner, size + below
    return cost, size


def selection_cost(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    largest_page: int,
) -> int:
    """Worst-case objects under ``selection_set``; FragmentCycleError for a fragment cycle."""
    return _price(selection_set, fragments, largest_page, frozenset(), {})[0]


def document_errors(document: DocumentNode, max_cost: int, largest_page: int) -> list[GraphQLError]:
    """Why ``document`` is too big or too costly to validate or run; empty when it is not."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    memo: dict[str, tuple[int, int]] = {}
    errors = []
    for node in document.definitions:
        if not isinstance(node, OperationDefinitionNode):
            continue
        name = node.name.value if node.name else "anonymous"
        try:
            cost, size = _price(node.selection_set, fragments, largest_page, frozenset(), memo)
        except FragmentCycleError as cycle:
            return [GraphQLError(str(cycle), node)]
        if size > MAX_SELECTIONS:
            errors.append(
                GraphQLError(
                    f"operation '{name}' has {size:,} selections once its fragments are "
                    f"expanded; the limit is {MAX_SELECTIONS:,}",
                    node,
                )
            )
        elif cost > max_cost:
            errors.append(
                GraphQLError(
                    f"operation '{name}' may return {cost:,} objects; the limit is "
                    f"{max_cost:,} (ask for smaller pages or fewer fields)",
                    node,
                )
            )
    return errors


class CostLimiter(SchemaExtension):
    """Refuses a document over the size or cost limit before anything validates it."""

    def __init__(self, max_cost: int, largest_page: int) -> None:
        self.max_cost = max_cost
        self.largest_page = largest_page

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            # Errors set here make strawberry skip validation and answer with them.
            errors = document_errors(document, self.max_cost, self.largest_page)
            if errors:
                context.pre_execution_errors = errors
        yield


class CachedValidation(ValidationCache):
    """Strawberry's validation cache, skipped for a document the cost check refused."""

    def on_validate(self) -> Iterator[None]:
        if self.execution_context.pre_execution_errors:
            yield
            return
        yield from super().on_validate()


def extensions(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """The limits the settings ask for, as factories: strawberry builds them per request.

    The depth and alias rules are built once here: the validation cache is keyed by the
    rule classes, and a limiter built per request makes a new class every time.
    """
    rules = [
        *QueryDepthLimiter(max_depth=settings.graphql_max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases).validation_rules,
    ]
    chosen: list[Callable[[], SchemaExtension]] = [
        # Clients send the same few documents again and again: parse and validate each once.
        lambda: ParserCache(maxsize=DOCUMENT_CACHE_SIZE),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: CostLimiter(settings.graphql_max_cost, settings.graphql_max_first),
        # After the cost check, so a refused document is neither validated nor cached.
        lambda: CachedValidation(maxsize=DOCUMENT_CACHE_SIZE),
        lambda: AddValidationRules(rules),
    ]
    if not settings.graphql_introspection:
        chosen.append(DisableIntrospection)
    return chosen
