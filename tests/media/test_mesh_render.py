"""render_model: four lit, framed previews, a contact sheet and a web GLB per model.

The textured box has one colour per face (``mesh_samples.FACE_COLOURS``), so each view's
colours say which side of the model the camera saw. Renders are shared per module: each
costs a sandboxed process and an offscreen GL context.
"""

from __future__ import annotations

import base64
import itertools
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import trimesh

from mediamill.media import mesh_samples
from mediamill.media.limits import ImageLimits
from mediamill.media.mesh_specs import (
    ANGLES,
    BACKGROUND,
    CONTACT_SHEET,
    DEFAULT_GLB_SPEC,
    MARGIN,
    GlbSpec,
    MeshLimits,
    planned_model_variants,
    preview_version,
)
from mediamill.media.meshes import render_model
from mediamill.media.rendition import RenderedVariant, Rendition
from mediamill.media.specs import DEFAULT_IMAGE_SPECS
from mediamill.media.thumbhash import thumbhash_average_rgba
from tests.media.helpers import decode, pixels

LIMITS = MeshLimits(seconds=60)
SPECS = {spec.name: spec for spec in DEFAULT_IMAGE_SPECS}
SENTINEL = b"MEDIAMILL-SENTINEL-77d1"


def _render(path: Path, model_format: str, **options: object) -> Rendition:
    return render_model(
        path,
        model_format,
        DEFAULT_IMAGE_SPECS,
        ImageLimits(),
        LIMITS,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Rendition:
    path = tmp_path_factory.mktemp("box") / "box.glb"
    path.write_bytes(mesh_samples.textured_box_glb())
    return _render(path, "glb")


def _variant(rendition: Rendition, name: str, image_format: str) -> RenderedVariant:
    (found,) = [v for v in rendition.variants if (v.name, v.format) == (name, image_format)]
    return found


def _rgb(variant: RenderedVariant) -> npt.NDArray[np.uint8]:
    return pixels(variant.data)[:, :, :3]


def _foreground(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    distance = np.abs(image.astype(int) - np.array(BACKGROUND)).max(axis=2)
    return np.asarray(distance > 24)


def _nearest_face(colour: npt.NDArray[np.float64]) -> str:
    """The face of ``FACE_COLOURS`` whose chromaticity is closest (shading scales brightness)."""
    chroma = colour / max(colour.sum(), 1)
    return min(
        mesh_samples.FACE_COLOURS,
        key=lambda face: float(
            np.abs(
                np.array(mesh_samples.FACE_COLOURS[face]) / sum(mesh_samples.FACE_COLOURS[face])
                - chroma
            ).sum()
        ),
    )


def _centre_face(image: npt.NDArray[np.uint8]) -> str:
    height, width = image.shape[:2]
    patch = image[height * 2 // 5 : height * 3 // 5, width * 2 // 5 : width * 3 // 5]
    return _nearest_face(np.median(patch.reshape(-1, 3), axis=0))


def test_a_full_render_makes_exactly_the_planned_variants(box: Rendition) -> None:
    assert {v.variant_id for v in box.variants} == planned_model_variants(DEFAULT_IMAGE_SPECS)
    assert len(box.variants) == len(planned_model_variants(DEFAULT_IMAGE_SPECS))
    assert (box.kind, box.format, box.width, box.height, box.has_alpha) == (
        "model",
        "glb",
        1200,
        1200,
        False,
    )
    assert box.metadata["faces"] == 12
    assert box.metadata["textures"] == 1


def test_variants_have_their_names_sizes_and_encodings(box: Rendition) -> None:
    for angle, spec in itertools.product(ANGLES, DEFAULT_IMAGE_SPECS):
        name = spec.name if angle == "three-quarter" else f"{angle}-{spec.name}"
        for output in spec.formats:
            variant = _variant(box, name, output.format)
            assert (variant.mime, variant.extension) == (output.mime, output.extension)
            assert variant.spec_version == preview_version(spec)
            side = min(spec.width, spec.height)
            assert (variant.width, variant.height) == (side, side)
            assert (decode(variant.data).width, decode(variant.data).height) == (side, side)
            assert decode(variant.data).bands == 3
    for image_format in ("jpeg", "webp"):
        sheet = _variant(box, "contact-sheet", image_format)
        assert (sheet.width, sheet.height) == (1200, 1200)
        assert sheet.spec_version == preview_version(CONTACT_SHEET)
    web = _variant(box, "web", "glb")
    assert (web.mime, web.extension, web.width, web.height) == ("model/gltf-binary", "glb", 0, 0)
    assert web.spec_version == DEFAULT_GLB_SPEC.version


@pytest.mark.parametrize("angle", ANGLES)
def test_each_view_is_not_blank_and_the_model_fills_the_frame(box: Rendition, angle: str) -> None:
    name = "optimized" if angle == "three-quarter" else f"{angle}-optimized"
    image = _rgb(_variant(box, name, "jpeg"))
    mask = _foreground(image)
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    side = image.shape[0]
    spans = ((rows[-1] - rows[0] + 1) / side, (columns[-1] - columns[0] + 1) / side)
    assert 1 - 2 * MARGIN - 0.03 <= max(spans) <= 1 - 2 * MARGIN + 0.02, spans
    assert min(spans) > 0.6, spans
    assert min(rows[0], columns[0], side - 1 - rows[-1], side - 1 - columns[-1]) >= 0.03 * side
    assert mask.mean() > 0.45
    assert image[mask].std() > 10


def test_the_four_angles_differ(box: Rendition) -> None:
    views = [
        _rgb(_variant(box, "tiny" if a == "three-quarter" else f"{a}-tiny", "jpeg")).astype(int)
        for a in ANGLES
    ]
    for first, second in itertools.combinations(views, 2):
        assert np.abs(first - second).mean() > 20


def test_the_texture_colours_show_on_the_faces_the_camera_sees(box: Rendition) -> None:
    assert _centre_face(_rgb(_variant(box, "front-thumb", "jpeg"))) == "+z"
    assert _centre_face(_rgb(_variant(box, "side-thumb", "jpeg"))) == "+x"
    assert _centre_face(_rgb(_variant(box, "back-thumb", "jpeg"))) == "-z"
    hero = _rgb(_variant(box, "optimized", "jpeg")).reshape(-1, 3).astype(float)
    seen = hero[hero.max(axis=1) - hero.min(axis=1) > 60]  # coloured, not the white frames
    faces = [_nearest_face(colour) for colour in seen[:: max(1, len(seen) // 3000)]]
    shares = {face: faces.count(face) / len(faces) for face in mesh_samples.FACE_COLOURS}
    for visible in ("+z", "+x", "+y"):
        assert shares[visible] > 0.08, shares
    for hidden in ("-x", "-y", "-z"):
        assert shares[hidden] < 0.05, shares


def test_the_contact_sheet_holds_the_four_views(box: Rendition) -> None:
    sheet = _rgb(_variant(box, "contact-sheet", "jpeg"))
    half = sheet.shape[0] // 2
    quadrants = {
        "front": sheet[:half, half:],
        "side": sheet[half:, :half],
        "back": sheet[half:, half:],
    }
    expected = {"front": "+z", "side": "+x", "back": "-z"}
    for angle, quadrant in quadrants.items():
        assert _centre_face(quadrant) == expected[angle]
    hero = sheet[:half, :half]
    assert _foreground(hero).mean() > 0.4


def test_the_placeholder_is_the_hero_s_thumbhash(box: Rendition) -> None:
    assert box.placeholder
    average = np.array(thumbhash_average_rgba(base64.b64decode(box.placeholder))[:3]) * 255
    hero = _rgb(_variant(box, "tiny", "jpeg")).reshape(-1, 3).mean(axis=0)
    assert np.abs(average - hero).max() < 30


def test_the_web_glb_reloads_textured_and_clean(box: Rendition) -> None:
    scene = trimesh.load_scene(
        trimesh.util.wrap_as_stream(_variant(box, "web", "glb").data), file_type="glb"
    )
    (mesh,) = scene.geometry.values()
    assert len(mesh.faces) == 12
    assert mesh.nondegenerate_faces().all()
    assert mesh.unique_faces().all()
    texture = np.asarray(mesh.visual.material.baseColorTexture.convert("RGB"))
    assert {tuple(c) for c in mesh_samples.FACE_COLOURS.values()} <= {
        tuple(c) for c in texture.reshape(-1, 3)
    }


@pytest.fixture(scope="module")
def sphere_subset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Rendition, GlbSpec]:
    path = tmp_path_factory.mktemp("sphere") / "sphere.glb"
    path.write_bytes(mesh_samples.textured_sphere_glb(20_000))
    glb = GlbSpec(face_budget=3000)
    only = {
        glb.variant_id,
        ("front-thumb", "webp", preview_version(SPECS["thumb"])),
        ("contact-sheet", "jpeg", preview_version(CONTACT_SHEET)),
    }
    return _render(path, "glb", glb=glb, only=only), glb


def test_only_makes_just_the_variants_asked_for(sphere_subset: tuple[Rendition, GlbSpec]) -> None:
    rendition, glb = sphere_subset
    assert {(v.name, v.format) for v in rendition.variants} == {
        ("web", "glb"),
        ("front-thumb", "webp"),
        ("contact-sheet", "jpeg"),
    }
    assert _variant(rendition, "web", "glb").spec_version == glb.version
    assert rendition.placeholder
    assert (rendition.width, rendition.height) == (1200, 1200)
    assert 19_000 < rendition.metadata["faces"] <= 20_000


def test_the_web_glb_respects_the_face_budget(sphere_subset: tuple[Rendition, GlbSpec]) -> None:
    rendition, glb = sphere_subset
    data = _variant(rendition, "web", "glb").data
    (mesh,) = trimesh.load_scene(
        trimesh.util.wrap_as_stream(data), file_type="glb"
    ).geometry.values()
    assert glb.face_budget is not None
    assert glb.face_budget * 0.7 < len(mesh.faces) <= glb.face_budget
    assert mesh.nondegenerate_faces().all()
    assert mesh.unique_faces().all()
    assert mesh.visual.material.baseColorTexture is not None


@pytest.fixture(scope="module")
def tall_stl(tmp_path_factory: pytest.TempPathFactory) -> Rendition:
    """A 1 x 1 x 3 box as CAD tools save it: Z up."""
    path = tmp_path_factory.mktemp("stl") / "tall.stl"
    path.write_bytes(bytes(trimesh.creation.box(extents=(1, 1, 3)).export(file_type="stl")))
    only = {("thumb", "jpeg", preview_version(SPECS["thumb"])), DEFAULT_GLB_SPEC.variant_id}
    return _render(path, "stl", only=only)


def test_a_z_up_stl_is_stood_upright(tall_stl: Rendition) -> None:
    assert tall_stl.metadata["size"] == [1.0, 1.0, 3.0]
    glb = _variant(tall_stl, "web", "glb").data
    scene = trimesh.load_scene(trimesh.util.wrap_as_stream(glb), file_type="glb")
    assert np.allclose(scene.extents, (1, 3, 1))
    mask = _foreground(_rgb(_variant(tall_stl, "thumb", "jpeg")))
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    assert rows[-1] - rows[0] > 1.5 * (columns[-1] - columns[0])


def test_an_untextured_model_is_a_neutral_grey(tall_stl: Rendition) -> None:
    image = _rgb(_variant(tall_stl, "thumb", "jpeg")).astype(int)
    model = image[_foreground(image.astype(np.uint8))]
    assert (model.max(axis=1) - model.min(axis=1)).mean() < 15
    assert 60 < model.mean() < 235


def test_vertex_colours_show_in_the_previews_and_the_glb(tmp_path: Path) -> None:
    path = tmp_path / "cube.ply"
    path.write_bytes(mesh_samples.vertex_coloured_ply())
    only = {("tiny", "jpeg", preview_version(SPECS["tiny"])), DEFAULT_GLB_SPEC.variant_id}
    rendition = _render(path, "ply", only=only)
    assert {v.variant_id for v in rendition.variants} == only
    assert rendition.placeholder
    assert rendition.metadata["vertex_colors"] is True
    image = _rgb(_variant(rendition, "tiny", "jpeg")).astype(int)
    model = image[_foreground(image.astype(np.uint8))]
    assert ((model.max(axis=1) - model.min(axis=1)) > 100).mean() > 0.3
    glb = _variant(rendition, "web", "glb").data
    (mesh,) = trimesh.load_scene(
        trimesh.util.wrap_as_stream(glb), file_type="glb"
    ).geometry.values()
    assert mesh.visual.kind == "vertex"


def test_no_byte_of_a_referenced_file_reaches_any_output(tmp_path: Path) -> None:
    secret = tmp_path / "secret.mtl"
    secret.write_bytes(b"newmtl secret\nKd 1 0 0\n# " + SENTINEL + b"\n")
    path = tmp_path / "model.obj"
    path.write_bytes(mesh_samples.obj_with_mtllib(str(secret)) + b"# " + b"x" * 10 + b"\n")
    only = {("thumb", "jpeg", preview_version(SPECS["thumb"])), DEFAULT_GLB_SPEC.variant_id}
    rendition = _render(path, "obj", only=only)
    assert rendition.metadata["materials"] == 0
    for variant in rendition.variants:
        assert SENTINEL not in variant.data
        assert b"secret" not in variant.data
    image = _rgb(_variant(rendition, "thumb", "jpeg")).astype(int)
    model = image[_foreground(image.astype(np.uint8))]
    assert (model[:, 0] - model[:, 1]).mean() < 15
