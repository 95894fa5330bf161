"""The e2e pairs: a fresh PostgreSQL catalog with a fresh S3 bucket (moto) or Azure
container (Azurite), configured through the environment as a deployment would be."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy.orm import Session, sessionmaker

from mediamill.catalog import migrate
from mediamill.catalog.engine import make_engine, make_session_factory
from mediamill.settings import get_settings
from mediamill.storage.factory import open_store
from mediamill.storage.store import ObjectStore
from tests.services.objectstores import AzuriteService, S3Service
from tests.services.postgres import PostgresServer

BACKENDS = ["s3", "azure"]


@dataclass(frozen=True)
class Pair:
    """One catalog + store pair, set in ``MEDIAMILL_*`` for the flows, the CLI and the API."""

    backend: str
    service: S3Service | AzuriteService
    database_url: str
    storage_url: str
    root: Path
    sessions: sessionmaker[Session]

    @property
    def bucket(self) -> str:
        """The bucket (S3) or container (Azure) name."""
        return urlsplit(self.storage_url).netloc

    @property
    def endpoint(self) -> str:
        """Where the service serves the bucket; a presigned URL starts here."""
        if isinstance(self.service, S3Service):
            return self.service.endpoint_url
        return self.service.blob_endpoint

    def store(self) -> ObjectStore:
        """The store as the flows open it, from the environment."""
        return open_store(get_settings())


@pytest.fixture(scope="class", params=BACKENDS)
def pair(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: PostgresServer,
    prefect_api: str,
) -> Iterator[Pair]:
    """A migrated PostgreSQL catalog and an empty bucket, for every test of a class."""
    backend = str(request.param)
    service: S3Service | AzuriteService = request.getfixturevalue(
        "s3_service" if backend == "s3" else "azurite_service"
    )
    # As production spells it: no driver in the URL (the catalog picks psycopg 3).
    database_url = postgres_server.new_database(driver=None)
    storage_url = service.new_storage_url()
    root = tmp_path_factory.mktemp(f"e2e-{backend}")
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("MEDIAMILL_"):
                patch.delenv(name)
        patch.setenv("MEDIAMILL_HOME", str(root / "home"))
        patch.setenv("MEDIAMILL_DATABASE_URL", database_url)
        patch.setenv("MEDIAMILL_STORAGE_URL", storage_url)
        patch.setenv("MEDIAMILL_STORAGE_OPTIONS", json.dumps(service.storage_options()))
        engine = make_engine(database_url)
        try:
            migrate.upgrade(engine)
            yield Pair(
                backend=backend,
                service=service,
                database_url=database_url,
                storage_url=storage_url,
                root=root,
                sessions=make_session_factory(engine),
            )
        finally:
            engine.dispose()
    postgres_server.drop_database(database_url)
