"""Output sizes for the two fits, never upscaling, so every variant's dimensions are predictable."""

from __future__ import annotations

from dataclasses import dataclass

from mediamill.media.specs import Fit


@dataclass(frozen=True)
class Plan:
    """Final size of a variant and the scale from the upright source it needs."""

    width: int
    height: int
    scale: float


def plan_size(source_width: int, source_height: int, width: int, height: int, fit: Fit) -> Plan:
    """Fit inside the box, or fill it and centre-crop; a small source keeps the box's aspect."""
    if fit == "inside":
        scale = min(1.0, width / source_width, height / source_height)
        return Plan(
            max(1, round(source_width * scale)), max(1, round(source_height * scale)), scale
        )
    shrink = min(1.0, source_width / width, source_height / height)
    out_w = max(1, min(source_width, round(width * shrink)))
    out_h = max(1, min(source_height, round(height * shrink)))
    return Plan(out_w, out_h, max(out_w / source_width, out_h / source_height))
