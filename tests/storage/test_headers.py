"""Cache-Control values."""

from __future__ import annotations

from mediamill.storage.headers import IMMUTABLE, MUTABLE, cache_control


def test_values_match_the_design() -> None:
    assert IMMUTABLE == "public, max-age=31536000, immutable"
    assert MUTABLE == "public, max-age=604800"


def test_cache_control_picks_by_mutability() -> None:
    assert cache_control(immutable=True) == IMMUTABLE
    assert cache_control(immutable=False) == MUTABLE
