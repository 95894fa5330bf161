"""What a model render makes and may cost: light data the orchestrator reads too.

Kept apart from ``meshes`` so that planning which variants a model needs never loads
trimesh or VTK. Preview variants are versioned by their image spec and by the preview
recipe (angles, lighting, framing), so a changed recipe writes new keys.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from functools import cached_property
from typing import Any, Final

from mediamill.media.rendition import VariantId
from mediamill.media.sandbox import MIB, SandboxLimits
from mediamill.media.specs import OutputFormat, VariantSpec

GIB: Final = 1024 * MIB
MESH_RENDERER_VERSION: Final = "1"
"""Part of every GLB spec version; bump it when the optimiser changes its output."""


@dataclass(frozen=True)
class MeshLimits:
    """Caps on what a model upload may cost; counts are summed over every drawn instance.

    ``max_coordinate`` is the sane-bounds check: no product model puts a vertex further
    from the origin, and past it float32 viewers lose precision or overflow.
    ``max_texture_pixels`` caps all embedded textures together, read from their headers.
    ``seconds`` and ``memory_bytes`` bound the sandboxed process that parses and renders.
    """

    max_bytes: int = 256 * MIB
    max_vertices: int = 5_000_000
    max_faces: int = 5_000_000
    max_coordinate: float = 1e7
    max_texture_pixels: int = 100_000_000
    seconds: float = 120.0
    memory_bytes: int = 3 * GIB

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if field.type == "float":
                if not isinstance(value, int | float) or isinstance(value, bool):
                    raise ValueError(f"MeshLimits.{field.name} must be a number, got {value!r}")
                if not (math.isfinite(value) and value > 0):
                    raise ValueError(f"MeshLimits.{field.name} must be positive, got {value!r}")
            elif not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"MeshLimits.{field.name} must be a positive int, got {value!r}")

    @property
    def sandbox(self) -> SandboxLimits:
        """The time and memory limits of the process that parses and renders a model."""
        return SandboxLimits(seconds=self.seconds, memory_bytes=self.memory_bytes)


_SPEC_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class GlbSpec:
    """The optimised GLB variant as data, hashed into a version like an image ``VariantSpec``.

    ``face_budget`` caps the triangles a viewer draws (None keeps every face); textures
    with a side over ``max_texture_side`` are scaled down.
    """

    name: str = "web"
    face_budget: int | None = 200_000
    max_texture_side: int = 2048

    def __post_init__(self) -> None:
        if not _SPEC_NAME.fullmatch(self.name):
            raise ValueError(f"GLB spec name {self.name!r} must match {_SPEC_NAME.pattern}")
        budget = self.face_budget
        if budget is not None and (not isinstance(budget, int) or budget < 4):
            raise ValueError(f"face_budget must be None or at least 4, got {budget!r}")
        side = self.max_texture_side
        if not isinstance(side, int) or isinstance(side, bool) or not 1 <= side <= 16384:
            raise ValueError(f"max_texture_side must be 1..16384, got {side!r}")

    @cached_property
    def version(self) -> str:
        """Short stable hash of the spec and optimiser, so a changed recipe gets new keys."""
        return _digest({"renderer": MESH_RENDERER_VERSION, "spec": asdict(self)})

    @property
    def variant_id(self) -> VariantId:
        """(name, "glb", version): the key of the stored GLB."""
        return (self.name, "glb", self.version)


DEFAULT_GLB_SPEC: Final = GlbSpec()

HERO: Final = "three-quarter"
ANGLES: Final = (HERO, "front", "side", "back")
"""The rendered views; the hero keeps the image spec names, the others prefix them."""

VIEWS: Final[dict[str, tuple[float, float]]] = {
    HERO: (40.0, 25.0),
    "front": (0.0, 10.0),
    "side": (90.0, 10.0),
    "back": (180.0, 10.0),
}
"""(azimuth from the front towards the model's right, elevation) in degrees, glTF axes."""

BACKGROUND: Final = (240, 240, 238)
SURFACE: Final = (190, 192, 198)
"""The colour of a model that has no material, texture or vertex colours."""

VIEW_ANGLE: Final = 30.0
MARGIN: Final = 0.05
"""Free space left on each side of the model, as a fraction of the frame."""

SUPERSAMPLE: Final = 1.5
"""Views are drawn this much larger than the largest variant and scaled down: anti-aliasing
at half the cost of VTK's own SSAA on a software (EGL/llvmpipe) renderer."""

SHEET_GUTTER: Final = (210, 210, 208)
"""The colour between the contact sheet's four views."""

CONTACT_SHEET: Final = VariantSpec(
    "contact-sheet",
    1200,
    1200,
    "inside",
    (
        OutputFormat("jpeg", quality=85, progressive=True),
        OutputFormat("webp", quality=80, effort=4),
    ),
    (OutputFormat("png", quality=100, effort=6), OutputFormat("webp", quality=80, effort=4)),
)
"""The four views in a 2x2 grid, hero top left, front top right, side and back below."""

PREVIEW_RECIPE: Final[dict[str, Any]] = {
    "renderer": "1",
    "views": VIEWS,
    "background": BACKGROUND,
    "surface": SURFACE,
    "view_angle": VIEW_ANGLE,
    "margin": MARGIN,
    "supersample": SUPERSAMPLE,
    "sheet_gutter": SHEET_GUTTER,
}
"""Everything besides the image spec that decides a preview's pixels."""


def preview_version(spec: VariantSpec) -> str:
    """The version of a model preview: its image spec's and the preview recipe's."""
    return _digest({"image": spec.version, "preview": PREVIEW_RECIPE})


def variant_name(angle: str, spec: VariantSpec) -> str:
    """``optimized`` for the hero view, ``front-optimized`` and so on for the others."""
    return spec.name if angle == HERO else f"{angle}-{spec.name}"


def planned_model_variants(
    image_specs: Sequence[VariantSpec], glb: GlbSpec = DEFAULT_GLB_SPEC
) -> frozenset[VariantId]:
    """Every (name, format, version) a full ``render_model`` makes; previews are opaque."""
    previews = {
        (variant_name(angle, spec), output.format, preview_version(spec))
        for angle in ANGLES
        for spec in image_specs
        for output in spec.outputs(False)
    }
    sheet = {
        (CONTACT_SHEET.name, output.format, preview_version(CONTACT_SHEET))
        for output in CONTACT_SHEET.outputs(False)
    }
    return frozenset(previews | sheet | {glb.variant_id})


def _digest(data: dict[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]
