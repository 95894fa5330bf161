"""Output sizes for inside and cover fits, never upscaled."""

from __future__ import annotations

import pytest

from mediamill.media.geometry import plan_size


@pytest.mark.parametrize(
    ("source", "box", "expected"),
    [
        ((4000, 3000), (1200, 1200), (1200, 900)),
        ((3000, 4000), (1200, 1200), (900, 1200)),
        ((800, 600), (1200, 1200), (800, 600)),
        ((5000, 100), (1200, 1200), (1200, 24)),
    ],
)
def test_inside_fits_the_box_and_never_upscales(
    source: tuple[int, int], box: tuple[int, int], expected: tuple[int, int]
) -> None:
    plan = plan_size(*source, *box, "inside")
    assert (plan.width, plan.height) == expected
    assert plan.scale <= 1


@pytest.mark.parametrize(
    ("source", "box", "expected", "scale"),
    [
        ((4000, 3000), (300, 300), (300, 300), 0.1),
        ((3000, 4000), (150, 150), (150, 150), 0.05),
        ((200, 100), (300, 300), (100, 100), 1.0),
        ((100, 400), (300, 150), (100, 50), 1.0),
    ],
)
def test_cover_fills_the_box_or_keeps_its_aspect_when_small(
    source: tuple[int, int], box: tuple[int, int], expected: tuple[int, int], scale: float
) -> None:
    plan = plan_size(*source, *box, "cover")
    assert (plan.width, plan.height) == expected
    assert plan.scale == pytest.approx(scale)
    assert expected[0] / expected[1] == pytest.approx(box[0] / box[1])


def test_tiny_sources_still_get_a_pixel() -> None:
    plan = plan_size(1, 1, 150, 150, "cover")
    assert (plan.width, plan.height) == (1, 1)
    plan = plan_size(10_000, 1, 1200, 1200, "inside")
    assert (plan.width, plan.height) == (1200, 1)
