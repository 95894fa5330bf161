"""What each media type is turned into: specs and limits, from settings, shipped to workers.

The orchestrator needs the variants a full render makes (to find what a changed spec lacks);
the workers need the specs and limits to render. Both read the one ``Recipe`` of a run.
Renderers are imported inside ``render`` only, so the orchestrating process never loads
libvips, ffmpeg bindings, VTK or pdfium.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mediamill.media.document_specs import DocumentLimits, planned_document_variants
from mediamill.media.errors import ValidationError
from mediamill.media.limits import ImageLimits
from mediamill.media.mesh_specs import DEFAULT_GLB_SPEC, GlbSpec, MeshLimits, planned_model_variants
from mediamill.media.rendition import Rendition, VariantId
from mediamill.media.specs import DEFAULT_IMAGE_SPECS, VariantSpec, variant_keys
from mediamill.media.video_specs import (
    DEFAULT_HLS,
    DEFAULT_WEB_VIDEO,
    HlsSpec,
    VideoLimits,
    WebVideoSpec,
    planned_video_variants,
)
from mediamill.storage.keys import variant_filename

if TYPE_CHECKING:
    from mediamill.settings import Settings

MIB = 1024 * 1024


@dataclass(frozen=True)
class Recipe:
    """Every spec and limit of one run; small, immutable and picklable."""

    image_specs: tuple[VariantSpec, ...] = DEFAULT_IMAGE_SPECS
    image_limits: ImageLimits = field(default_factory=ImageLimits)
    video_limits: VideoLimits = field(default_factory=VideoLimits)
    web_video: WebVideoSpec = DEFAULT_WEB_VIDEO
    hls: HlsSpec | None = None
    mesh_limits: MeshLimits = field(default_factory=MeshLimits)
    glb: GlbSpec = DEFAULT_GLB_SPEC
    document_limits: DocumentLimits = field(default_factory=DocumentLimits)

    @classmethod
    def from_settings(cls, settings: Settings) -> Recipe:
        """The caps and switches a deployment configured, on the default specs."""
        seconds = settings.decode_timeout_seconds
        memory = settings.decode_memory_mb * MIB
        return cls(
            image_limits=ImageLimits(
                max_bytes=settings.max_upload_bytes,
                max_pixels=settings.max_image_pixels,
                max_side=settings.max_image_side,
                max_animation_pixels=settings.max_animation_pixels,
            ),
            video_limits=VideoLimits(
                max_bytes=settings.max_upload_bytes,
                max_seconds=settings.max_video_seconds,
                max_side=settings.max_video_side,
                timeout_seconds=seconds,
                memory_bytes=memory,
            ),
            hls=DEFAULT_HLS if settings.video_hls else None,
            mesh_limits=MeshLimits(
                max_bytes=settings.max_upload_bytes,
                max_vertices=settings.max_model_vertices,
                max_faces=settings.max_model_faces,
                seconds=seconds,
                memory_bytes=memory,
            ),
            document_limits=DocumentLimits(
                max_bytes=settings.max_upload_bytes,
                max_pages=settings.max_document_pages,
                seconds=seconds,
                memory_bytes=memory,
            ),
        )

    def planned_variants(self, media_type: str, has_alpha: bool) -> frozenset[VariantId]:
        """Every (name, format, version) a full render of this media type makes now."""
        if media_type == "image":
            return variant_keys(self.image_specs, has_alpha)
        if media_type == "video":
            return planned_video_variants(self.image_specs, self.web_video, self.hls)
        if media_type == "model":
            return planned_model_variants(self.image_specs, self.glb)
        if media_type == "document":
            return planned_document_variants(self.image_specs)
        return frozenset()


def render(
    recipe: Recipe,
    media_type: str,
    media_format: str,
    source: Path | bytes,
    sha256: str,
    only: frozenset[VariantId] | None,
) -> Rendition:
    """Dispatch to the media type's renderer; runs in a pixel worker.

    Video, models and documents are read by tools that want a file, so bytes (an original
    fetched back from the store) are first written to a private temporary file.
    """
    if media_type == "image":
        from mediamill.media.images import render_image

        image = render_image(source, recipe.image_specs, recipe.image_limits, only=only)
        return image.to_rendition()
    if media_type not in ("video", "model", "document"):
        raise ValidationError("unsupported_type", f"no renderer for {media_type} uploads")
    if isinstance(source, bytes):
        return _render_bytes(recipe, media_type, media_format, source, sha256, only)
    if media_type == "video":
        from mediamill.media.video import render_video

        def filename_for(name: str, extension: str) -> str:
            return variant_filename(sha256, name, extension)

        return render_video(
            source,
            media_format,
            recipe.image_specs,
            recipe.image_limits,
            recipe.video_limits,
            web=recipe.web_video,
            hls=recipe.hls,
            filename_for=filename_for,
            only=only,
        )
    if media_type == "model":
        from mediamill.media.meshes import render_model

        return render_model(
            source,
            media_format,
            recipe.image_specs,
            recipe.image_limits,
            recipe.mesh_limits,
            glb=recipe.glb,
            only=only,
        )
    from mediamill.media.documents import render_document

    return render_document(
        source,
        media_format,
        recipe.image_specs,
        recipe.image_limits,
        recipe.document_limits,
        only=only,
    )


def _render_bytes(
    recipe: Recipe,
    media_type: str,
    media_format: str,
    data: bytes,
    sha256: str,
    only: frozenset[VariantId] | None,
) -> Rendition:
    with tempfile.TemporaryDirectory(prefix="mediamill-render-") as scratch:
        path = Path(scratch) / f"source.{media_format}"
        path.write_bytes(data)
        return render(recipe, media_type, media_format, path, sha256, only)
