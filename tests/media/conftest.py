"""Fixtures for the media tests: default limits and a lossless spec for pixel checks."""

from __future__ import annotations

import pytest

from mediamill.media.limits import ImageLimits
from mediamill.media.specs import OutputFormat, VariantSpec


@pytest.fixture
def limits() -> ImageLimits:
    return ImageLimits()


@pytest.fixture
def png_spec() -> tuple[VariantSpec, ...]:
    """One lossless, never-upscaled variant, so tests can compare pixels exactly."""
    png = OutputFormat("png", quality=100)
    return (VariantSpec("full", 1200, 1200, "inside", (png,), (png,)),)
