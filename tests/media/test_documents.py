"""render_document: page 1 of a PDF, drawn in a sandbox, made into image variants.

Hostile PDFs (THREATS.md: encrypted, truncated, JavaScript-bearing, 10000-page) fail with a
ValidationError or render page 1 only, within time and memory limits.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from pypdf import PdfReader, PdfWriter

from mediamill.media import pdf_samples, samples
from mediamill.media.document_specs import DocumentLimits, planned_document_variants
from mediamill.media.documents import MAX_TITLE_CHARS, render_document
from mediamill.media.errors import ValidationError
from mediamill.media.limits import ImageLimits
from mediamill.media.rendition import Rendition
from mediamill.media.sandbox import MIB
from mediamill.media.specs import DEFAULT_IMAGE_SPECS, VariantSpec
from mediamill.media.thumbhash import thumbhash_average_rgba
from tests.media.helpers import decode, pixels

DEFAULTS = DocumentLimits()
SMALL = DocumentLimits(max_render_side=600)
"""For tests about facts or failures, where a smaller drawing saves time."""


@pytest.fixture
def write(tmp_path: Path) -> Callable[[bytes], Path]:
    def to_file(data: bytes) -> Path:
        path = tmp_path / f"upload-{len(list(tmp_path.iterdir()))}.pdf"
        path.write_bytes(data)
        return path

    return to_file


@pytest.fixture(scope="module")
def brochure_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pdf") / "brochure.pdf"
    path.write_bytes(pdf_samples.brochure())
    return path


@pytest.fixture(scope="module")
def ten_thousand_pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pdf") / "pages.pdf"
    path.write_bytes(pdf_samples.many_pages(10_000))
    return path


def render(
    path: Path,
    specs: tuple[VariantSpec, ...] = DEFAULT_IMAGE_SPECS,
    limits: DocumentLimits = DEFAULTS,
) -> Rendition:
    return render_document(path, "pdf", specs, ImageLimits(), limits)


def refused(path: Path, limits: DocumentLimits = SMALL, document_format: str = "pdf") -> str:
    """The code of the ValidationError the render raises; any other exception fails the test."""
    with pytest.raises(ValidationError) as caught:
        render_document(path, document_format, DEFAULT_IMAGE_SPECS, ImageLimits(), limits)
    return caught.value.code


def colour_at(image: npt.NDArray[np.uint8], across: float, down: float) -> tuple[int, ...]:
    height, width = image.shape[:2]
    return tuple(int(c) for c in image[int(down * height), int(across * width), :3])


def close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 4) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def encrypt(data: bytes, user_password: str, algorithm: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# What a render returns


def test_reads_page_count_title_and_page_size(brochure_path: Path) -> None:
    rendition = render(brochure_path)
    assert (rendition.kind, rendition.format, rendition.has_alpha) == ("document", "pdf", False)
    assert rendition.metadata == {
        "pages": 3,
        "title": pdf_samples.TITLE,
        "page_width_pt": 595.0,
        "page_height_pt": 842.0,
        "restricted": False,
    }
    # page 1 drawn with its longest side at max_render_side, in the page's proportions
    assert (rendition.width, rendition.height) == (1696, 2400)


def test_page_one_is_drawn_where_and_in_the_colours_it_was_drawn(
    brochure_path: Path, png_spec: tuple[VariantSpec, ...]
) -> None:
    (variant,) = render(brochure_path, png_spec).variants
    image = pixels(variant.data)
    assert image.shape == (1200, 848, 3)
    for colour, rect in pdf_samples.BROCHURE_BOXES:
        assert close(colour_at(image, *rect.point(0.5, 0.5)), colour), colour
    assert colour_at(image, 0.01, 0.99) == (255, 255, 255)  # the margin, on white
    picture = pdf_samples.BROCHURE_PICTURE
    blue = pdf_samples.PICTURE_BLUE
    assert close(colour_at(image, *picture.point(0.5, 0.5)), (128, 128, blue), 8)
    assert close(colour_at(image, *picture.point(0.05, 0.05)), (13, 13, blue), 8)
    assert close(colour_at(image, *picture.point(0.95, 0.95)), (242, 242, blue), 8)
    later = np.all(np.abs(image.astype(int) - pdf_samples.LATER_PAGE_COLOUR) < 30, axis=-1)
    assert not later.any()


def test_variants_carry_the_image_spec_names_and_match_the_plan(brochure_path: Path) -> None:
    rendition = render(brochure_path)
    made = {(v.name, v.format): (v.width, v.height) for v in rendition.variants}
    assert made == {
        ("optimized", "jpeg"): (848, 1200),
        ("optimized", "webp"): (848, 1200),
        ("optimized", "avif"): (848, 1200),
        ("thumb", "jpeg"): (300, 300),
        ("thumb", "webp"): (300, 300),
        ("tiny", "jpeg"): (150, 150),
        ("tiny", "webp"): (150, 150),
    }
    assert {v.variant_id for v in rendition.variants} == planned_document_variants(
        DEFAULT_IMAGE_SPECS
    )
    for variant in rendition.variants:
        image = decode(variant.data)
        assert (image.width, image.height) == made[(variant.name, variant.format)]
        assert variant.mime == f"image/{variant.format}"


def test_planned_variants_are_the_opaque_ones() -> None:
    planned = planned_document_variants(DEFAULT_IMAGE_SPECS)
    assert len(planned) == 7
    assert all(image_format != "png" for _, image_format, _ in planned)


def test_placeholder_is_a_thumbhash_of_page_one(write: Callable[[bytes], Path]) -> None:
    rendition = render(write(pdf_samples.huge_page()), limits=SMALL)
    assert rendition.placeholder is not None
    r, g, b, a = thumbhash_average_rgba(base64.b64decode(rendition.placeholder))
    red, blue = pdf_samples.RED, pdf_samples.BLUE
    expected = [(red[i] + blue[i]) / 2 / 255 for i in range(3)]
    assert np.allclose((r, g, b), expected, atol=0.06)
    assert a == pytest.approx(1.0)


def test_only_makes_the_variants_asked_for(brochure_path: Path) -> None:
    thumb = next(spec for spec in DEFAULT_IMAGE_SPECS if spec.name == "thumb")
    wanted = {("thumb", "webp", thumb.version)}
    rendition = render_document(
        brochure_path, "pdf", DEFAULT_IMAGE_SPECS, ImageLimits(), SMALL, only=wanted
    )
    assert {v.variant_id for v in rendition.variants} == wanted
    assert rendition.placeholder


def test_title_is_cleaned_and_capped(write: Callable[[bytes], Path]) -> None:
    hostile = "  Spring\x00 sale\u202e\r\n\t2025\u200b " + "x" * 1000
    rendition = render(write(pdf_samples.brochure(title=hostile)), limits=SMALL)
    title = rendition.metadata["title"]
    assert title.startswith("Spring sale 2025 xxx")
    assert len(title) == MAX_TITLE_CHARS
    assert all(c.isprintable() for c in title)


def test_a_title_that_is_not_valid_utf16_is_kept_readable(write: Callable[[bytes], Path]) -> None:
    # U+1F600 is the surrogate pair D83D DE00 in UTF-16; break the pair in the file's bytes
    data = pdf_samples.brochure(title="A\U0001f600B")
    broken = data.replace(b"D83DDE00", b"D83D0041")
    assert broken != data
    title = render(write(broken), limits=SMALL).metadata["title"]
    assert title == "A\ufffdAB"


def test_a_missing_title_is_an_empty_string(write: Callable[[bytes], Path]) -> None:
    assert render(write(pdf_samples.brochure(title=None)), limits=SMALL).metadata["title"] == ""


# Page caps: the 10000-page PDF


def test_ten_thousand_pages_are_over_the_default_cap(ten_thousand_pages: Path) -> None:
    assert DEFAULTS.max_pages == 5000
    assert refused(ten_thousand_pages, DocumentLimits(max_render_side=600)) == "too_many_pages"


def test_ten_thousand_pages_at_the_cap_render_page_one_only(ten_thousand_pages: Path) -> None:
    limits = DocumentLimits(max_pages=10_000, max_render_side=500, seconds=20)
    rendition = render(ten_thousand_pages, limits=limits)
    assert rendition.metadata["pages"] == 10_000
    assert (rendition.width, rendition.height) == (500, 500)


def test_the_page_cap_is_inclusive(write: Callable[[bytes], Path]) -> None:
    path = write(pdf_samples.many_pages(50))
    at_cap = DocumentLimits(max_pages=50, max_render_side=200)
    assert render(path, limits=at_cap).metadata["pages"] == 50
    assert refused(path, DocumentLimits(max_pages=49, max_render_side=200)) == "too_many_pages"


# Hostile files


@pytest.mark.parametrize("algorithm", ["AES-256", "RC4-40"])
def test_pdfs_that_need_a_password_are_refused(
    write: Callable[[bytes], Path], algorithm: str
) -> None:
    data = encrypt(pdf_samples.brochure(), "secret", algorithm)
    assert refused(write(data)) == "encrypted"


@pytest.mark.parametrize("algorithm", ["AES-128", "RC4-128"])
def test_pdfs_with_only_usage_restrictions_render_and_say_so(
    write: Callable[[bytes], Path], algorithm: str
) -> None:
    # An empty user password opens without asking: only the owner's permissions are set.
    data = encrypt(pdf_samples.brochure(), "", algorithm)
    rendition = render_document(
        write(data), "pdf", DEFAULT_IMAGE_SPECS, ImageLimits(), DocumentLimits()
    )
    assert rendition.metadata["restricted"] is True
    assert rendition.metadata["pages"] >= 1
    assert rendition.variants


def test_a_pdf_cut_in_half_is_corrupt(write: Callable[[bytes], Path]) -> None:
    assert refused(write(pdf_samples.truncated(0.6))) == "corrupt"


def test_a_pdf_missing_only_its_last_line_is_repaired(
    write: Callable[[bytes], Path], brochure_path: Path, png_spec: tuple[VariantSpec, ...]
) -> None:
    # PDFium rebuilds the cross-reference table when startxref and %%EOF are cut off
    whole = brochure_path.read_bytes()
    assert whole.endswith(b"%%EOF\n")
    cut = render(write(whole[:-20]), png_spec)
    intact = render(brochure_path, png_spec)
    assert cut.metadata == intact.metadata
    assert cut.variants[0].data == intact.variants[0].data


def test_javascript_is_not_run(
    write: Callable[[bytes], Path], brochure_path: Path, png_spec: tuple[VariantSpec, ...]
) -> None:
    # the script loops forever: run, it would hit the time limit instead of rendering
    limits = DocumentLimits(seconds=15)
    scripted = render(write(pdf_samples.javascript_on_open()), png_spec, limits)
    plain = render(brochure_path, png_spec, limits)
    assert scripted.metadata == plain.metadata
    assert scripted.variants[0].data == plain.variants[0].data


@pytest.mark.parametrize("side", [14_400, 1_000_000])
def test_an_absurd_mediabox_is_scaled_down_not_drawn_huge(
    write: Callable[[bytes], Path], png_spec: tuple[VariantSpec, ...], side: int
) -> None:
    # PDFium itself treats a box far past the 14400-unit limit of the PDF spec as invalid
    rendition = render(write(pdf_samples.huge_page(side)), png_spec)
    assert max(rendition.width, rendition.height) == DEFAULTS.max_render_side
    if side == 14_400:
        # drawn whole: red on the left half, blue on the right half
        assert rendition.metadata["page_width_pt"] == 14_400
        image = pixels(rendition.variants[0].data)
        assert close(colour_at(image, 0.25, 0.5), pdf_samples.RED)
        assert close(colour_at(image, 0.75, 0.5), pdf_samples.BLUE)


def test_the_render_side_limit_applies(write: Callable[[bytes], Path]) -> None:
    rendition = render(write(pdf_samples.huge_page()), limits=DocumentLimits(max_render_side=320))
    assert (rendition.width, rendition.height) == (320, 320)


@pytest.mark.parametrize(
    ("width", "height", "size"),
    [(14_400, 1, (600, 1)), (0.01, 0.01, (600, 600)), (1, 14_400, (1, 600))],
)
def test_extreme_page_shapes_keep_their_proportions(
    write: Callable[[bytes], Path], width: float, height: float, size: tuple[int, int]
) -> None:
    rendition = render(write(pdf_samples.page_of_size(width, height)), limits=SMALL)
    assert (rendition.width, rendition.height) == size
    assert rendition.variants


def test_a_render_bomb_is_cut_at_the_time_limit(
    write: Callable[[bytes], Path], brochure_path: Path
) -> None:
    limits = DocumentLimits(seconds=4, memory_bytes=2048 * MIB)
    render(brochure_path, limits=limits)  # an ordinary PDF fits these limits
    assert refused(write(pdf_samples.render_bomb(300_000)), limits) == "timed_out"


def test_a_render_bomb_is_cut_at_the_memory_limit(
    write: Callable[[bytes], Path], brochure_path: Path
) -> None:
    limits = DocumentLimits(seconds=60, memory_bytes=300 * MIB)
    render(brochure_path, limits=limits)  # an ordinary PDF fits these limits
    assert refused(write(pdf_samples.render_bomb(2_000_000)), limits) == "out_of_memory"


HOSTILE = {
    "truncated": (pdf_samples.truncated, "corrupt"),
    "garbage after %PDF-": (pdf_samples.garbage, "corrupt"),
    "no pages": (pdf_samples.no_pages, "empty"),
    "encrypted": (lambda: encrypt(pdf_samples.brochure(), "secret", "AES-256"), "encrypted"),
    "too many pages": (lambda: pdf_samples.many_pages(6000), "too_many_pages"),
    "a PNG named .pdf": (lambda: samples.grey_png(40, 30), "unsupported_type"),
    "HTML named .pdf": (samples.html_as_jpg, "unsupported_type"),
    "empty file": (lambda: b"", "empty"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_files_fail_with_a_validation_error_only(
    write: Callable[[bytes], Path], name: str
) -> None:
    make, code = HOSTILE[name]
    assert refused(write(make())) == code


# Caps and allowlist checked before any parser runs


def test_only_pdf_is_accepted(brochure_path: Path) -> None:
    for document_format in ("docx", "svg", "PDF", ""):
        assert refused(brochure_path, document_format=document_format) == "unsupported_type"


def test_one_byte_over_the_size_cap_is_refused(brochure_path: Path) -> None:
    size = brochure_path.stat().st_size
    at_cap = DocumentLimits(max_bytes=size, max_render_side=200)
    assert render(brochure_path, limits=at_cap).metadata["pages"] == 3
    assert refused(brochure_path, DocumentLimits(max_bytes=size - 1)) == "too_large"


@pytest.mark.parametrize(
    "bad",
    [
        {"max_bytes": 0},
        {"max_pages": -1},
        {"max_render_side": 0},
        {"max_render_side": 100_000},
        {"max_pages": True},
        {"max_pages": 2.5},
        {"seconds": 0},
        {"seconds": float("nan")},
        {"seconds": float("inf")},
        {"memory_bytes": 0},
    ],
)
def test_limits_are_validated(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="DocumentLimits"):
        DocumentLimits(**bad)
