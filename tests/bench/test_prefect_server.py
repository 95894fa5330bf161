"""bench.prefect_server: a throwaway Prefect server on the database it is given."""

from __future__ import annotations

import httpx
import psycopg
import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL

from bench.prefect_server import prefect_server_on
from tests.services.postgres import PostgresServer, plain_url

pytestmark = pytest.mark.slow


def test_a_server_keeps_its_state_in_the_given_database_and_stops_on_exit(
    postgres_server: PostgresServer,
) -> None:
    database = postgres_server.new_database(driver="asyncpg")
    before = PREFECT_API_URL.value()

    with prefect_server_on(database) as url:
        assert PREFECT_API_URL.value() == url
        assert httpx.get(f"{url}/health", timeout=10).is_success
        with get_client(sync_client=True) as client:
            client.create_flow_from_name("probe-flow")
        with psycopg.connect(plain_url(database)) as connection:
            names = [row[0] for row in connection.execute("SELECT name FROM flow")]
        assert names == ["probe-flow"]

    assert PREFECT_API_URL.value() == before
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=10)
