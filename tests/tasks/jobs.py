"""Render jobs the pool tests hand to workers."""

from __future__ import annotations

import hashlib

from mediamill.tasks.pixels import RenderJob
from mediamill.tasks.recipes import Recipe


def image_job(
    blob_id: int, data: bytes, *, media_format: str = "jpeg", recipe: Recipe | None = None
) -> RenderJob:
    """A job rendering ``data`` as an image, as the pipeline would plan it."""
    return RenderJob(
        blob_id=blob_id,
        sha256=hashlib.sha256(data).hexdigest(),
        media_type="image",
        media_format=media_format,
        recipe=recipe or Recipe(),
        data=data,
    )
