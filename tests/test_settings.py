from pathlib import Path

import pytest
from pydantic import ValidationError

from mediamill.settings import Settings, get_settings


@pytest.mark.usefixtures("home")
def test_defaults_are_embedded_under_home(home: Path) -> None:
    settings = get_settings()
    assert settings.home == home.resolve()
    assert settings.resolved_database_url == f"sqlite:///{home.resolve() / 'catalog.db'}"
    assert settings.resolved_storage_url == (home.resolve() / "storage").as_uri()
    assert settings.storage_options == {}
    assert settings.cdn_base_url is None


@pytest.mark.usefixtures("home")
def test_environment_configures_every_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIAMILL_DATABASE_URL", "postgresql://u:p@db/mediamill")
    monkeypatch.setenv("MEDIAMILL_STORAGE_URL", "s3://bucket/media")
    monkeypatch.setenv("MEDIAMILL_STORAGE_OPTIONS", '{"endpoint_url": "http://127.0.0.1:9000"}')
    monkeypatch.setenv("MEDIAMILL_CDN_BASE_URL", "https://cdn.example.com/")
    monkeypatch.setenv("MEDIAMILL_MAX_IMAGE_PIXELS", "1000")
    settings = get_settings()
    assert settings.resolved_database_url == "postgresql://u:p@db/mediamill"
    assert settings.resolved_storage_url == "s3://bucket/media"
    assert settings.storage_options == {"endpoint_url": "http://127.0.0.1:9000"}
    assert settings.cdn_base_url == "https://cdn.example.com"
    assert settings.max_image_pixels == 1000


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("database_url", "mysql://db/x"),
        ("storage_url", "ftp://host/x"),
        ("cdn_base_url", "cdn.example.com"),
        ("max_upload_bytes", 0),
        ("prefect_port", 70000),
    ],
)
def test_malformed_settings_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings(**{field: value})


@pytest.mark.usefixtures("home")
def test_own_state_paths_cover_catalog_store_and_prefect(home: Path) -> None:
    paths = get_settings().own_state_paths()
    root = home.resolve()
    assert root / "catalog.db" in paths
    assert root / "catalog.db-wal" in paths
    assert root / "storage" in paths
    assert root / "prefect" in paths
    assert root not in paths
