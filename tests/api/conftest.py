"""An API app per test on its own MEDIAMILL_HOME, with flows run by the embedded dispatcher."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mediamill.api.app import create_app
from mediamill.api.dispatch import EmbeddedDispatcher
from mediamill.api.services import Services, services_of
from mediamill.api.signatures import sign
from mediamill.catalog import access
from mediamill.settings import get_settings


@dataclass
class Api:
    """A running app, its services, and helpers to call it as a workspace's user."""

    client: TestClient
    services: Services
    dispatcher: EmbeddedDispatcher

    def token(
        self, workspace: str = "acme", user: str = "ana", scopes: tuple[str, ...] = ("write",)
    ) -> str:
        with self.services.writing() as session:
            return access.create_token(session, workspace, user, scopes)

    def secret(self, workspace: str = "acme") -> str:
        with self.services.writing() as session:
            return access.create_webhook_secret(session, workspace)

    def graphql(
        self, token: str, query: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        response = self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def webhook(self, path: str, body: bytes, secret: str, at: int | None = None) -> Any:
        stamp = int(time.time()) if at is None else at
        return self.client.post(
            path,
            content=body,
            headers={
                "Mediamill-Signature": sign(secret, body, stamp),
                "Content-Type": "application/json",
            },
        )

    def settle(self) -> None:
        """Wait for every run the API started (or was still starting) to finish."""
        self.services.launcher.wait(timeout=120)
        self.dispatcher.wait(timeout=120)


@pytest.fixture
def api(home: Path, prefect_api: str) -> Iterator[Api]:
    dispatcher = EmbeddedDispatcher()
    # Answers wait for their run, so the run id is always in them; answering before
    # Prefect created the run is tested apart, in test_dispatch.py.
    settings = get_settings(
        dispatch="embedded", api_public_url="http://testserver", dispatch_wait_ms=120_000
    )
    app = create_app(settings, dispatcher=dispatcher)
    with TestClient(app) as client:
        yield Api(client, services_of(app.state), dispatcher)


@contextmanager
def module_api(tmp_path_factory: pytest.TempPathFactory, name: str, **env: str) -> Iterator[Api]:
    """An app shared by a module's tests (uploads are slow), on a MEDIAMILL_HOME of its own.

    ``env`` sets MEDIAMILL_* variables for the app and for the flows it runs alike.
    """
    with pytest.MonkeyPatch.context() as patch:
        for variable in list(os.environ):
            if variable.startswith("MEDIAMILL_"):
                patch.delenv(variable)
        patch.setenv("MEDIAMILL_HOME", str(tmp_path_factory.mktemp(name)))
        for variable, value in env.items():
            patch.setenv(variable, value)
        dispatcher = EmbeddedDispatcher()
        settings = get_settings(dispatch="embedded", api_public_url="http://testserver")
        app = create_app(settings, dispatcher=dispatcher)
        with TestClient(app) as client:
            yield Api(client, services_of(app.state), dispatcher)
