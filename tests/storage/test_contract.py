"""The contract every backend must pass; the ``backend`` fixture runs it once per backend."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import fsspec
import pytest

from mediamill.storage import ObjectNotFound, ObjectStore, StorageError, UploadTarget
from mediamill.storage.backends.sidecar import sidecar_path
from mediamill.storage.headers import IMMUTABLE, MUTABLE
from mediamill.storage.incoming import new_incoming_key
from mediamill.storage.keys import ORIGINAL_VERSION, media_key, original_filename
from mediamill.storage.objects import NewObject

from .conftest import BIG, BackendCase, StoreFactory, only_backends

SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
KEY = media_key(
    workspace_id=1,
    entity_type="product",
    entity_id="SKU-1",
    media_type="image",
    version=ORIGINAL_VERSION,
    filename=original_filename(SHA, "jpg"),
)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))

BAD_KEYS = [
    "",
    "/tenants/x.jpg",
    "../x",
    "../../etc/passwd",
    "a/../b",
    "a/./b",
    "a//b",
    "a/",
    "a\\b",
    "a\x00b",
    "a\nb",
    "a\u202eb",
    ".hidden",
    "a/.b.meta.json",
    "x" * 1025,
]


def raw_keys(store: ObjectStore) -> set[str]:
    """Every file under the root as the filesystem sees it, bookkeeping files included."""
    prefix = store.root.rstrip("/") + "/"
    return {path[len(prefix) :] for path in store.fs.find(store.root)}


def test_put_then_get_and_head_round_trip(store: ObjectStore) -> None:
    store.put(KEY, PNG, content_type="image/png", cache_control=IMMUTABLE)

    assert store.get(KEY) == PNG
    info = store.head(KEY)
    assert (info.key, info.size, info.content_type, info.cache_control) == (
        KEY,
        len(PNG),
        "image/png",
        IMMUTABLE,
    )


def test_empty_object_round_trips(store: ObjectStore) -> None:
    store.put("a/empty.txt", b"", content_type="text/plain", cache_control=MUTABLE)

    assert store.get("a/empty.txt") == b""
    assert store.head("a/empty.txt").size == 0


def _assert_only_the_png_at_key(store: ObjectStore) -> None:
    """KEY holds the PNG with its immutable metadata, and nothing else is listed."""
    assert store.get(KEY) == PNG
    info = store.head(KEY)
    assert (info.size, info.content_type, info.cache_control) == (
        len(PNG),
        "image/png",
        IMMUTABLE,
    )
    assert [listed.key for listed in store.list_prefix("")] == [KEY]


def test_overwrite_replaces_bytes_and_metadata(store: ObjectStore) -> None:
    store.put(KEY, b"first", content_type="text/plain", cache_control=MUTABLE)
    store.put(KEY, PNG, content_type="image/png", cache_control=IMMUTABLE)

    _assert_only_the_png_at_key(store)


def test_put_requires_http_metadata(store: ObjectStore) -> None:
    with pytest.raises(ValueError, match="content_type"):
        store.put(KEY, PNG, content_type="", cache_control=IMMUTABLE)
    with pytest.raises(ValueError, match="cache_control"):
        store.put(KEY, PNG, content_type="image/png", cache_control="")
    assert not store.exists(KEY)


def test_exists_only_for_objects(store: ObjectStore) -> None:
    assert not store.exists(KEY)

    store.put(KEY, PNG, content_type="image/png", cache_control=IMMUTABLE)

    assert store.exists(KEY)
    assert not store.exists(KEY.rpartition("/")[0])
    assert not store.exists(KEY + "x")


def test_missing_object_raises_object_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        store.get(KEY)
    with pytest.raises(ObjectNotFound):
        store.head(KEY)

    store.put(KEY, PNG, content_type="image/png", cache_control=IMMUTABLE)
    directory = KEY.rpartition("/")[0]
    with pytest.raises(ObjectNotFound):
        store.get(directory)
    with pytest.raises(ObjectNotFound):
        store.head(directory)


def test_list_prefix_is_recursive_sorted_and_relative(store: ObjectStore) -> None:
    keys = [
        "tenants/workspace_1/product/ab/p1/image/original/a.jpg",
        "tenants/workspace_1/product/ab/p1/image/v1/a_thumb.webp",
        "tenants/workspace_1/library/cd/unattached/image/original/b.png",
        "tenants/workspace_10/product/ab/p1/image/original/c.jpg",
        "top.txt",
    ]
    for index, key in enumerate(reversed(keys)):
        store.put(key, b"x" * index, content_type="text/plain", cache_control=MUTABLE)

    everything = list(store.list_prefix(""))
    assert [listed.key for listed in everything] == sorted(keys)
    assert {listed.key: listed.size for listed in everything} == {
        key: index for index, key in enumerate(reversed(keys))
    }
    assert [listed.key for listed in store.list_prefix("tenants/workspace_1/")] == sorted(keys[:3])
    assert [listed.key for listed in store.list_prefix("tenants/workspace_1/product/")] == keys[:2]
    assert [listed.key for listed in store.list_prefix("tenants/workspace_1")] == sorted(keys[:4])
    assert [listed.key for listed in store.list_prefix("top")] == ["top.txt"]
    assert list(store.list_prefix("tenants/workspace_2/")) == []


def test_list_prefix_reports_utc_modification_times(store: ObjectStore) -> None:
    before = datetime.now(UTC) - timedelta(minutes=5)
    store.put(KEY, PNG, content_type="image/png", cache_control=IMMUTABLE)
    after = datetime.now(UTC) + timedelta(minutes=5)

    (listed,) = store.list_prefix("tenants/")
    assert listed.modified.utcoffset() == timedelta(0)
    assert before <= listed.modified <= after


def test_list_prefix_hides_bookkeeping_files(store: ObjectStore) -> None:
    store.put(KEY, PNG, content_type="image/png", cache_control=IMMUTABLE)
    store.put("a/b.txt", b"b", content_type="text/plain", cache_control=MUTABLE)

    listed = {item.key for item in store.list_prefix("")}
    assert listed == {KEY, "a/b.txt"}
    sidecars = {sidecar_path(f"/{key}")[1:] for key in listed}
    assert raw_keys(store) - sidecars == listed


def test_list_prefix_rejects_unsafe_prefixes(store: ObjectStore) -> None:
    for prefix in ["../", "/tenants/", "a/../", "a//", ".hidden", "a\\b", "a\x00"]:
        with pytest.raises(ValueError, match="invalid"):
            store.list_prefix(prefix)


def test_delete_many_counts_deletions_and_ignores_missing(store: ObjectStore) -> None:
    for key in ["a/1.txt", "a/2.txt", "b/3.txt"]:
        store.put(key, b"data", content_type="text/plain", cache_control=MUTABLE)

    deleted = store.delete_many(iter(["a/1.txt", "missing.txt", "b/3.txt", "a/1.txt", "a"]))

    assert deleted == 2
    assert [listed.key for listed in store.list_prefix("")] == ["a/2.txt"]
    assert not store.exists("a/1.txt")
    with pytest.raises(ObjectNotFound):
        store.head("b/3.txt")
    assert raw_keys(store) - {sidecar_path("/a/2.txt")[1:]} == {"a/2.txt"}
    assert store.delete_many([]) == 0
    assert store.delete_many(["a/1.txt"]) == 0


def test_delete_many_validates_every_key_before_deleting(store: ObjectStore) -> None:
    store.put("a/1.txt", b"data", content_type="text/plain", cache_control=MUTABLE)

    with pytest.raises(ValueError, match="invalid"):
        store.delete_many(["a/1.txt", "../a/1.txt"])

    assert store.exists("a/1.txt")


def test_url_without_cdn_is_the_backends_own_and_opens(
    store: ObjectStore, backend: BackendCase
) -> None:
    store.put(KEY, PNG, content_type="image/png", cache_control=IMMUTABLE)

    url = store.url(KEY)

    assert url == f"{store.root_url}/{KEY}"
    with fsspec.open(url, "rb", **backend.options) as file:
        assert file.read() == PNG


def test_url_with_cdn_base(store_factory: StoreFactory) -> None:
    store = store_factory(cdn_base_url="https://cdn.example.com/media/")

    assert store.url(KEY) == f"https://cdn.example.com/media/{KEY}"
    assert store.url("a/b c#1.txt") == "https://cdn.example.com/media/a/b%20c%231.txt"


@pytest.mark.parametrize("key", BAD_KEYS)
def test_every_operation_rejects_unsafe_keys(store: ObjectStore, key: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        store.put(key, PNG, content_type="image/png", cache_control=IMMUTABLE)
    with pytest.raises(ValueError, match="invalid"):
        store.get(key)
    with pytest.raises(ValueError, match="invalid"):
        store.exists(key)
    with pytest.raises(ValueError, match="invalid"):
        store.head(key)
    with pytest.raises(ValueError, match="invalid"):
        store.delete_many([key])
    with pytest.raises(ValueError, match="invalid"):
        store.url(key)
    with pytest.raises(ValueError, match="invalid"):
        store.upload_target(key, content_type="image/png", expires_in=timedelta(minutes=5))
    assert raw_keys(store) == set()


def test_put_leaves_no_temporary_files(store: ObjectStore) -> None:
    for key in [KEY, "a/b.txt", "a/b.txt", "c.bin"]:
        store.put(key, BIG, content_type="application/octet-stream", cache_control=MUTABLE)

    listed = {item.key for item in store.list_prefix("")}
    assert listed == {KEY, "a/b.txt", "c.bin"}
    sidecars = {sidecar_path(f"/{key}")[1:] for key in listed}
    assert raw_keys(store) <= listed | sidecars


def test_failed_put_leaves_nothing_visible(
    store: ObjectStore, backend: BackendCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    with backend.failing_writes(monkeypatch, store), pytest.raises(StorageError):
        store.put(KEY, BIG, content_type="image/png", cache_control=IMMUTABLE)

    assert not store.exists(KEY)
    with pytest.raises(ObjectNotFound):
        store.head(KEY)
    assert list(store.list_prefix("")) == []
    assert raw_keys(store) == set()


def test_failed_overwrite_keeps_the_previous_object(
    store: ObjectStore, backend: BackendCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put(KEY, PNG, content_type="image/png", cache_control=IMMUTABLE)

    with backend.failing_writes(monkeypatch, store), pytest.raises(StorageError):
        store.put(KEY, BIG, content_type="application/octet-stream", cache_control=MUTABLE)

    _assert_only_the_png_at_key(store)


def test_put_file_stores_a_local_file_with_its_metadata(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "original.bin"
    source.write_bytes(BIG)

    store.put_file(KEY, source, content_type="image/png", cache_control=IMMUTABLE)

    assert store.get(KEY) == BIG
    info = store.head(KEY)
    assert (info.size, info.content_type, info.cache_control) == (len(BIG), "image/png", IMMUTABLE)
    assert raw_keys(store) <= {KEY, sidecar_path(f"/{KEY}")[1:]}
    assert source.read_bytes() == BIG


def test_put_file_of_a_missing_source_fails_and_stores_nothing(
    store: ObjectStore, tmp_path: Path
) -> None:
    with pytest.raises(StorageError):
        store.put_file(KEY, tmp_path / "gone.bin", content_type="image/png", cache_control=MUTABLE)

    assert raw_keys(store) == set()


def test_put_many_stores_bytes_and_files_each_with_its_metadata(
    store: ObjectStore, tmp_path: Path
) -> None:
    source = tmp_path / "original.bin"
    source.write_bytes(BIG)
    objects = [
        NewObject(KEY, "image/png", source=source),
        NewObject("w1/thumbs/a.webp", "image/webp", data=b"webp bytes"),
        NewObject("w1/thumbs/a.jpg", "image/jpeg", data=b""),
    ]

    store.put_many(objects, cache_control=IMMUTABLE)

    for item in objects:
        expected = BIG if item.source is not None else item.data
        assert store.get(item.key) == expected
        info = store.head(item.key)
        assert (info.content_type, info.cache_control) == (item.content_type, IMMUTABLE)
    assert {o.key for o in store.list_prefix("")} == {o.key for o in objects}


def test_put_many_with_a_missing_source_fails_without_that_object(
    store: ObjectStore, tmp_path: Path
) -> None:
    objects = [
        NewObject("w1/thumbs/a.webp", "image/webp", data=b"webp bytes"),
        NewObject(KEY, "image/png", source=tmp_path / "gone.bin"),
    ]

    with pytest.raises(StorageError):
        store.put_many(objects, cache_control=IMMUTABLE)

    assert not store.exists(KEY)
    if store.writes_batches:
        # One operation: nothing of the batch is visible, not even a sidecar or a temp file.
        assert raw_keys(store) == set()
    # A store writing one object at a time may have the first: it landed whole.
    for listed in store.list_prefix(""):
        assert store.get(listed.key) == b"webp bytes"


def test_a_new_object_holds_bytes_or_a_source_not_both() -> None:
    with pytest.raises(ValueError, match="either"):
        NewObject(KEY, "image/png")
    with pytest.raises(ValueError, match="either"):
        NewObject(KEY, "image/png", data=b"x", source=Path("x"))


def test_failed_put_file_leaves_nothing_visible(
    store: ObjectStore, backend: BackendCase, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = tmp_path / "original.bin"
    source.write_bytes(BIG)

    with backend.failing_writes(monkeypatch, store), pytest.raises(StorageError):
        store.put_file(KEY, source, content_type="image/png", cache_control=IMMUTABLE)

    assert list(store.list_prefix("")) == []
    assert raw_keys(store) == set()


def test_check_writable_succeeds_and_leaves_nothing(store: ObjectStore) -> None:
    store.put(KEY, PNG, content_type="image/png", cache_control=IMMUTABLE)
    before = raw_keys(store)

    store.check_writable()

    assert raw_keys(store) == before


# -- presigned upload targets -------------------------------------------------------------


def send(target: UploadTarget, data: bytes, **header_changes: str) -> int:
    """PUT the bytes as a browser would, with the target's headers (or changed ones)."""
    headers = {**target.headers, **header_changes}
    request = urllib.request.Request(target.url, data=data, method=target.method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def test_upload_target_takes_a_plain_http_put(store: ObjectStore, backend: BackendCase) -> None:
    key = new_incoming_key("workspace_1")
    issued = datetime.now(UTC).replace(microsecond=0)

    target = store.upload_target(key, content_type="image/png", expires_in=timedelta(minutes=15))

    if not backend.upload_targets:
        assert target is None
        return
    assert target is not None
    assert (target.method, target.headers["Content-Type"]) == ("PUT", "image/png")
    assert target.expires_at - timedelta(minutes=15) >= issued
    assert target.expires_at <= datetime.now(UTC) + timedelta(minutes=15)
    assert not store.exists(key)

    assert send(target, PNG) in (200, 201)

    assert store.get(key) == PNG
    info = store.head(key)
    assert (info.size, info.content_type) == (len(PNG), "image/png")
    assert [listed.key for listed in store.list_prefix("incoming/")] == [key]


def test_upload_target_checks_its_arguments(store: ObjectStore) -> None:
    key = new_incoming_key("workspace_1")
    with pytest.raises(ValueError, match="content_type"):
        store.upload_target(key, content_type="", expires_in=timedelta(minutes=5))
    with pytest.raises(ValueError, match="content_type"):
        store.upload_target(
            key, content_type="image/png\r\nx-amz-acl: public-read", expires_in=timedelta(1)
        )
    for expires_in in [timedelta(0), timedelta(milliseconds=500), timedelta(days=8)]:
        with pytest.raises(ValueError, match="expires_in"):
            store.upload_target(key, content_type="image/png", expires_in=expires_in)
    assert not store.exists(key)


@only_backends(lambda case: case.verifies_targets)
def test_expired_upload_target_is_refused(store: ObjectStore) -> None:
    key = new_incoming_key("workspace_1")
    target = store.upload_target(key, content_type="image/png", expires_in=timedelta(seconds=1))
    assert target is not None

    # Past expires_at plus the second of rounding the signature formats allow.
    time.sleep(max(0.0, (target.expires_at - datetime.now(UTC)).total_seconds()) + 1.5)

    assert send(target, PNG) == 403
    assert not store.exists(key)


@only_backends(lambda case: case.verifies_targets)
def test_upload_target_covers_only_its_own_key(store: ObjectStore) -> None:
    key = new_incoming_key("workspace_1")
    other = new_incoming_key("workspace_2")
    target = store.upload_target(key, content_type="image/png", expires_in=timedelta(minutes=5))
    assert target is not None
    parts = urlsplit(target.url)
    moved = parts._replace(
        path=parts.path.replace(key.rpartition("/")[0], other.rpartition("/")[0])
    )
    assert moved.path != parts.path

    forged = UploadTarget(urlunsplit(moved), target.method, target.headers, target.expires_at)
    assert send(forged, PNG) == 403

    assert list(store.list_prefix("incoming/")) == []
