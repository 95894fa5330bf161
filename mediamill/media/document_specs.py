"""What a document render makes and may cost: light data the orchestrator reads too.

Kept apart from ``documents`` so that planning which variants a PDF needs never loads PDFium.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

from mediamill.media.rendition import VariantId
from mediamill.media.sandbox import MIB
from mediamill.media.specs import MAX_VARIANT_SIDE, VariantSpec, variant_keys


@dataclass(frozen=True)
class DocumentLimits:
    """Caps on what one document may cost; callers pass them in so this layer reads no settings.

    ``max_render_side`` is the longest side, in pixels, page 1 is drawn at whatever its size
    in points, so a page with an absurd MediaBox is scaled down rather than drawn huge.
    """

    max_bytes: int = 200 * MIB
    max_pages: int = 5000
    max_render_side: int = 2400
    seconds: float = 60.0
    memory_bytes: int = 1024 * MIB

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name == "seconds":
                if not isinstance(value, int | float) or isinstance(value, bool):
                    raise ValueError(f"DocumentLimits.seconds must be a number, got {value!r}")
                if not (math.isfinite(value) and value > 0):
                    raise ValueError(f"DocumentLimits.seconds must be positive, got {value!r}")
            elif not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(
                    f"DocumentLimits.{field.name} must be a positive int, got {value!r}"
                )
        if self.max_render_side > MAX_VARIANT_SIDE:
            raise ValueError(
                f"DocumentLimits.max_render_side must be at most {MAX_VARIANT_SIDE}, "
                "the largest variant a spec can ask for"
            )


def planned_document_variants(image_specs: Sequence[VariantSpec]) -> frozenset[VariantId]:
    """Every (name, format, version) a full render makes; pages are drawn opaque, so no alpha."""
    return variant_keys(image_specs, has_alpha=False)
