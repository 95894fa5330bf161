"""Variant specs are validated data whose version changes exactly when the recipe does."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from mediamill.media.specs import (
    DEFAULT_IMAGE_SPECS,
    OutputFormat,
    VariantSpec,
    variant_keys,
)

JPEG = OutputFormat("jpeg", quality=85)
PNG = OutputFormat("png", quality=100)


def _spec(**changes: object) -> VariantSpec:
    base = VariantSpec("card", 640, 480, "cover", (JPEG,), (PNG,))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_defaults_match_the_product_sizes() -> None:
    by_name = {spec.name: spec for spec in DEFAULT_IMAGE_SPECS}
    assert list(by_name) == ["optimized", "thumb", "tiny"]
    optimized = by_name["optimized"]
    assert (optimized.width, optimized.height, optimized.fit) == (1200, 1200, "inside")
    assert [o.format for o in optimized.formats] == ["jpeg", "webp", "avif"]
    jpeg = optimized.formats[0]
    assert (jpeg.quality, jpeg.progressive) == (85, True)
    for name, side in (("thumb", 300), ("tiny", 150)):
        spec = by_name[name]
        assert (spec.width, spec.height, spec.fit) == (side, side, "cover")
        assert [o.format for o in spec.formats] == ["jpeg", "webp"]
    for spec in DEFAULT_IMAGE_SPECS:
        assert "jpeg" not in {o.format for o in spec.alpha_formats}


def test_version_is_short_hex_and_stable() -> None:
    spec = _spec()
    assert len(spec.version) == 12
    int(spec.version, 16)
    assert spec.version == _spec().version


def test_version_golden_value_keeps_stored_keys_valid() -> None:
    assert _spec().version == "f87cd912b8f2"


@pytest.mark.parametrize(
    "change",
    [
        {"width": 641},
        {"height": 481},
        {"fit": "inside"},
        {"name": "card2"},
        {"formats": (OutputFormat("jpeg", quality=86),)},
        {"formats": (OutputFormat("jpeg", quality=85, progressive=True),)},
        {"formats": (JPEG, OutputFormat("webp", quality=80))},
        {"alpha_formats": (OutputFormat("png", quality=100, effort=9),)},
    ],
)
def test_any_change_makes_a_new_version(change: dict[str, object]) -> None:
    assert _spec(**change).version != _spec().version


def test_version_is_the_same_in_another_process() -> None:
    code = (
        "import json; from mediamill.media.specs import DEFAULT_IMAGE_SPECS as S; "
        "print(json.dumps([s.version for s in S]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env
    )
    assert json.loads(out.stdout) == [spec.version for spec in DEFAULT_IMAGE_SPECS]


def test_round_trips_through_plain_data() -> None:
    for spec in DEFAULT_IMAGE_SPECS:
        data = json.loads(json.dumps(spec.to_dict()))
        again = VariantSpec.from_dict(data)
        assert again == spec
        assert again.version == spec.version


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"alpha_formats": (JPEG,)}, "alpha_formats"),
        ({"formats": ()}, "empty"),
        ({"formats": (JPEG, JPEG)}, "repeats"),
        ({"name": "../x"}, "must match"),
        ({"name": "Big"}, "must match"),
        ({"width": 0}, "size"),
        ({"height": 100_000}, "size"),
        ({"fit": "stretch"}, "fit"),
    ],
)
def test_invalid_specs_are_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _spec(**change)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"format": "gif", "quality": 80}, "unknown output format"),
        ({"format": "jpeg", "quality": 0}, "quality"),
        ({"format": "webp", "quality": 80, "effort": 10}, "effort"),
    ],
)
def test_invalid_output_formats_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OutputFormat(**kwargs)  # type: ignore[arg-type]


def test_output_format_knows_its_mime_and_extension() -> None:
    assert (JPEG.mime, JPEG.extension) == ("image/jpeg", "jpg")
    assert (PNG.mime, PNG.extension) == ("image/png", "png")
    assert OutputFormat("avif", quality=50).mime == "image/avif"


def test_variant_keys_follow_alpha() -> None:
    spec = _spec()
    assert variant_keys([spec], has_alpha=False) == {("card", "jpeg", spec.version)}
    assert variant_keys([spec], has_alpha=True) == {("card", "png", spec.version)}
