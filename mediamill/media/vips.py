"""libvips locked down for untrusted input: only the allowlisted loaders can run in this process."""

from __future__ import annotations

from typing import Final

import pyvips

from mediamill.media.errors import ValidationError

LOADERS: Final[dict[str, str]] = {
    "jpeg": "jpegload",
    "png": "pngload",
    "gif": "gifload",
    "webp": "webpload",
    "avif": "heifload",
    "heic": "heifload",
    "tiff": "tiffload",
    "svg": "svgload",
}
"""The one libvips loader each allowlisted format may be decoded with."""

_ALLOWED_LOADER_CLASSES: Final = (
    "VipsForeignLoadJpeg",
    "VipsForeignLoadPng",
    "VipsForeignLoadNsgif",
    "VipsForeignLoadWebp",
    "VipsForeignLoadHeif",
    "VipsForeignLoadTiff",
    "VipsForeignLoadSvg",
)
_LOADER_SUFFIXES: Final = ("_buffer", "_source")

_LIBVIPS_CACHE_DEFAULTS: Final = (100, 100 * 1024 * 1024, 100)
LIBVIPS_VERSION: Final = f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}"
ENCODER: Final = f"libvips {LIBVIPS_VERSION}"


def lock_down_loaders() -> None:
    """Block every loader, untrusted ones included, then reopen only the allowlist."""
    pyvips.block_untrusted_set(True)
    pyvips.operation_block_set("VipsForeignLoad", True)
    # svgload is among libvips' untrusted loaders; it is reopened because SVG only reaches it
    # after sanitize_svg has vetted and re-serialised the document.
    for name in _ALLOWED_LOADER_CLASSES:
        pyvips.operation_block_set(name, False)


def configure_vips(concurrency: int | None = None, *, operation_cache: bool = False) -> None:
    """Per-worker libvips threads, and the operation cache off: it only keeps old inputs alive."""
    if concurrency is not None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        pyvips.concurrency_set(concurrency)
    ops, memory, files = _LIBVIPS_CACHE_DEFAULTS if operation_cache else (0, 0, 0)
    pyvips.cache_set_max(ops)
    pyvips.cache_set_max_mem(memory)
    pyvips.cache_set_max_files(files)


def check_loader(image: pyvips.Image, image_format: str) -> None:
    """Refuse an image that libvips opened with any loader other than the format's own."""
    loader = str(image.get("vips-loader")) if "vips-loader" in image.get_fields() else ""
    for suffix in _LOADER_SUFFIXES:
        loader = loader.removesuffix(suffix)
    if loader != LOADERS[image_format]:
        raise ValidationError(
            "blocked_loader",
            f"{image_format} content was opened by {loader or 'an unknown loader'!r}",
        )


def describe(error: pyvips.Error) -> str:
    """The useful line of a libvips error, without its generic preamble."""
    lines = [line.strip() for line in str(error.detail or error.message).splitlines()]
    lines = [line for line in lines if line and not line.startswith("unable to")]
    return (lines[0] if lines else str(error.message)).removeprefix("VipsForeignLoad: ")[:200]


def is_blocked(error: pyvips.Error) -> bool:
    """Whether libvips refused because the operation is blocked."""
    return "blocked" in f"{error.message} {error.detail}"


lock_down_loaders()
