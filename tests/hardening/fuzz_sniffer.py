"""Coverage-guided fuzzing of the sniffer and the header validators (atheris, libFuzzer).

Run it from the repository root, with libFuzzer flags and optional corpus directories::

    python -m tests.hardening.fuzz_sniffer -max_total_time=30 -rss_limit_mb=2048 [CORPUS_DIR]

The first input byte picks what the rest is fed to, so the fuzzer can steer into each
validator on purpose: the model header checks of one format, ``probe_image`` (sniff, size
cap, SVG vetting, libvips header read, pixel and frame caps) or ``sanitize_svg``. The
sniffer sees every input. A ``ValidationError`` with a documented code is the expected way
to refuse (``MediaError`` where the image probe may also report a library failure);
anything else, or a broken invariant, is a crash, and libFuzzer saves the input as
``crash-<sha1>``. The seed corpus is generated from the project's sample generators into a
fresh temporary directory at start, so no binary seeds live in the repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Final

import atheris  # type: ignore[import-untyped]

# Third-party modules are imported before instrumentation so only our code is traced.
import defusedxml.ElementTree  # noqa: F401
import numpy  # noqa: F401
import PIL.Image  # noqa: F401
import pyvips  # noqa: F401

# atheris' "RegEx" hook is left off: its pattern proxy drops the pos/endpos arguments that
# the model header checks pass to ``Pattern.search``, which would read as false crashes.
with atheris.instrument_imports(include=["mediamill"]):
    from mediamill.media.errors import VALIDATION_CODES, MediaError, ValidationError
    from mediamill.media.images import probe_image
    from mediamill.media.limits import ImageLimits
    from mediamill.media.mesh_headers import check_headers
    from mediamill.media.mesh_specs import MeshLimits
    from mediamill.media.sniff import _TYPES, SNIFF_BYTES, Sniffed, sniff
    from mediamill.media.svg import sanitize_svg
    from mediamill.media.vips import configure_vips

MODEL_FORMATS: Final = ("glb", "gltf", "obj", "stl", "ply")
PROBE_IMAGE: Final = len(MODEL_FORMATS)
SANITIZE_SVG: Final = PROBE_IMAGE + 1
SNIFF_ONLY: Final = SANITIZE_SVG + 1
TARGETS: Final = SNIFF_ONLY + 1
"""The first byte modulo TARGETS: 0-4 a model format's header checks, then the rest."""

SEEDED: Final = "FUZZ_SNIFFER_SEEDED"
"""Set in the child process that fuzzes, once the parent has written the seed corpus."""
SNIFF_CODES: Final = frozenset({"empty", "unsupported_type"})
IMAGE_LIMITS: Final = ImageLimits()
MESH_LIMITS: Final = MeshLimits()
MAX_SIDE: Final = IMAGE_LIMITS.max_side


def refused(error: BaseException, allowed: frozenset[str] = VALIDATION_CODES) -> None:
    """Accept a ValidationError with an allowed code; anything else propagates as a crash."""
    if not isinstance(error, ValidationError):
        raise error
    if error.code not in allowed:
        raise AssertionError(f"undocumented code {error.code!r}: {error}") from error
    if not error.message:
        raise AssertionError("a ValidationError without a message") from error


def sniffed(head: bytes, size: int | None) -> Sniffed | None:
    """Sniff twice: the answer must be the same, and one of the types the module names."""
    answers: list[Sniffed | str] = []
    for _ in range(2):
        try:
            answers.append(sniff(head, size=size))
        except ValidationError as error:
            refused(error, SNIFF_CODES)
            answers.append(error.code)
    if answers[0] != answers[1]:
        raise AssertionError(f"sniff is not deterministic: {answers}")
    answer = answers[0]
    if isinstance(answer, str):
        return None
    if _TYPES.get(answer.format) != answer:
        raise AssertionError(f"sniff named an unknown type {answer}")
    return answer


def check_model(body: bytes, model_format: str) -> None:
    """The header checks that run before trimesh is handed the bytes."""
    try:
        check_headers(body, model_format, MESH_LIMITS)
    except Exception as error:
        refused(error)


def check_image(body: bytes) -> None:
    """The whole probe: anything it accepts must be within every cap."""
    try:
        info = probe_image(body, IMAGE_LIMITS)
    except ValidationError as error:
        refused(error)
        return
    except MediaError:
        return  # a library failure reported as ours: not a crash of the validator
    if not 1 <= min(info.width, info.height) <= max(info.width, info.height) <= MAX_SIDE:
        raise AssertionError(f"probe_image accepted a {info.width}x{info.height} image")
    if info.width * info.height > IMAGE_LIMITS.max_pixels:
        raise AssertionError(f"probe_image accepted {info.width}x{info.height} pixels")
    if info.frames > IMAGE_LIMITS.max_frames:
        raise AssertionError(f"probe_image accepted {info.frames} frames")


def check_svg(body: bytes) -> None:
    """The SVG vetting, on XML the sniffer's root check would not have let through."""
    try:
        clean = sanitize_svg(body)
    except Exception as error:
        refused(error)
        return
    if b"<script" in clean.lower():
        raise AssertionError("sanitize_svg let a <script> element through")
    # What sanitize_svg writes is what libvips reads: it must pass the same checks again.
    sanitize_svg(clean)


def TestOneInput(data: bytes) -> None:  # noqa: N802 - the name atheris documents
    """One input: the first byte picks the validator, the rest is the upload."""
    if not data:
        return
    target, body = data[0] % TARGETS, data[1:]
    sniffed(body[:SNIFF_BYTES], len(body))
    sniffed(body[:SNIFF_BYTES], None)
    if target < PROBE_IMAGE:
        check_model(body, MODEL_FORMATS[target])
    elif target == PROBE_IMAGE:
        check_image(body)
    elif target == SANITIZE_SVG:
        check_svg(body)


def write_seeds(folder: Path) -> int:
    """Every generated sample, prefixed with the byte that sends it to its validator."""
    from tests.hardening.corpus import all_samples, image_samples

    count = 0
    images = image_samples()
    for number, sample in enumerate(all_samples()):
        targets = [SNIFF_ONLY]
        suffix = sample.name.rpartition(".")[2].partition("_")[0]
        if suffix in MODEL_FORMATS:
            targets.append(MODEL_FORMATS.index(suffix))
        elif sample in images:
            targets.append(PROBE_IMAGE)
        if sample.format == "svg":
            targets.append(SANITIZE_SVG)
        for target in targets:
            (folder / f"seed-{number:03d}-{target}").write_bytes(bytes([target]) + sample.data)
            count += 1
    return count


def main(argv: list[str]) -> int:
    """Fuzz with the generated seeds; they live in a temporary directory removed at the end.

    libFuzzer ends the process without running Python's exit handlers, so the fuzzing runs
    in a child process and this one cleans up after it and passes its exit status on.
    """
    if os.environ.get(SEEDED) == "1":
        configure_vips(1)
        atheris.Setup(argv, TestOneInput)
        atheris.Fuzz()
    with tempfile.TemporaryDirectory(prefix="mediamill-fuzz-seeds-") as seeds:
        count = write_seeds(Path(seeds))
        print(f"wrote {count} seeds to a temporary corpus directory", file=sys.stderr)
        # libFuzzer adds new inputs to the first corpus directory: the caller's if given one.
        command = [sys.executable, "-m", "tests.hardening.fuzz_sniffer", *argv[1:], seeds]
        return subprocess.run(command, env={**os.environ, SEEDED: "1"}, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv))
