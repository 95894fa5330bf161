"""Declarative base and portable column types shared by every catalog model.

The catalog runs on SQLite (embedded) and PostgreSQL (production) from the same models and
the same migrations, so nothing here may depend on one backend's behaviour.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import DeclarativeBase, Mapper

__all__ = ["ID", "JSON", "Base", "UTCDateTime", "refuse_overlong_strings", "str_enum", "utcnow"]

# Constraint and index names are derived, never left to the backend: PostgreSQL and SQLite
# would otherwise invent different names, and a later migration that drops or alters a
# constraint must name it the same way on both. The double underscore separates the table
# from the columns, so "media.source_key" cannot collide with "media_source.key".
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s__%(column_0_N_name)s",
    "uq": "uq_%(table_name)s__%(column_0_N_name)s",
    "ck": "ck_%(table_name)s__%(constraint_name)s",
    "fk": "fk_%(table_name)s__%(column_0_N_name)s__%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Surrogate keys of tables that grow with uploads: BIGINT (BIGSERIAL) on PostgreSQL, but
# plain INTEGER on SQLite, where only an INTEGER PRIMARY KEY aliases the rowid and
# autoincrements (a BIGINT primary key there would have to be supplied by hand).
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# JSONB on PostgreSQL (indexable, compact), the generic JSON (text) type elsewhere.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC: the only clock the catalog writes."""
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp that is stored in UTC and always read back timezone-aware in UTC.

    PostgreSQL keeps the offset (``timestamptz``); SQLite has no datetime type and
    SQLAlchemy stores it as text, silently dropping the offset. Normalising to UTC on the
    way in makes the stored text comparable and sortable, and re-attaching UTC on the way
    out gives callers the same aware values on both backends. Naive datetimes are refused
    rather than guessed at.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: catalog timestamps must be tz-aware")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def str_enum(enum_class: type[enum.StrEnum], name: str) -> sa.Enum:
    """A column type for a string enum: VARCHAR plus a named CHECK constraint.

    Native PostgreSQL enums need ``ALTER TYPE`` (outside a transaction, before 12) to gain
    a value and cannot lose one; a CHECK constraint is replaced like any other, on both
    backends. The enum's values (not its member names) are stored, and the column is wider
    than today's longest value so adding a value later needs no column change.
    """
    return sa.Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        validate_strings=True,
        values_callable=lambda members: [member.value for member in members],
    )


class Base(DeclarativeBase):
    """Base of every catalog model.

    Defaults (ids, timestamps, empty JSON objects, initial statuses) live in Python, not in
    server defaults: the application's UTC clock is then the only source of time, and
    SQLite's ``CURRENT_TIMESTAMP`` text (no microseconds) never mixes with SQLAlchemy's in
    the same column, where it would sort wrongly.
    """

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        uuid.UUID: sa.Uuid(),
        dict[str, Any]: JSON,
    }


def refuse_overlong_strings(table: sa.Table, values: dict[str, Any]) -> None:
    """Refuse a value longer than its ``VARCHAR(n)`` column, on every backend alike.

    PostgreSQL refuses such a value (``value too long for type character varying``) where
    SQLite stores it whole: a catalog built on the embedded default would then fail on the
    first copy or the first write in production. Checked before the statement, it is the
    same error on both, naming the column. ``values`` is keyed by column name.
    """
    for name, value in values.items():
        column = table.c.get(name)
        if column is None or not isinstance(column.type, sa.String) or not isinstance(value, str):
            continue
        length = column.type.length
        if length and len(value) > length:
            raise ValueError(
                f"{table.name}.{name} holds at most {length} characters, not {len(value)}"
            )


def _refuse_overlong_attributes(_mapper: Mapper[Any], _connection: Connection, target: Any) -> None:
    """The same check for a row the ORM flushes; only loaded values are read (no lazy load)."""
    state = sa.inspect(target)
    values = {}
    for prop in state.mapper.column_attrs:
        if prop.key in state.dict:
            values[prop.columns[0].name] = state.dict[prop.key]
    refuse_overlong_strings(state.mapper.local_table, values)


sa.event.listen(Base, "before_insert", _refuse_overlong_attributes, propagate=True)
sa.event.listen(Base, "before_update", _refuse_overlong_attributes, propagate=True)
