"""A graphql-core executor that completes resolver-less fields without per-field machinery.

A library page is about 900 fields, nearly all of them dataclass attributes: strings,
numbers, enums, and the objects and lists that hold them (edges, nodes, variants).
graphql-core gives each one a path, a resolve info, a resolver call and several layers of
value completion: most of a page's CPU. This executor reads such a field's attribute and
completes the value itself, recursively, as long as everything below it has no resolver
either. Any other field (a resolver, an abstract type), and any value the shortcut cannot
finish (an exception, a null for a non-null field, an awaitable, a value a scalar refuses,
an iterable that is not a list), makes it hand the whole field back to graphql-core, so
data and errors stay exactly graphql-core's.

It overrides ``execute_fields`` and ``execute_field`` of graphql-core's ``Executor``,
which it documents as overridable but not public: `tests/api/test_graphql_execution.py`
compares the answers with the stock executor's.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    Undefined,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

# graphql-core's `Undefined` is a sentinel; completion answers with it for "take the slow path".
_SLOW = Undefined


class _Attribute(NamedTuple):
    """A field strawberry answers by reading an attribute of its source: no resolver."""

    name: str
    read: Callable[[Any, str], Any]
    field_type: GraphQLOutputType
    # For a built-in scalar: the Python type whose values it answers unchanged (str for
    # String), so the common case skips coercion; None for every other type.
    same: type | None
    nullable: bool


# Built-in scalars and the Python type each one answers as is (Int: within 32 bits).
_UNCHANGED: dict[GraphQLScalarType, type] = {
    GraphQLString: str,
    GraphQLID: str,
    GraphQLInt: int,
    GraphQLBoolean: bool,
}
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


# Per schema: (type name, field name) -> how to read it, or None when it has a resolver.
_PLANS: weakref.WeakKeyDictionary[GraphQLSchema, dict[tuple[str, str], _Attribute | None]] = (
    weakref.WeakKeyDictionary()
)


def _plan(field: GraphQLField) -> _Attribute | None:
    """How to read ``field`` when strawberry would only read an attribute for it."""
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(definition, StrawberryField) or not definition.is_basic_field:
        return None
    if field.args or not getattr(field.resolve, "_is_default", False):
        return None
    nullable = not isinstance(field.type, GraphQLNonNull)
    named = field.type if nullable else field.type.of_type  # type: ignore[union-attr]
    same = _UNCHANGED.get(named) if isinstance(named, GraphQLScalarType) else None
    return _Attribute(
        definition.python_name, definition.default_resolver, field.type, same, nullable
    )


def plans_for(schema: GraphQLSchema) -> dict[tuple[str, str], _Attribute | None]:
    """Every field of ``schema``'s object types with its plan, built once per schema."""
    plans = _PLANS.get(schema)
    if plans is None:
        plans = {
            (type_.name, name): _plan(field)
            for type_ in schema.type_map.values()
            if isinstance(type_, GraphQLObjectType)
            for name, field in type_.fields.items()
        }
        _PLANS[schema] = plans
    return plans


def _probe(_source: Any, _info: Any) -> None:
    """A resolver to ask the middleware manager whether it wraps resolvers at all."""


# Response name, how to read the field, and its field details (for its own sub-selection).
_Fields = list[tuple[str, _Attribute, FieldDetailsList]]


class PlainFieldExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, with the shortcut for resolver-less fields."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        middleware = self.middleware_manager
        # A middleware (an extension's `resolve` hook) must see every field: no shortcut.
        plain = middleware is None or middleware.get_field_resolver(_probe) is _probe
        self._plans = plans_for(self.schema) if plain else {}
        # id(grouped field set) -> (that set, kept alive so the id stays its own; its plans)
        self._field_sets: dict[int, tuple[GroupedFieldSet, _Fields | None]] = {}

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> Any:
        """An object whose selected fields have no resolver is completed in one pass."""
        if self._plans:
            fields = self._plain_fields(parent_type, grouped_field_set)
            if fields is not None:
                row = self._complete_object(fields, source_value)
                if row is not _SLOW:
                    return row
        return super().execute_fields(
            parent_type, source_value, path, grouped_field_set, position_context
        )

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: Path,
        position_context: Any,
    ) -> Any:
        """A resolver-less field among fields with resolvers: its value in one pass too."""
        plan = self._plans.get((parent_type.name, field_details_list[0].node.name.value))
        if plan is not None:
            value = self._read(plan, source)
            if value is not _SLOW:
                value = self._complete(plan.field_type, field_details_list, value)
                if value is not _SLOW:
                    return value
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def _plain_fields(
        self, parent_type: GraphQLObjectType, grouped: GroupedFieldSet
    ) -> _Fields | None:
        """Each selected field with its plan, or None when one of them has a resolver."""
        cached = self._field_sets.get(id(grouped))
        if cached is not None and cached[0] is grouped:
            return cached[1]
        fields: _Fields | None = []
        for response_name, details in grouped.items():
            plan = self._plans.get((parent_type.name, details[0].node.name.value))
            if plan is None:
                fields = None
                break
            fields.append((response_name, plan, details))  # type: ignore[union-attr]
        self._field_sets[id(grouped)] = (grouped, fields)
        return fields

    @staticmethod
    def _read(plan: _Attribute, source: Any) -> Any:
        """The field's attribute, or ``_SLOW`` when reading it raised."""
        try:
            return plan.read(source, plan.name)
        except Exception:
            return _SLOW  # graphql-core reads it again and reports the error where it belongs

    def _complete_object(self, fields: _Fields, source: Any) -> Any:
        """The object's answer, or ``_SLOW``; the hottest loop, so it reads inline."""
        row: dict[str, Any] = {}
        for response_name, plan, details in fields:
            try:
                value = plan.read(source, plan.name)
            except Exception:
                return _SLOW
            same = value.__class__ is plan.same
            if same and (plan.same is not int or _INT_MIN <= value <= _INT_MAX):
                row[response_name] = value  # what the scalar's coercion would answer
                continue
            if value is None and plan.nullable:
                row[response_name] = None
                continue
            value = self._complete(plan.field_type, details, value)
            if value is _SLOW:
                return _SLOW
            row[response_name] = value
        return row

    def _complete(self, type_: GraphQLOutputType, details: FieldDetailsList, value: Any) -> Any:
        """``value`` completed as ``type_``, or ``_SLOW`` for anything graphql-core must see."""
        if isinstance(type_, GraphQLNonNull):
            completed = self._complete(type_.of_type, details, value)
            return _SLOW if completed is None else completed
        if value is None:
            return None
        if isinstance(value, Exception) or self.is_awaitable(value):
            return _SLOW
        if isinstance(type_, GraphQLScalarType | GraphQLEnumType):
            try:
                coerced = type_.coerce_output_value(value)
            except Exception:
                return _SLOW
            return _SLOW if coerced is None or coerced is Undefined else coerced
        if isinstance(type_, GraphQLList):
            if type(value) not in (list, tuple) or any(d.node.directives for d in details):
                return _SLOW  # another iterable, or @stream
            items = []
            for item in value:
                completed = self._complete(type_.of_type, details, item)
                if completed is _SLOW:
                    return _SLOW
                items.append(completed)
            return items
        if isinstance(type_, GraphQLObjectType) and not type_.is_type_of:
            grouped, new_defer_usages, _ = self.collect_subfields(type_, details)
            fields = None if new_defer_usages else self._plain_fields(type_, grouped)
            return _SLOW if fields is None else self._complete_object(fields, value)
        return _SLOW  # interfaces and unions: graphql-core resolves the runtime type
