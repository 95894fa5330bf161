"""Probe and render still images with libvips: limits from the header first, pixels after."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyvips

from mediamill.media.encode import encode, encoder_of
from mediamill.media.errors import ProcessingError, ValidationError
from mediamill.media.geometry import Plan, plan_size
from mediamill.media.heif import decode_heic, libvips_decodes_hevc
from mediamill.media.limits import ImageLimits
from mediamill.media.rendition import RenderedVariant, Rendition
from mediamill.media.sniff import SNIFF_BYTES, Sniffed, sniff
from mediamill.media.specs import OutputFormat, VariantSpec
from mediamill.media.svg import sanitize_svg
from mediamill.media.thumbhash import MAX_SIDE as PLACEHOLDER_SIDE
from mediamill.media.thumbhash import thumbhash_base64
from mediamill.media.vips import LOADERS, check_loader, describe, is_blocked

_UPRIGHT_SWAPS_SIDES: Final = frozenset({5, 6, 7, 8})
_JPEG_SHRINKS: Final = (8, 4, 2, 1)
"""DCT scaling factors libjpeg can decode at; the largest one not past the target is used."""


@dataclass(frozen=True)
class ImageInfo:
    """What the header says; width and height are as displayed, after EXIF orientation."""

    format: str
    mime: str
    width: int
    height: int
    has_alpha: bool
    frames: int
    orientation: int


@dataclass(frozen=True)
class ImageRendition:
    """Everything a render produced for one source."""

    info: ImageInfo
    variants: tuple[RenderedVariant, ...]
    placeholder: str

    def to_rendition(self) -> Rendition:
        """The type-neutral shape the pipeline stores."""
        info = self.info
        return Rendition(
            kind="image",
            format=info.format,
            width=info.width,
            height=info.height,
            variants=self.variants,
            placeholder=self.placeholder,
            has_alpha=info.has_alpha,
            metadata={"frames": info.frames, "orientation": info.orientation},
        )


@dataclass(frozen=True)
class _Upload:
    """A vetted source: its sniffed type and where libvips reads it from."""

    sniffed: Sniffed
    path: Path | None
    data: bytes | None

    def read_all(self) -> bytes:
        """The whole upload, for decoders that cannot stream from a file."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()


def probe_image(source: Path | bytes, limits: ImageLimits) -> ImageInfo:
    """Sniff the content and read its header, refusing it before any pixel is decoded."""
    upload = _open(source, limits)
    return _info(upload, _header(upload), limits)


def render_image(
    source: Path | bytes,
    specs: Sequence[VariantSpec],
    limits: ImageLimits,
    *,
    only: Collection[tuple[str, str, str]] | None = None,
) -> ImageRendition:
    """Make every variant (or those in ``only``: (name, format, version)) from one shared decode."""
    if len({spec.name for spec in specs}) != len(specs):
        raise ValueError("variant spec names must be unique")
    upload = _open(source, limits)
    header = _header(upload)
    info = _info(upload, header, limits)
    maybe_wanted = {
        spec.name
        for has_alpha in {info.has_alpha, False}
        for spec, _ in _wanted_outputs(specs, has_alpha, only)
    }
    plans = {
        spec.name: plan_size(info.width, info.height, spec.width, spec.height, spec.fit)
        for spec in specs
        if spec.name in maybe_wanted
    }
    placeholder_scale = min(1.0, PLACEHOLDER_SIDE / max(info.width, info.height))
    scale = max([placeholder_scale, *(plan.scale for plan in plans.values())])
    base = _drop_opaque_alpha(
        _decode(
            upload,
            info,
            max(1, math.ceil(info.width * scale)),
            max(1, math.ceil(info.height * scale)),
        )
    )
    # What the pixels showed, not the header: an all-opaque alpha band got dropped above, so
    # such a source gets the plain formats (JPEG included), and callers store this value.
    info = replace(info, has_alpha=bool(base.hasalpha()))
    variants: list[RenderedVariant] = []
    crops: list[pyvips.Image] = []
    for spec, outputs in _wanted_outputs(specs, info.has_alpha, only):
        image = _derive(base, plans[spec.name], spec, crops)
        if spec.fit == "cover":
            crops.append(image)
        variants.extend(
            RenderedVariant(
                name=spec.name,
                format=output.format,
                mime=output.mime,
                width=image.width,
                height=image.height,
                data=encode(image, output),
                spec_version=spec.version,
                encoder=encoder_of(output),
                extension=output.extension,
            )
            for output in outputs
        )
    return ImageRendition(info=info, variants=tuple(variants), placeholder=_placeholder(base))


def _wanted_outputs(
    specs: Sequence[VariantSpec],
    has_alpha: bool,
    only: Collection[tuple[str, str, str]] | None,
) -> list[tuple[VariantSpec, tuple[OutputFormat, ...]]]:
    wanted = []
    for spec in specs:
        outputs = tuple(
            output
            for output in spec.outputs(has_alpha)
            if only is None or (spec.name, output.format, spec.version) in only
        )
        if outputs:
            wanted.append((spec, outputs))
    return wanted


def _open(source: Path | bytes, limits: ImageLimits) -> _Upload:
    """Check size and type from the bytes themselves; SVG is vetted and re-serialised here."""
    if isinstance(source, Path):
        size = source.stat().st_size
        with source.open("rb") as file:
            head = file.read(SNIFF_BYTES)
    else:
        size = len(source)
        head = source[:SNIFF_BYTES]
    if size > limits.max_bytes:
        raise ValidationError(
            "too_large", f"the upload is {size} bytes, over the {limits.max_bytes}-byte cap"
        )
    sniffed = sniff(head)
    if sniffed.kind != "image":
        raise ValidationError(
            "unsupported_type", f"the content is a {sniffed.format} {sniffed.kind}, not an image"
        )
    if sniffed.format != "svg":
        return (
            _Upload(sniffed, source, None)
            if isinstance(source, Path)
            else _Upload(sniffed, None, source)
        )
    if size > limits.max_svg_bytes:
        raise ValidationError(
            "too_large", f"the SVG is {size} bytes, over the {limits.max_svg_bytes}-byte cap"
        )
    raw = source.read_bytes() if isinstance(source, Path) else source
    return _Upload(sniffed, None, sanitize_svg(raw, limits))


def _load(upload: _Upload, **options: Any) -> pyvips.Image:
    """Open with the format's own loader only, never libvips' guess."""
    loader = LOADERS[upload.sniffed.format]
    options.setdefault("fail_on", "error")
    try:
        if upload.data is not None:
            image = pyvips.Operation.call(f"{loader}_buffer", upload.data, **options)
        else:
            source = pyvips.Source.new_from_file(str(upload.path))
            image = pyvips.Operation.call(f"{loader}_source", source, **options)
    except pyvips.Error as exc:
        raise _load_error(upload, exc) from exc
    check_loader(image, upload.sniffed.format)
    return image


def _load_error(upload: _Upload, exc: pyvips.Error) -> ValidationError:
    name = upload.sniffed.format.upper()
    if is_blocked(exc):
        return ValidationError("blocked_loader", f"the {name} loader is blocked in this process")
    return ValidationError("corrupt", f"the {name} data cannot be read: {describe(exc)}")


def _header(upload: _Upload) -> pyvips.Image:
    """A lazy image: libvips reads the header now and pixels only when they are asked for."""
    return _load(upload, access="sequential")


def _info(upload: _Upload, header: pyvips.Image, limits: ImageLimits) -> ImageInfo:
    fields = header.get_fields()
    frames = int(header.get("n-pages")) if "n-pages" in fields else 1
    orientation = int(header.get("orientation")) if "orientation" in fields else 1
    if not 1 <= orientation <= 8:
        orientation = 1
    width, height = int(header.width), int(header.height)
    _check_limits(width, height, frames, limits)
    if orientation in _UPRIGHT_SWAPS_SIDES:
        width, height = height, width
    return ImageInfo(
        format=upload.sniffed.format,
        mime=upload.sniffed.mime,
        width=width,
        height=height,
        has_alpha=bool(header.hasalpha()),
        frames=max(1, frames),
        orientation=orientation,
    )


def _check_limits(width: int, height: int, frames: int, limits: ImageLimits) -> None:
    if width < 1 or height < 1:
        raise ValidationError("corrupt", f"the header claims a {width}x{height} image")
    if max(width, height) > limits.max_side:
        raise ValidationError(
            "too_many_pixels",
            f"{width}x{height} has a side over the {limits.max_side}-pixel cap",
        )
    if width * height > limits.max_pixels:
        raise ValidationError(
            "too_many_pixels",
            f"{width}x{height} is {width * height} pixels, over the {limits.max_pixels} cap",
        )
    if frames > limits.max_frames:
        raise ValidationError(
            "too_many_frames", f"{frames} frames is over the {limits.max_frames}-frame cap"
        )
    if width * height * frames > limits.max_animation_pixels:
        raise ValidationError(
            "too_many_frames",
            f"{frames} frames of {width}x{height} is over the "
            f"{limits.max_animation_pixels}-pixel animation cap",
        )


def _decode(upload: _Upload, info: ImageInfo, width: int, height: int) -> pyvips.Image:
    """Decode once, upright, sRGB 8-bit, at most ``width`` x ``height``, held in memory."""
    image_format = upload.sniffed.format
    shrink = min(info.width / width, info.height / height)
    try:
        if image_format == "heic" and not libvips_decodes_hevc():
            image = decode_heic(upload.read_all())
        else:
            image = _load(upload, access="sequential", **_load_options(image_format, shrink))
        image = image.thumbnail_image(width, height=height, size="down")
        return _to_srgb8(image).copy_memory()
    except pyvips.Error as exc:
        raise _load_error(upload, exc) from exc


def _load_options(image_format: str, shrink: float) -> dict[str, Any]:
    """Shrink-on-load where the format allows it, and only the first frame or page."""
    if image_format == "jpeg":
        return {"shrink": next(f for f in _JPEG_SHRINKS if f <= max(1.0, shrink))}
    if image_format == "webp":
        return {"n": 1, "page": 0, "scale": min(1.0, 1 / shrink)}
    if image_format == "svg":
        return {"scale": 1 / shrink}
    if image_format == "gif":
        return {"n": 1, "page": 0}
    if image_format in ("heic", "avif"):
        return {"n": 1, "page": 0, "thumbnail": False}
    if image_format == "tiff":
        return {"n": 1, "page": 0}
    return {}


def _to_srgb8(image: pyvips.Image) -> pyvips.Image:
    """8-bit sRGB, 3 or 4 bands; runs after the reduce: ICC at full size costs more than decode."""
    if image.get_typeof("icc-profile-data") or image.interpretation == "cmyk":
        fallback = "cmyk" if image.interpretation == "cmyk" else "srgb"
        image = image.icc_transform("srgb", embedded=True, input_profile=fallback, depth=8)
    if image.interpretation != "srgb" or image.format != "uchar":
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    if image.bands > 4:
        image = image.extract_band(0, n=4 if image.hasalpha() else 3)
    return image


def _drop_opaque_alpha(base: pyvips.Image) -> pyvips.Image:
    """Remove an alpha band that is 255 everywhere (GIFs and many PNGs carry one)."""
    try:
        if base.hasalpha() and base[base.bands - 1].min() >= 255:
            return base.extract_band(0, n=base.bands - 1).copy_memory()
    except pyvips.Error as exc:
        raise ProcessingError(f"alpha check failed: {describe(exc)}") from exc
    return base


def _derive(
    base: pyvips.Image, plan: Plan, spec: VariantSpec, crops: Sequence[pyvips.Image]
) -> pyvips.Image:
    """Resize or crop a variant from the shared decode without touching the source again.

    Every centre crop of one shape covers the same region of ``base``, so a crop is shrunk
    from the smallest crop of its shape already made (``crops``) that is big enough: a
    150 px square from the 300 px one costs a third of one from the 1200 px decode.
    """
    source = base
    if spec.fit == "cover":
        source = min(
            (
                made
                for made in crops
                if made.width * plan.height == made.height * plan.width and made.width >= plan.width
            ),
            key=lambda made: made.width,
            default=base,
        )
    if (source.width, source.height) == (plan.width, plan.height):
        return source
    crop = {"crop": "centre"} if spec.fit == "cover" else {}
    try:
        return source.thumbnail_image(
            plan.width, height=plan.height, no_rotate=True, **crop
        ).copy_memory()
    except pyvips.Error as exc:
        raise ProcessingError(f"resizing {spec.name!r} failed: {describe(exc)}") from exc


def _placeholder(base: pyvips.Image) -> str:
    """ThumbHash of a <=100 px copy of the shared decode."""
    try:
        small = base.thumbnail_image(PLACEHOLDER_SIDE, height=PLACEHOLDER_SIDE, no_rotate=True)
        if not small.hasalpha():
            small = small.bandjoin(255)
        pixels = np.asarray(small.numpy(), dtype=np.uint8)
    except pyvips.Error as exc:
        raise ProcessingError(f"placeholder failed: {describe(exc)}") from exc
    return thumbhash_base64(pixels)
