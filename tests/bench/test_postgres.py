"""The throwaway PostgreSQL cluster: starts, serves a query, and leaves nothing behind."""

from __future__ import annotations

import socket

import psycopg
import pytest
import sqlalchemy as sa

from bench.postgres import Cluster, PostgresUnavailableError, find_bin_dir, throwaway_cluster


@pytest.fixture(scope="module", autouse=True)
def _binaries() -> None:
    """A missing PostgreSQL fails loudly: `make test` installs it (make system-packages)."""
    try:
        find_bin_dir()
    except PostgresUnavailableError as error:
        pytest.fail(str(error))


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_cluster_serves_its_database_then_disappears() -> None:
    with throwaway_cluster(settings={"work_mem": "8MB"}) as cluster:
        assert cluster.url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
        assert cluster.database == "mediamill"
        engine = sa.create_engine(cluster.url)
        try:
            with engine.connect() as connection:
                assert connection.execute(sa.text("SELECT 40 + 2")).scalar_one() == 42
                assert connection.execute(sa.text("SHOW fsync")).scalar_one() == "off"
                assert connection.execute(sa.text("SHOW work_mem")).scalar_one() == "8MB"
                listen = connection.execute(sa.text("SHOW listen_addresses")).scalar_one()
                assert listen == "127.0.0.1"
                database = connection.execute(sa.text("SELECT current_database()")).scalar_one()
                assert database == "mediamill"
        finally:
            engine.dispose()
        with psycopg.connect(cluster.conninfo) as raw:
            assert raw.execute("SELECT 1").fetchone() == (1,)
        assert cluster.data_dir.is_dir()
        port, directory = cluster.port, cluster.directory
    assert not directory.exists()
    assert not _accepts(port)


def test_cluster_is_removed_when_the_block_fails() -> None:
    seen: list[Cluster] = []

    def fail_inside() -> None:
        with throwaway_cluster() as cluster:
            seen.append(cluster)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    assert not seen[0].directory.exists()
    assert not _accepts(seen[0].port)
