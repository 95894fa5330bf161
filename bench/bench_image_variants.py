"""Image variants: mediamill's libvips renderer against naive Pillow, one core each, same run.

Run ``.venv/bin/python -m bench.bench_image_variants [--json out.json]``. Goals (the image
pipeline issue): the JPEG + WebP variants of a 12 MP JPEG in at most 0.45x naive Pillow's
time; AVIF's cost reported apart; at most 300 MB of peak memory for a 100 MP JPEG.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyvips
from PIL import Image, ImageOps

from bench.rows import report
from mediamill.media import samples
from mediamill.media.images import render_image
from mediamill.media.limits import ImageLimits
from mediamill.media.specs import DEFAULT_IMAGE_SPECS, OutputFormat, VariantSpec
from mediamill.media.thumbhash import thumbhash_base64
from mediamill.media.vips import configure_vips

PHOTO_SIZE = (4000, 3000)
BIG_PHOTO_SIZE = (10_000, 10_000)
SPEED_GOAL = 0.45
RSS_GOAL_MB = 300.0
# The issue that set these goals: the image pipeline.
ISSUE = 2

_RSS_CHILD = """
import sys
from pathlib import Path
{setup}
status = Path("/proc/self/status").read_text()
print(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
"""
"""VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent across exec."""
_VIPS_RENDER = """
from mediamill.media.images import render_image
from mediamill.media.limits import ImageLimits
from mediamill.media.specs import DEFAULT_IMAGE_SPECS
from mediamill.media.vips import configure_vips
configure_vips()
render_image(Path(sys.argv[1]), DEFAULT_IMAGE_SPECS, ImageLimits())
"""
_PILLOW_RENDER = """
import io
from PIL import Image, ImageOps
Image.MAX_IMAGE_PIXELS = None
image = Image.open(sys.argv[1])
image.load()
scale = min(1.0, 1200 / max(image.size))
optimized = (round(image.width * scale), round(image.height * scale))
for variant in (image.resize(optimized, Image.LANCZOS),
                ImageOps.fit(image, (300, 300), Image.LANCZOS),
                ImageOps.fit(image, (150, 150), Image.LANCZOS)):
    variant.save(io.BytesIO(), "JPEG", quality=85)
    variant.save(io.BytesIO(), "WEBP", quality=80, method=4)
"""


@dataclass(frozen=True)
class Row:
    """One line of the report; ``goal`` is a ceiling on the ratio, or on the value."""

    name: str
    value: float
    baseline: float
    baseline_name: str
    goal: float | None = None
    goal_on: Literal["ratio", "value"] = "ratio"
    # The issue that set the goal or asked for the figure; None for a detail.
    issue: int | None = ISSUE

    @property
    def ratio(self) -> float:
        return self.value / self.baseline

    def as_dict(self) -> dict[str, Any]:
        """The shape every benchmark script writes (see `bench.rows`)."""
        row: dict[str, Any] = {
            "name": self.name,
            "value": self.value,
            "baseline": self.baseline,
            "baseline_name": self.baseline_name,
            "ratio": self.ratio,
            "issue": self.issue,
        }
        if self.goal is None:
            return {**row, "goal": "report", "ok": None}
        if self.goal_on == "ratio":
            return {
                **row,
                "goal": f"<= {self.goal:g}x",
                "goal_ratio": self.goal,
                "ok": self.ratio <= self.goal,
            }
        unit = self.name.rpartition("(")[2].rstrip(")")
        return {
            **row,
            "goal": f"<= {self.goal:g} {unit}",
            "goal_value": self.goal,
            "ok": self.value <= self.goal,
        }


def median_seconds(*works: Callable[[], object], repeats: int) -> list[float]:
    """Median wall time of each work, run interleaved so drifting machine speed hits all alike."""
    for work in works:
        work()
    times: list[list[float]] = [[] for _ in works]
    for _ in range(repeats):
        for work, samples_of in zip(works, times, strict=True):
            start = time.perf_counter()
            work()
            samples_of.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def _outputs(formats: set[str]) -> set[tuple[str, str, str]]:
    return {
        (spec.name, output.format, spec.version)
        for spec in DEFAULT_IMAGE_SPECS
        for output in spec.formats
        if output.format in formats
    }


def _pillow_save(image: Image.Image, output: OutputFormat) -> bytes:
    buffer = io.BytesIO()
    if output.format == "jpeg":
        image.save(
            buffer, "JPEG", quality=output.quality, progressive=output.progressive, optimize=True
        )
    else:
        image.save(buffer, "WEBP", quality=output.quality, method=output.effort or 4)
    return buffer.getvalue()


def pillow_variants(data: bytes, specs: tuple[VariantSpec, ...]) -> list[bytes]:
    """The naive way: full-size decode, LANCZOS from full size for every variant."""
    image = Image.open(io.BytesIO(data))
    image.load()
    outputs: list[bytes] = []
    for spec in specs:
        if spec.fit == "cover":
            variant = ImageOps.fit(image, (spec.width, spec.height), Image.Resampling.LANCZOS)
        else:
            scale = min(1.0, spec.width / image.width, spec.height / image.height)
            size = (round(image.width * scale), round(image.height * scale))
            variant = image.resize(size, Image.Resampling.LANCZOS)
        outputs.extend(
            _pillow_save(variant, output)
            for output in spec.formats
            if output.format in ("jpeg", "webp")
        )
    return outputs


def speed_rows(repeats: int) -> list[Row]:
    """JPEG + WebP variants of a 12 MP JPEG, AVIF's extra cost, and the placeholder's cost."""
    configure_vips(1)
    data = samples.photo_jpeg(*PHOTO_SIZE, seed=7)
    limits = ImageLimits()
    jpeg_webp = _outputs({"jpeg", "webp"})
    vips, pillow, everything, avif_only, placeholder_only = median_seconds(
        lambda: render_image(data, DEFAULT_IMAGE_SPECS, limits, only=jpeg_webp),
        lambda: pillow_variants(data, DEFAULT_IMAGE_SPECS),
        lambda: render_image(data, DEFAULT_IMAGE_SPECS, limits),
        lambda: render_image(data, DEFAULT_IMAGE_SPECS, limits, only=_outputs({"avif"})),
        lambda: render_image(data, DEFAULT_IMAGE_SPECS, limits, only=()),
        repeats=repeats,
    )
    rgba = np.asarray(
        pyvips.Image.new_from_buffer(data, "").thumbnail_image(100).bandjoin(255).numpy(),
        dtype=np.uint8,
    )
    (thumbhash,) = median_seconds(lambda: thumbhash_base64(rgba), repeats=repeats * 4)
    ours = "mediamill's JPEG + WebP variants of the same JPEG"
    return [
        Row(
            "JPEG + WebP variants of a 12 MP JPEG, one core (s)",
            vips,
            pillow,
            f"naive Pillow: full decode, ImageOps.fit, LANCZOS (median of {repeats})",
            SPEED_GOAL,
        ),
        Row("AVIF's extra cost, same JPEG (s)", everything - vips, vips, ours),
        Row("AVIF-only render (decode + encode) (s)", avif_only, vips, ours, issue=None),
        Row("decode + placeholder only (s)", placeholder_only, vips, ours, issue=None),
        Row(
            "ThumbHash of a 100 px image (ms)",
            thumbhash * 1000,
            placeholder_only * 1000,
            "decode + placeholder of the 12 MP JPEG",
            issue=None,
        ),
    ]


def peak_rss_mb(path: Path, setup: str) -> float:
    """Peak RSS of a fresh interpreter that runs ``setup`` on ``path`` (argv[1])."""
    child = _RSS_CHILD.format(setup=setup)
    result = subprocess.run(
        [sys.executable, "-c", child, str(path)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "VIPS_CONCURRENCY": "1"},
    )
    return int(result.stdout.strip().splitlines()[-1]) / 1024


def rss_rows(folder: Path) -> list[Row]:
    """Peak RSS rendering one 100 MP JPEG in a fresh process, libvips and naive Pillow."""
    path = folder / "100mp.jpg"
    configure_vips(None)
    samples.photo(*BIG_PHOTO_SIZE, seed=11).jpegsave(str(path), Q=90, keep="none")
    vips = peak_rss_mb(path, _VIPS_RENDER)
    pillow = peak_rss_mb(path, _PILLOW_RENDER)
    return [
        Row(
            "peak RSS rendering a 100 MP JPEG, renderer alone (MB)",
            vips,
            pillow,
            "naive Pillow, same JPEG (each a fresh process, VmHWM)",
            RSS_GOAL_MB,
            "value",
        )
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, optionally write the rows as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, help="write the rows to this JSON file")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measure")
    parser.add_argument("--skip-rss", action="store_true", help="skip the 100 MP RSS runs")
    args = parser.parse_args(argv)
    rows = speed_rows(args.repeats)
    if not args.skip_rss:
        with tempfile.TemporaryDirectory() as folder:
            rows += rss_rows(Path(folder))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
    report([row.as_dict() for row in rows], args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
