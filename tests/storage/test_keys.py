"""The key layout: exact format, stable shards, and no way for input to escape its tenant."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediamill.storage.keys import (
    ORIGINAL_VERSION,
    UNATTACHED_ENTITY_ID,
    UNATTACHED_ENTITY_TYPE,
    media_key,
    original_filename,
    shard,
    url_path,
    variant_filename,
    workspace_prefix,
)

SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
VALID: dict[str, Any] = {
    "workspace_id": 7,
    "entity_type": "product",
    "entity_id": "SKU-123",
    "media_type": "image",
    "version": ORIGINAL_VERSION,
    "filename": f"{SHA}.jpg",
}


def key_with(**changes: Any) -> str:
    return media_key(**{**VALID, **changes})


def test_media_key_has_the_documented_layout() -> None:
    assert media_key(**VALID) == (
        f"tenants/workspace_7/product/68/SKU-123/image/original/{SHA}.jpg"
    )


def test_unattached_uploads_live_in_the_library() -> None:
    key = key_with(
        entity_type=UNATTACHED_ENTITY_TYPE,
        entity_id=UNATTACHED_ENTITY_ID,
        filename=variant_filename(SHA, "thumb", "webp"),
        version="3f2a9c01b7de",
    )
    assert key == f"tenants/workspace_7/library/fa/unattached/image/3f2a9c01b7de/{SHA}_thumb.webp"


def test_media_key_starts_with_the_workspace_prefix() -> None:
    assert workspace_prefix(7) == "tenants/workspace_7/"
    assert media_key(**VALID).startswith(workspace_prefix(7))
    assert not media_key(**VALID).startswith(workspace_prefix(70))


def test_shard_is_stable() -> None:
    # Pinned: changing the function would orphan every stored object.
    assert [shard(i) for i in ["SKU-123", "unattached", "p1", "a"]] == ["68", "fa", "f6", "ca"]


def test_shard_spreads_over_256_two_hex_buckets() -> None:
    buckets = {shard(f"entity-{n}") for n in range(5000)}
    assert len(buckets) == 256
    assert all(re.fullmatch(r"[0-9a-f]{2}", bucket) for bucket in buckets)


def test_filenames_come_from_the_content_hash() -> None:
    assert original_filename(SHA, "png") == f"{SHA}.png"
    assert variant_filename(SHA, "w800", "avif") == f"{SHA}_w800.avif"


@pytest.mark.parametrize(
    "entity_id",
    [
        "../../x",
        "..",
        "a/b",
        "a\\b",
        "",
        "a\x00b",
        "abc\u202edef",
        "x" * 300,
        "x" * 129,
        "a b",
        "caf\u00e9",
        "a.b",
        "a\n",
    ],
)
def test_entity_id_rejects_anything_but_safe_characters(entity_id: str) -> None:
    with pytest.raises(ValueError, match="entity id"):
        key_with(entity_id=entity_id)


def test_entity_id_accepts_the_longest_allowed() -> None:
    assert f"/{'x' * 128}/" in key_with(entity_id="x" * 128)


@pytest.mark.parametrize(
    "entity_type", ["", "Product", "1product", "_x", "a-b", "a/b", "../x", "a" * 65]
)
def test_entity_type_is_validated(entity_type: str) -> None:
    with pytest.raises(ValueError, match="entity type"):
        key_with(entity_type=entity_type)


@pytest.mark.parametrize("version", ["", "Original", "v.1", "a/b", "..", "a" * 65, "v\u202e1"])
def test_version_is_validated(version: str) -> None:
    with pytest.raises(ValueError, match="version"):
        key_with(version=version)


@pytest.mark.parametrize("media_type", ["", "audio", "Image", "image/"])
def test_media_type_is_one_of_four(media_type: str) -> None:
    with pytest.raises(ValueError, match="media type"):
        key_with(media_type=media_type)


@pytest.mark.parametrize(
    "filename",
    ["photo.jpg", "../x.jpg", f"{SHA}.JPG", f"{SHA}", f"{SHA}.jpg/x", f"{SHA.upper()}.jpg", ""],
)
def test_media_key_accepts_only_hash_built_filenames(filename: str) -> None:
    with pytest.raises(ValueError, match="filename"):
        key_with(filename=filename)


@pytest.mark.parametrize("workspace_id", [-1, True, "7", 7.0])
def test_workspace_id_must_be_a_non_negative_int(workspace_id: Any) -> None:
    with pytest.raises(ValueError, match="workspace id"):
        workspace_prefix(workspace_id)
    with pytest.raises(ValueError, match="workspace id"):
        key_with(workspace_id=workspace_id)


@pytest.mark.parametrize(
    "sha256", ["", SHA[:-1], SHA + "0", SHA.upper(), "g" * 64, "../" + SHA[3:]]
)
def test_filenames_require_a_lowercase_sha256(sha256: str) -> None:
    with pytest.raises(ValueError, match="sha256"):
        original_filename(sha256, "jpg")
    with pytest.raises(ValueError, match="sha256"):
        variant_filename(sha256, "thumb", "jpg")


@pytest.mark.parametrize("extension", ["", "JPG", ".jpg", "jp/g", "toolongext", "j\x00"])
def test_filenames_require_a_short_lowercase_extension(extension: str) -> None:
    with pytest.raises(ValueError, match="extension"):
        original_filename(SHA, extension)
    with pytest.raises(ValueError, match="extension"):
        variant_filename(SHA, "thumb", extension)


@pytest.mark.parametrize("variant", ["", "a.b", "../x", "a/b", "Thumb", "v" * 65])
def test_variant_names_are_validated(variant: str) -> None:
    with pytest.raises(ValueError, match="variant"):
        variant_filename(SHA, variant, "jpg")


def test_url_path_leaves_built_keys_as_they_are() -> None:
    key = key_with(version="optimized-1a2b", filename=variant_filename(SHA, "thumb", "webp"))
    assert url_path(key) == key == quote(key)


@given(st.text())
def test_url_path_encodes_as_quote_does(key: str) -> None:
    assert url_path(key) == quote(key)


@pytest.mark.parametrize("key", ["a b.jpg", "50%.png", "é/x", "a?b#c", "a+b"])
def test_url_path_escapes_what_a_path_cannot_carry(key: str) -> None:
    assert url_path(key) == quote(key) != key
