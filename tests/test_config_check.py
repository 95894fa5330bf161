"""``mediamill config check`` shows where the catalog is, never the password to it."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from mediamill.cli import app
from tests.services.postgres import PostgresServer

SECRET = "s3cret-Pa55"


def config_check(url: str) -> tuple[int, str]:
    """Exit code and everything printed, in-process, on a terminal too wide to fold lines."""
    result = CliRunner().invoke(
        app, ["config", "check"], env={"MEDIAMILL_DATABASE_URL": url, "COLUMNS": "1000"}
    )
    return result.exit_code, result.stdout + result.stderr


def with_password(url: str, password: str, *, database: str | None = None) -> str:
    parsed = make_url(url).set(password=password)
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


@pytest.mark.usefixtures("home")
@pytest.mark.parametrize("driver", [None, "psycopg"])
def test_a_reachable_catalog_is_shown_without_its_password(
    postgres_server: PostgresServer, driver: str | None
) -> None:
    # The loopback superuser is trusted, so the server accepts any password.
    url = with_password(postgres_server.new_database(driver=driver), SECRET)

    code, output = config_check(url)

    assert code == 1, output  # reachable, but not migrated yet
    assert "migrations at none" in output
    assert f"postgres:***@{postgres_server.host}:{postgres_server.port}/" in output
    assert SECRET not in output


@pytest.mark.usefixtures("home")
def test_connection_errors_do_not_show_the_password(postgres_server: PostgresServer) -> None:
    url = with_password(postgres_server.new_database(), SECRET, database="no_such_database")

    code, output = config_check(url)

    assert code == 1, output
    assert "cannot connect" in output
    assert "no_such_database" in output
    assert SECRET not in output


@pytest.mark.usefixtures("home")
def test_a_percent_encoded_password_is_hidden_in_both_spellings(
    postgres_server: PostgresServer,
) -> None:
    url = with_password(postgres_server.new_database(), "p@ss/w:rd?")
    assert "p%40ss" in url

    code, output = config_check(url)

    assert code == 1, output
    assert "***" in output
    assert "p@ss" not in output
    assert "p%40ss" not in output


@pytest.mark.usefixtures("home")
def test_an_unencoded_at_sign_is_refused_without_echoing_the_url() -> None:
    # SQLAlchemy would end the password at the first "@" and take the rest for the host.
    code, output = config_check("postgresql://mediamill:half@secret@db.internal/mediamill")

    assert code == 2, output
    assert "MEDIAMILL_DATABASE_URL" in output
    assert "%40" in output
    assert "half" not in output
    assert "secret" not in output


@pytest.mark.usefixtures("home")
def test_an_unparseable_url_is_reported_not_raised() -> None:
    code, output = config_check(f"postgresql://mediamill:{SECRET}@db.internal:port/mediamill")

    assert code == 1, output
    assert "MEDIAMILL_DATABASE_URL: unusable" in output
    assert "Traceback" not in output
    assert SECRET not in output
