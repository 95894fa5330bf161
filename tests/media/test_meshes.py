"""Models are checked, parsed and described in a sandbox; hostile ones fail with a specific code.

THREATS.md, malformed 3D: a GLB with no POSITION, a bad byteStride, a byteLength past the
file end; OBJ face index -1 or 10^9; a 50M-face mesh; plus references to files outside the
upload, non-finite coordinates and empty models. Most checks run in-process through
``load_model`` (fast); the threat rows also run through ``render_model``'s sandbox.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import trimesh

from mediamill.media import mesh_samples, samples
from mediamill.media.errors import ValidationError
from mediamill.media.limits import ImageLimits
from mediamill.media.mesh_specs import (
    DEFAULT_GLB_SPEC,
    GlbSpec,
    MeshLimits,
    planned_model_variants,
)
from mediamill.media.meshes import (
    clean,
    describe,
    load_model,
    optimised_glb,
    probe_model,
    render_model,
)
from mediamill.media.sandbox import MIB
from mediamill.media.specs import DEFAULT_IMAGE_SPECS

LIMITS = MeshLimits()
QUICK = MeshLimits(seconds=30)
SENTINEL = b"MEDIAMILL-SENTINEL-3a9f0c"


@dataclass(frozen=True)
class Hostile:
    make: Callable[[], bytes]
    model_format: str
    code: str


HOSTILE: dict[str, Hostile] = {
    "glb without POSITION": Hostile(mesh_samples.glb_without_position, "glb", "no_geometry"),
    "glb byteStride below a vertex": Hostile(mesh_samples.glb_bad_stride, "glb", "corrupt"),
    "glb byteStride over 252": Hostile(lambda: mesh_samples.glb_bad_stride(1000), "glb", "corrupt"),
    "glb byteLength past the end": Hostile(mesh_samples.glb_view_past_end, "glb", "corrupt"),
    "glb cut short": Hostile(lambda: mesh_samples.textured_box_glb()[:-200], "glb", "corrupt"),
    "glb claiming 50M faces": Hostile(mesh_samples.glb_claiming, "glb", "too_many_faces"),
    "glb node cycle": Hostile(mesh_samples.glb_node_cycle, "glb", "corrupt"),
    "glb requiring Draco": Hostile(mesh_samples.glb_requiring, "glb", "unsupported_type"),
    "glb texture bomb": Hostile(
        lambda: mesh_samples.glb_with_texture(mesh_samples.png_header(40_000, 40_000)),
        "glb",
        "too_many_pixels",
    ),
    "glb texture that is HTML": Hostile(
        lambda: mesh_samples.glb_with_texture(samples.html_as_jpg()), "glb", "unsupported_type"
    ),
    "glb texture that is FITS": Hostile(
        lambda: mesh_samples.glb_with_texture(samples.fits()), "glb", "unsupported_type"
    ),
    "glb texture PNG cut short": Hostile(
        lambda: mesh_samples.glb_with_texture(samples.alpha_png(64, 64)[:-40]), "glb", "corrupt"
    ),
    "glb texture PNG signature then garbage": Hostile(
        lambda: mesh_samples.glb_with_texture(samples.png_signature_garbage()), "glb", "corrupt"
    ),
    "gltf buffer ../../etc/passwd": Hostile(
        lambda: mesh_samples.gltf_external_buffer("../../etc/passwd"), "gltf", "unsafe_media"
    ),
    "gltf buffer on http": Hostile(
        lambda: mesh_samples.gltf_external_buffer("http://169.254.169.254/latest/meta-data"),
        "gltf",
        "unsafe_media",
    ),
    "gltf image /etc/passwd": Hostile(
        lambda: mesh_samples.gltf_external_image("/etc/passwd"), "gltf", "unsafe_media"
    ),
    "gltf not JSON": Hostile(lambda: b'{"asset": {"version": "2.0"', "gltf", "corrupt"),
    "gltf version 1": Hostile(lambda: b'{"asset": {"version": "1.0"}}', "gltf", "unsupported_type"),
    "obj face index -1": Hostile(lambda: mesh_samples.obj_face_index(-1), "obj", "corrupt"),
    "obj face index 0": Hostile(lambda: mesh_samples.obj_face_index(0), "obj", "corrupt"),
    "obj face index 10^9": Hostile(lambda: mesh_samples.obj_face_index(10**9), "obj", "corrupt"),
    "obj texture index 0": Hostile(lambda: mesh_samples.obj_face_index("3/0"), "obj", "corrupt"),
    "obj NaN": Hostile(lambda: mesh_samples.obj_non_finite("nan"), "obj", "no_geometry"),
    "obj -inf": Hostile(lambda: mesh_samples.obj_non_finite("-inf"), "obj", "no_geometry"),
    "obj 1e30 away": Hostile(mesh_samples.obj_far_away, "obj", "corrupt"),
    "stl claiming 50M faces": Hostile(mesh_samples.stl_claiming, "stl", "too_many_faces"),
    "stl short of its 3 triangles": Hostile(
        lambda: bytes(80) + (3).to_bytes(4, "little") + bytes(20), "stl", "corrupt"
    ),
    "ply claiming 50M faces": Hostile(mesh_samples.ply_claiming, "ply", "too_many_faces"),
    "ply claiming 4M faces, holding 1": Hostile(
        lambda: mesh_samples.ply_claiming(4_000_000), "ply", "corrupt"
    ),
    "ply point cloud": Hostile(
        lambda: mesh_samples.ply_claiming(0).replace(b"element face 0\n", b""), "ply", "no_geometry"
    ),
    **{
        f"empty {model_format}": Hostile(
            lambda model_format=model_format: mesh_samples.empty(model_format),  # type: ignore[misc]
            model_format,
            "no_geometry",
        )
        for model_format in ("glb", "gltf", "obj", "stl", "ply")
    },
}


@pytest.fixture
def upload(tmp_path: Path) -> Callable[[bytes, str], Path]:
    def write(data: bytes, model_format: str) -> Path:
        path = tmp_path / f"upload-{len(list(tmp_path.iterdir()))}.{model_format}"
        path.write_bytes(data)
        return path

    return write


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_models_are_refused_with_a_specific_code(name: str) -> None:
    hostile = HOSTILE[name]
    with pytest.raises(ValidationError) as caught:
        load_model(hostile.make(), hostile.model_format, LIMITS)
    assert caught.value.code == hostile.code, caught.value.message


THREAT_ROWS = [
    "glb without POSITION",
    "glb byteStride below a vertex",
    "glb byteLength past the end",
    "obj face index -1",
    "obj face index 10^9",
    "glb claiming 50M faces",
    "stl claiming 50M faces",
    "ply claiming 50M faces",
]


@pytest.mark.parametrize("name", THREAT_ROWS)
def test_threat_rows_fail_the_same_way_through_the_sandboxed_render(
    name: str, upload: Callable[[bytes, str], Path]
) -> None:
    hostile = HOSTILE[name]
    path = upload(hostile.make(), hostile.model_format)
    with pytest.raises(ValidationError) as caught:
        render_model(path, hostile.model_format, DEFAULT_IMAGE_SPECS, ImageLimits(), QUICK)
    assert caught.value.code == hostile.code, caught.value.message


def test_a_parse_past_the_time_limit_is_killed(upload: Callable[[bytes, str], Path]) -> None:
    """A 300k-triangle STL takes seconds to check; a one-second budget stands in for a hang."""
    path = upload(mesh_samples.random_triangles_stl(300_000), "stl")
    with pytest.raises(ValidationError) as caught:
        probe_model(path, "stl", MeshLimits(seconds=1.0))
    assert caught.value.code == "timed_out"
    assert "STL" in str(caught.value)


def test_a_parse_past_the_memory_limit_is_killed(upload: Callable[[bytes, str], Path]) -> None:
    small = upload(mesh_samples.unit_cube("stl"), "stl")
    assert probe_model(small, "stl", MeshLimits(memory_bytes=300 * MIB)).faces == 12
    big = upload(mesh_samples.random_triangles_stl(1_500_000), "stl")
    with pytest.raises(ValidationError) as caught:
        probe_model(big, "stl", MeshLimits(memory_bytes=300 * MIB))
    assert caught.value.code == "out_of_memory"


@pytest.fixture
def sentinel(tmp_path: Path) -> Path:
    path = tmp_path / "secret.bin"
    path.write_bytes(SENTINEL * 16)
    return path


OUTSIDE_REFERENCES: dict[str, Callable[[str], bytes]] = {
    "buffer": mesh_samples.gltf_external_buffer,
    "image": mesh_samples.gltf_external_image,
    "file: URL": lambda target: mesh_samples.gltf_external_buffer(f"file://{target}"),
}


@pytest.mark.parametrize("reference", OUTSIDE_REFERENCES)
@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_a_gltf_reaching_for_an_outside_file_is_refused(
    reference: str, relative: bool, sentinel: Path, tmp_path: Path
) -> None:
    target = os.path.relpath(sentinel, tmp_path / "a" / "b") if relative else str(sentinel)
    with pytest.raises(ValidationError) as caught:
        load_model(OUTSIDE_REFERENCES[reference](target), "gltf", LIMITS)
    assert caught.value.code == "unsafe_media"
    assert SENTINEL.decode() not in str(caught.value)


def test_a_traversing_gltf_fails_in_the_sandbox_without_reading_the_file(
    sentinel: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "uploads" / "deep"
    folder.mkdir(parents=True)
    path = folder / "model.gltf"
    path.write_bytes(mesh_samples.gltf_external_buffer(os.path.relpath(sentinel, folder)))
    with pytest.raises(ValidationError) as caught:
        render_model(path, "gltf", DEFAULT_IMAGE_SPECS, ImageLimits(), QUICK)
    assert caught.value.code == "unsafe_media"
    assert SENTINEL.decode() not in str(caught.value)


def test_obj_and_ply_references_to_other_files_are_never_opened(tmp_path: Path) -> None:
    """The referenced files are FIFOs: opening one would block the sandbox until its timeout."""
    material, texture = tmp_path / "secret.mtl", tmp_path / "secret.png"
    os.mkfifo(material)
    os.mkfifo(texture)
    limits = MeshLimits(seconds=20)
    obj = tmp_path / "model.obj"
    obj.write_bytes(mesh_samples.obj_with_mtllib(str(material)))
    assert probe_model(obj, "obj", limits).materials == 0
    ply = tmp_path / "model.ply"
    ply.write_bytes(mesh_samples.ply_with_texture_file(str(texture)))
    assert probe_model(ply, "ply", limits).textures == 0


def test_limits_are_checked_before_any_parse(upload: Callable[[bytes, str], Path]) -> None:
    cube = mesh_samples.unit_cube("glb")
    path = upload(cube, "glb")
    with pytest.raises(ValidationError) as caught:
        probe_model(path, "glb", MeshLimits(max_bytes=len(cube) - 1))
    assert caught.value.code == "too_large"
    with pytest.raises(ValidationError) as caught:
        probe_model(upload(b"", "glb"), "glb", LIMITS)
    assert caught.value.code == "empty"
    with pytest.raises(ValidationError) as caught:
        probe_model(path, "fbx", LIMITS)
    assert caught.value.code == "unsupported_type"


@pytest.mark.parametrize("encoding", mesh_samples.CUBE_FORMATS)
def test_a_unit_cube_has_the_same_facts_in_every_format(encoding: str) -> None:
    model_format = encoding.split("_")[0]
    scene = load_model(mesh_samples.unit_cube(encoding), model_format, LIMITS)
    info = describe(scene, model_format, LIMITS)
    assert (info.format, info.vertices, info.faces, info.meshes) == (model_format, 8, 12, 1)
    assert info.watertight
    assert info.degenerate_faces == 0
    assert info.bounds == ((-0.5, -0.5, -0.5), (0.5, 0.5, 0.5))
    assert info.size == (1.0, 1.0, 1.0)
    assert (info.materials, info.textures, info.vertex_colors) == (0, 0, False)


def test_probe_reads_facts_in_a_sandbox_as_json_ready_metadata(
    upload: Callable[[bytes, str], Path],
) -> None:
    info = probe_model(upload(mesh_samples.textured_box_glb(), "glb"), "glb", LIMITS)
    metadata = info.to_metadata()
    assert json.loads(json.dumps(metadata)) == metadata
    assert metadata == {
        "format": "glb",
        "vertices": 8,
        "faces": 12,
        "meshes": 1,
        "materials": 1,
        "textures": 1,
        "vertex_colors": False,
        "bounds": [[-0.5, -0.5, -0.5], [0.5, 0.5, 0.5]],
        "size": [1.0, 1.0, 1.0],
        "watertight": True,
        "degenerate_faces": 0,
    }


def test_coloured_and_defective_models_are_described() -> None:
    coloured = load_model(mesh_samples.vertex_coloured_ply(), "ply", LIMITS)
    assert describe(coloured, "ply", LIMITS).vertex_colors
    defective = load_model(mesh_samples.obj_with_defects(), "obj", LIMITS)
    info = describe(defective, "obj", LIMITS)
    assert (info.vertices, info.faces, info.degenerate_faces) == (4, 4, 1)
    assert not info.watertight
    assert info.size == (1.0, 1.0, 0.0)


def test_instances_count_towards_the_facts_and_the_caps() -> None:
    scene = load_model(mesh_samples.glb_instanced(10), "glb", LIMITS)
    info = describe(scene, "glb", LIMITS)
    assert (info.meshes, info.vertices, info.faces) == (10, 80, 120)
    assert info.bounds == ((-0.5, -0.5, -0.5), (18.5, 0.5, 0.5))
    with pytest.raises(ValidationError) as caught:
        load_model(mesh_samples.glb_instanced(100), "glb", MeshLimits(max_faces=1000))
    assert caught.value.code == "too_many_faces"


def test_extensions_that_only_change_looks_are_accepted() -> None:
    data = mesh_samples.glb_requiring("KHR_materials_unlit")
    assert describe(load_model(data, "glb", LIMITS), "glb", LIMITS).faces == 1


def test_caps_apply_to_what_was_parsed_not_only_to_headers() -> None:
    """An OBJ whose quads triangulate past the cap: its header-free count was under it."""
    quads = b"v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\n" + b"f 1 2 3 4\n" * 600
    with pytest.raises(ValidationError) as caught:
        load_model(quads, "obj", MeshLimits(max_faces=1000))
    assert caught.value.code == "too_many_faces"


def test_a_model_of_slivers_has_nothing_to_show(upload: Callable[[bytes, str], Path]) -> None:
    scene = load_model(mesh_samples.obj_only_slivers(), "obj", LIMITS)
    assert describe(scene, "obj", LIMITS).degenerate_faces == 1
    with pytest.raises(ValidationError) as caught:
        clean(scene)
    assert caught.value.code == "no_geometry"
    path = upload(mesh_samples.obj_only_slivers(), "obj")
    with pytest.raises(ValidationError) as caught:
        render_model(path, "obj", DEFAULT_IMAGE_SPECS, ImageLimits(), QUICK)
    assert caught.value.code == "no_geometry"


def test_samples_are_deterministic() -> None:
    assert mesh_samples.textured_box_glb() == mesh_samples.textured_box_glb()
    assert mesh_samples.textured_sphere_glb(2000) == mesh_samples.textured_sphere_glb(2000)
    with pytest.raises(ValueError, match="unit_cube"):
        mesh_samples.unit_cube("fbx")


def test_cleaning_merges_vertices_and_drops_bad_faces() -> None:
    scene = load_model(mesh_samples.obj_with_defects(), "obj", LIMITS)
    clean(scene)
    (mesh,) = scene.geometry.values()
    assert len(mesh.faces) == 2
    assert mesh.nondegenerate_faces().all()
    assert mesh.unique_faces().all()
    stl = load_model(mesh_samples.unit_cube("stl"), "stl", LIMITS)
    clean(stl)
    (cube,) = stl.geometry.values()
    assert (len(cube.vertices), len(cube.faces)) == (8, 12)


def _reload(data: bytes) -> trimesh.Scene:
    assert data[:4] == b"glTF"
    return trimesh.load_scene(trimesh.util.wrap_as_stream(data), file_type="glb", process=False)


def test_the_optimised_glb_keeps_the_texture_and_drops_the_upload_s_metadata() -> None:
    source = mesh_samples.textured_box_glb()
    scene = load_model(source, "glb", LIMITS)
    clean(scene)
    data = optimised_glb(scene, DEFAULT_GLB_SPEC)
    assert b"trimesh" not in data.split(b"BIN")[0].replace(b"github.com/mikedh/trimesh", b"")
    (mesh,) = _reload(data).geometry.values()
    image = mesh.visual.material.baseColorTexture
    assert image.size == (192, 128)
    colours = {tuple(c) for c in np.asarray(image.convert("RGB")).reshape(-1, 3)}
    assert set(mesh_samples.FACE_COLOURS.values()) <= colours
    assert len(mesh.faces) == 12


def test_the_optimised_glb_meets_the_face_budget_and_carries_uvs() -> None:
    scene = load_model(mesh_samples.textured_sphere_glb(20_000), "glb", LIMITS)
    clean(scene)
    data = optimised_glb(scene, GlbSpec(face_budget=3000))
    (mesh,) = _reload(data).geometry.values()
    assert 2000 < len(mesh.faces) <= 3000
    assert mesh.nondegenerate_faces().all()
    assert mesh.unique_faces().all()
    uv = np.asarray(mesh.visual.uv)
    assert uv.shape == (len(mesh.vertices), 2)
    assert uv.min() >= 0
    assert uv.max() <= 1
    assert uv.std() > 0.2
    assert np.allclose(np.linalg.norm(mesh.vertices, axis=1), 1, atol=0.05)


def test_the_optimised_glb_has_normals_hard_at_creases_and_smooth_elsewhere() -> None:
    cube = load_model(mesh_samples.unit_cube("stl"), "stl", LIMITS)
    clean(cube)
    data = optimised_glb(cube, DEFAULT_GLB_SPEC)
    length = int.from_bytes(data[12:16], "little")
    assert (
        "NORMAL" in json.loads(data[20 : 20 + length])["meshes"][0]["primitives"][0]["attributes"]
    )
    (mesh,) = _reload(data).geometry.values()
    assert len(mesh.vertices) == 24
    assert np.allclose(np.abs(mesh.vertex_normals).max(axis=1), 1)
    sphere = load_model(mesh_samples.textured_sphere_glb(5000), "glb", LIMITS)
    clean(sphere)
    (round_mesh,) = _reload(optimised_glb(sphere, DEFAULT_GLB_SPEC)).geometry.values()
    unit = round_mesh.vertices / np.linalg.norm(round_mesh.vertices, axis=1, keepdims=True)
    assert np.allclose(round_mesh.vertex_normals, unit, atol=0.05)


def test_the_optimised_glb_keeps_instances_and_vertex_colours() -> None:
    scene = load_model(mesh_samples.glb_instanced(3), "glb", LIMITS)
    clean(scene)
    reloaded = _reload(optimised_glb(scene, DEFAULT_GLB_SPEC))
    assert len(reloaded.geometry) == 1
    assert len(reloaded.graph.nodes_geometry) == 3
    coloured = load_model(mesh_samples.vertex_coloured_ply(), "ply", LIMITS)
    clean(coloured)
    (mesh,) = _reload(optimised_glb(coloured, GlbSpec(face_budget=6))).geometry.values()
    assert len(mesh.faces) <= 6
    assert mesh.visual.kind == "vertex"
    assert np.asarray(mesh.visual.vertex_colors)[:, :3].std() > 50


def test_limits_and_glb_specs_are_validated_data() -> None:
    assert MeshLimits(seconds=30, memory_bytes=512 * MIB).sandbox.seconds == 30
    for bad in ({"max_faces": 0}, {"max_vertices": -1}, {"seconds": float("nan")}):
        with pytest.raises(ValueError, match="MeshLimits"):
            MeshLimits(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive int"):
        MeshLimits(max_faces=True)
    with pytest.raises(ValueError, match="name"):
        GlbSpec(name="Web GLB")
    with pytest.raises(ValueError, match="face_budget"):
        GlbSpec(face_budget=2)
    assert DEFAULT_GLB_SPEC.variant_id == ("web", "glb", DEFAULT_GLB_SPEC.version)
    assert GlbSpec(face_budget=1000).version != DEFAULT_GLB_SPEC.version
    assert GlbSpec().version == DEFAULT_GLB_SPEC.version


def test_planned_variants_name_every_angle_the_sheet_and_the_glb() -> None:
    planned = planned_model_variants(DEFAULT_IMAGE_SPECS)
    names = {name for name, _, _ in planned}
    for spec in DEFAULT_IMAGE_SPECS:
        assert {spec.name, f"front-{spec.name}", f"side-{spec.name}", f"back-{spec.name}"} <= names
    assert {("contact-sheet", "jpeg"), ("contact-sheet", "webp"), ("web", "glb")} <= {
        (name, image_format) for name, image_format, _ in planned
    }
    assert len(planned) == 4 * 7 + 2 + 1
    assert DEFAULT_GLB_SPEC.variant_id in planned
    assert planned_model_variants(DEFAULT_IMAGE_SPECS, GlbSpec(face_budget=10)) != planned
