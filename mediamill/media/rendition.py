"""What every renderer returns, whatever the media type: variants to store and facts to keep.

Images, video posters, model previews and document pages all end as a ``Rendition``, so the
layers above store and catalog one shape and never branch on the media type.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

VariantId = tuple[str, str, str]
"""(name, format, spec version): one stored variant object and its catalog row."""


@dataclass(frozen=True)
class RenderedVariant:
    """One encoded variant, ready to store under its spec version.

    ``width``/``height`` are pixels for images and video; 0 when they do not apply (a GLB).
    ``extension`` (no dot) names the stored object; ``format`` names the encoding.
    """

    name: str
    format: str
    mime: str
    width: int
    height: int
    data: bytes
    spec_version: str
    encoder: str
    extension: str

    @property
    def variant_id(self) -> VariantId:
        """The key this variant is stored and catalogued under."""
        return (self.name, self.format, self.spec_version)


@dataclass(frozen=True)
class Rendition:
    """Everything a render produced for one source.

    ``metadata`` is JSON-ready and type-specific (video: duration, fps, codecs; model:
    vertices, faces, bounds; document: pages); the catalog keeps it on the blob.
    """

    kind: str
    format: str
    width: int
    height: int
    variants: tuple[RenderedVariant, ...]
    placeholder: str | None
    has_alpha: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


def wanted(variant_id: VariantId, only: Collection[VariantId] | None) -> bool:
    """Whether a render asked to make ``only`` these variants should make this one."""
    return only is None or variant_id in only
