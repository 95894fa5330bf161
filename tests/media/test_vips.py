"""libvips runs only the allowlisted loaders, whatever the file is called."""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips

from mediamill.media import samples
from mediamill.media.errors import ValidationError
from mediamill.media.images import probe_image
from mediamill.media.limits import ImageLimits
from mediamill.media.vips import LOADERS, check_loader, configure_vips, lock_down_loaders


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("image.v", samples.vips_native()),
        ("matrix.mat", b"2 2\n1 2\n3 4\n"),
        ("table.csv", samples.csv_matrix()),
        ("photo.jpg", samples.vips_native()),
    ],
)
def test_untrusted_and_unlisted_loaders_are_blocked(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(pyvips.Error):
        pyvips.Image.new_from_file(str(path)).avg()


def test_allowlisted_loaders_still_work() -> None:
    for data in (samples.photo_jpeg(16, 16), samples.alpha_png(8, 8), samples.svg()):
        assert pyvips.Image.new_from_buffer(data, "").avg() >= 0


def test_an_image_from_another_loader_is_refused() -> None:
    png = pyvips.Image.new_from_buffer(samples.alpha_png(8, 8), "")
    check_loader(png, "png")
    with pytest.raises(ValidationError) as caught:
        check_loader(png, "jpeg")
    assert caught.value.code == "blocked_loader"
    with pytest.raises(ValidationError):
        check_loader(pyvips.Image.black(2, 2), "png")


def test_every_allowed_format_has_one_loader() -> None:
    assert set(LOADERS) == {"jpeg", "png", "gif", "webp", "avif", "heic", "tiff", "svg"}


def test_configure_vips_validates_concurrency() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        configure_vips(0)
    configure_vips(None, operation_cache=True)
    assert pyvips.cache_get_max() > 0
    configure_vips(None)
    assert pyvips.cache_get_max() == 0


def test_a_blocked_loader_is_reported_as_such(limits: ImageLimits) -> None:
    pyvips.operation_block_set("VipsForeignLoadJpeg", True)
    try:
        with pytest.raises(ValidationError) as caught:
            probe_image(samples.photo_jpeg(16, 16), limits)
    finally:
        lock_down_loaders()
    assert caught.value.code == "blocked_loader"
    assert probe_image(samples.photo_jpeg(16, 16), limits).format == "jpeg"
