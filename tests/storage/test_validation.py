"""The store's own key checks, behind the key layout."""

from __future__ import annotations

import pytest

from mediamill.storage.validation import MAX_KEY_BYTES, check_key, check_prefix, is_reserved


@pytest.mark.parametrize(
    "key",
    [
        "tenants/workspace_1/product/68/SKU-123/image/original/ab.jpg",
        "a",
        "a b/c#d?.txt",
        "x" * MAX_KEY_BYTES,
        "caf\u00e9/\u5199\u771f.jpg",
        "a..b/c.",
    ],
)
def test_safe_keys_pass_unchanged(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/a",
        "..",
        "../a",
        "a/..",
        "a/./b",
        "a//b",
        "a/",
        ".a",
        "a/.b",
        "a\\b",
        "a\x00",
        "a\x1fb",
        "a\x7fb",
        "a\x85b",
        "a\u202eb",
        "a\u2066b",
        "a\ud800b",
        "\u00e9" * (MAX_KEY_BYTES // 2 + 1),
    ],
)
def test_unsafe_keys_are_rejected(key: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        check_key(key)


def test_non_strings_are_rejected() -> None:
    with pytest.raises(ValueError, match="invalid"):
        check_key(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid"):
        check_prefix(b"a/")  # type: ignore[arg-type]


@pytest.mark.parametrize("prefix", ["", "tenants/", "tenants/workspace_1", "a/b/"])
def test_prefixes_may_be_empty_or_partial(prefix: str) -> None:
    assert check_prefix(prefix) == prefix


@pytest.mark.parametrize(
    "prefix", ["/", "/a", "../", "a/../", "a//", ".", ".a", "a/.b", "a\\", "\x00"]
)
def test_unsafe_prefixes_are_rejected(prefix: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        check_prefix(prefix)


def test_reserved_names_are_dot_segments() -> None:
    assert is_reserved(".probe")
    assert is_reserved("a/.b.jpg.meta.json")
    assert not is_reserved("a/b.jpg")
    assert not is_reserved("a..b/c")
