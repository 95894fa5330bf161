"""Decoders the media tests use to look inside encoded outputs."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyvips

from mediamill.media import samples

METADATA_FIELDS = ("exif-data", "xmp-data", "icc-profile-data", "iptc-data", "orientation")


def decode(data: bytes) -> pyvips.Image:
    """Open an encoded output with libvips' own detection."""
    return pyvips.Image.new_from_buffer(data, "")


def pixels(data: bytes) -> npt.NDArray[np.uint8]:
    """Decode an encoded output to an (height, width, bands) uint8 array."""
    image = decode(data)
    array = np.asarray(image.numpy(), dtype=np.uint8)
    return array.reshape(image.height, image.width, -1)


def loader(data: bytes) -> str:
    """The libvips loader that recognises ``data``, e.g. ``jpegload_buffer``."""
    return str(decode(data).get("vips-loader"))


def metadata(data: bytes) -> list[str]:
    """The metadata fields an output carries (none should)."""
    fields = decode(data).get_fields()
    return [f for f in fields if f in METADATA_FIELDS or f.startswith(("exif-", "xmp", "gps"))]


def hostile_non_images() -> dict[str, bytes]:
    """Uploads that pose as images but are not (THREATS.md: extension lies, untrusted loaders)."""
    return {
        "html": samples.html_as_jpg(),
        "php": samples.php_as_jpg(),
        "fits": samples.fits(),
        "ppm": samples.ppm(),
        "matlab": samples.matlab(),
        "csv": samples.csv_matrix(),
        "mvg": samples.mvg(),
    }
