from __future__ import annotations

import pickle
import sqlite3

import pytest
from sqlalchemy import exc as sa_exc

from mediamill.catalog.errors import (
    CatalogError,
    CatalogNotMigrated,
    NotFound,
    TransientCatalogError,
    is_transient,
)


@pytest.mark.parametrize("error_class", [NotFound, CatalogNotMigrated, TransientCatalogError])
def test_tree(error_class: type[CatalogError]) -> None:
    assert issubclass(error_class, CatalogError)
    assert issubclass(CatalogError, Exception)


@pytest.mark.parametrize(
    "error",
    [
        NotFound("media 42"),
        CatalogNotMigrated(),
        CatalogNotMigrated("custom"),
        TransientCatalogError("locked"),
    ],
)
def test_errors_survive_pickling(error: CatalogError) -> None:
    # Prefect pickles a task's exception to carry it across processes.
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)


def test_not_migrated_says_what_to_run() -> None:
    assert "mediamill db upgrade" in str(CatalogNotMigrated())


def operational(orig: Exception) -> sa_exc.OperationalError:
    return sa_exc.OperationalError("INSERT ...", {}, orig)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (operational(sqlite3.OperationalError("database is locked")), True),
        (operational(sqlite3.OperationalError("database table is locked: media")), True),
        (operational(sqlite3.OperationalError("no such table: media")), False),
        (sa_exc.IntegrityError("INSERT ...", {}, sqlite3.IntegrityError("UNIQUE")), False),
        (sa_exc.TimeoutError("QueuePool limit reached"), True),
        (sa_exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True), True),
        (ValueError("not a database error"), False),
    ],
)
def test_is_transient(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient
