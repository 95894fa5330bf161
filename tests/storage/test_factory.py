"""Building stores from settings: schemes, defaults, and configuration errors."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

from mediamill.settings import Settings
from mediamill.storage import StorageConfigError, open_store
from mediamill.storage.headers import MUTABLE


def settings(**overrides: Any) -> Settings:
    return Settings(**{"storage_options": {}, **overrides})


def test_default_is_a_file_store_under_home(home: Path) -> None:
    store = open_store(Settings())

    assert (home / "storage").is_dir()
    assert store.root_url == (home / "storage").as_uri()
    store.put("a/b.txt", b"hi", content_type="text/plain", cache_control=MUTABLE)
    assert (home / "storage" / "a" / "b.txt").read_bytes() == b"hi"


def test_bare_relative_path_resolves_against_the_working_directory(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    store = open_store(settings(storage_url="data/store"))

    assert (tmp_path / "data" / "store").is_dir()
    assert store.root_url == (tmp_path / "data" / "store").as_uri()


def test_file_url_is_percent_decoded(home: Path, tmp_path: Path) -> None:
    root = tmp_path / "my store"
    store = open_store(settings(storage_url=root.as_uri()))

    store.put("a/b c.txt", b"x", content_type="text/plain", cache_control=MUTABLE)

    assert (root / "a" / "b c.txt").read_bytes() == b"x"
    assert store.url("a/b c.txt") == (root / "a" / "b c.txt").as_uri()
    assert "%20" in store.url("a/b c.txt")


def test_file_url_with_a_remote_host_is_refused(home: Path) -> None:
    with pytest.raises(StorageConfigError, match="remote host"):
        open_store(settings(storage_url="file://fileserver/share/media"))


def test_uncreatable_root_is_a_config_error(home: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")

    with pytest.raises(StorageConfigError, match="cannot create storage directory"):
        open_store(settings(storage_url=(blocker / "store").as_uri()))


def test_check_writable_reports_an_unusable_root(home: Path, tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = open_store(settings(storage_url=root.as_uri()))
    root.rmdir()
    root.write_text("now a file")

    with pytest.raises(StorageConfigError, match="is not usable"):
        store.check_writable()


def test_memory_store_needs_its_own_root(home: Path) -> None:
    with pytest.raises(StorageConfigError, match="needs a root"):
        open_store(settings(storage_url="memory://"))


def test_memory_stores_share_a_root_and_nothing_else(home: Path) -> None:
    first = open_store(settings(storage_url="memory://factory-test-a"))
    same = open_store(settings(storage_url="memory://factory-test-a"))
    other = open_store(settings(storage_url="memory://factory-test-b"))
    try:
        first.put("k.txt", b"a", content_type="text/plain", cache_control=MUTABLE)

        assert same.get("k.txt") == b"a"
        assert not other.exists("k.txt")
        assert first.url("k.txt") == "memory://factory-test-a/k.txt"
    finally:
        first.delete_many(["k.txt"])


@pytest.mark.parametrize(
    ("url", "options", "root_url"),
    [
        ("s3://media-bucket/prod/", {"anon": True}, "s3://media-bucket/prod"),
        ("gs://media-bucket", {"token": "anon"}, "gs://media-bucket"),
        ("gcs://media-bucket/x", {"token": "anon"}, "gcs://media-bucket/x"),
        ("az://media/prod", {"account_name": "devstoreaccount1"}, "az://media/prod"),
        ("abfs://media", {"account_name": "devstoreaccount1"}, "abfs://media"),
    ],
)
def test_object_store_urls_open_without_network(
    home: Path, url: str, options: dict[str, object], root_url: str
) -> None:
    store = open_store(
        settings(storage_url=url, storage_options=options, cdn_base_url="https://cdn.example")
    )

    assert store.root_url == root_url
    assert store.url("a/b.jpg") == "https://cdn.example/a/b.jpg"


def test_object_store_url_without_a_bucket_is_refused(home: Path) -> None:
    with pytest.raises(StorageConfigError, match="names no bucket"):
        open_store(settings(storage_url="s3://", storage_options={"anon": True}))


def test_missing_backend_package_says_what_to_install(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fsspec caches imported backend classes; forget s3fs and make importing it fail.
    registry = importlib.import_module("fsspec.registry")
    monkeypatch.delitem(registry._registry, "s3", raising=False)
    monkeypatch.setitem(sys.modules, "s3fs", None)

    with pytest.raises(StorageConfigError, match="install s3fs"):
        open_store(settings(storage_url="s3://media-bucket"))
