"""Parse, check, describe, optimise and render 3D models (GLB, glTF, OBJ, STL, PLY).

Malformed meshes crash, hang or balloon parsers, and geometry that passes every check can
still crash or balloon VTK or the simplifier. So one sandboxed process (``run_isolated``)
does all the work that touches the upload or geometry derived from it: header checks,
parse, geometry checks, facts, cleaning, the GLB, and the four offscreen views. One child
pays the process start-up and the parse once. The parent gets back facts, GLB bytes and
plain RGB pixels, and makes the image variants with ``render_image`` like any picture.

``load_model`` checks in three passes, cheapest first: what the headers declare
(``mesh_headers``), the parse with a resolver that refuses every file but the upload, then
the parsed geometry itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from io import BytesIO
from pathlib import Path
from typing import Any, Final

import fast_simplification
import numpy as np
import numpy.typing as npt
import pyvips
import trimesh
from PIL import Image
from trimesh.visual import ColorVisuals, TextureVisuals
from trimesh.visual.material import PBRMaterial, SimpleMaterial

from mediamill.media.errors import ValidationError
from mediamill.media.images import ImageRendition, render_image
from mediamill.media.limits import ImageLimits, check_file_size
from mediamill.media.mesh_headers import TEXTURE_FORMATS, check_counts, check_headers, fail
from mediamill.media.mesh_render import render_views
from mediamill.media.mesh_specs import (
    ANGLES,
    CONTACT_SHEET,
    DEFAULT_GLB_SPEC,
    HERO,
    SHEET_GUTTER,
    SUPERSAMPLE,
    GlbSpec,
    MeshLimits,
    preview_version,
    variant_name,
)
from mediamill.media.rendition import RenderedVariant, Rendition, VariantId, wanted
from mediamill.media.sandbox import run_isolated
from mediamill.media.sniff import MODEL_FORMATS
from mediamill.media.specs import VariantSpec

Z_UP_FORMATS: Final = frozenset({"stl"})
"""Formats whose files are Z-up by convention (CAD, 3D printing); the rest are Y-up like glTF."""

CREASE_DEGREES: Final = 30.0
"""Edges sharper than this stay hard in the web GLB; bump MESH_RENDERER_VERSION on change."""

GLB_MIME: Final = "model/gltf-binary"
GLB_ENCODER: Final = f"trimesh {trimesh.__version__}"
MAX_PREVIEW_SIDE: Final = 2048


@dataclass(frozen=True)
class MeshInfo:
    """Facts about a model as uploaded, with duplicate vertex positions merged.

    ``vertices`` counts distinct positions, so a cube has 8 however its file splits them
    for normals or texture seams; ``bounds`` and ``size`` are in the file's own units and
    axes. Counts include every instance of a mesh the scene draws more than once.
    """

    format: str
    vertices: int
    faces: int
    meshes: int
    materials: int
    textures: int
    vertex_colors: bool
    bounds: tuple[tuple[float, float, float], tuple[float, float, float]]
    size: tuple[float, float, float]
    watertight: bool
    degenerate_faces: int

    def to_metadata(self) -> dict[str, Any]:
        """JSON-ready facts for the catalog (tuples become lists)."""
        return {
            "format": self.format,
            "vertices": self.vertices,
            "faces": self.faces,
            "meshes": self.meshes,
            "materials": self.materials,
            "textures": self.textures,
            "vertex_colors": self.vertex_colors,
            "bounds": [list(self.bounds[0]), list(self.bounds[1])],
            "size": list(self.size),
            "watertight": self.watertight,
            "degenerate_faces": self.degenerate_faces,
        }


@dataclass(frozen=True)
class Instance:
    """One drawn copy of a mesh: where the scene puts it and the geometry it shares."""

    transform: npt.NDArray[np.float64]
    name: str
    mesh: trimesh.Trimesh


@dataclass(frozen=True)
class _Job:
    """What the sandboxed process hands back: facts, the GLB, and the views' RGB pixels."""

    info: MeshInfo
    glb: bytes | None
    views: dict[str, npt.NDArray[np.uint8]]


def render_model(
    path: Path,
    model_format: str,
    image_specs: Sequence[VariantSpec],
    image_limits: ImageLimits,
    limits: MeshLimits,
    *,
    glb: GlbSpec = DEFAULT_GLB_SPEC,
    only: Collection[VariantId] | None = None,
) -> Rendition:
    """Check, describe and render a model: four previews, a contact sheet and a web GLB.

    ``model_format`` is the sniffed one. ``only`` limits the outputs to those variant ids
    (see ``mesh_specs.planned_model_variants``); the hero view is rendered regardless, for
    the placeholder and the rendition's size.
    """
    if len({spec.name for spec in image_specs}) != len(image_specs):
        raise ValueError("variant spec names must be unique")
    check_upload(path, model_format, limits)
    sheet = _sheet_ids(only)
    angles = tuple(
        angle
        for angle in ANGLES
        if angle == HERO or sheet != set() or _image_ids(angle, image_specs, only) != set()
    )
    side = min(MAX_PREVIEW_SIDE, max(max(spec.width, spec.height) for spec in image_specs))
    drawn_side = math.ceil(side * SUPERSAMPLE)
    job = run_isolated(
        _render_sandboxed,
        str(path),
        model_format,
        limits,
        glb if wanted(glb.variant_id, only) else None,
        angles,
        drawn_side,
        limits=limits.sandbox,
        what=_what(model_format),
    )
    hero = _previews(HERO, job.views[HERO], image_specs, image_limits, only)
    variants = list(hero.variants)
    for angle in angles[1:]:
        variants += _previews(angle, job.views[angle], image_specs, image_limits, only).variants
    if sheet != set():
        variants += _contact_sheet(job.views, image_limits, sheet)
    if job.glb is not None:
        variants.append(_glb_variant(job.glb, glb))
    return Rendition(
        kind="model",
        format=model_format,
        width=side,
        height=side,
        variants=tuple(variants),
        placeholder=hero.placeholder,
        has_alpha=False,
        metadata=job.info.to_metadata(),
    )


def _render_sandboxed(
    path: str,
    model_format: str,
    limits: MeshLimits,
    glb: GlbSpec | None,
    angles: tuple[str, ...],
    side: int,
) -> _Job:
    """Runs in the sandbox: check and parse, describe, clean, export, render."""
    scene = load_model(Path(path).read_bytes(), model_format, limits)
    info = describe(scene, model_format, limits)
    to_y_up(scene, model_format)
    clean(scene)
    data = optimised_glb(scene, glb) if glb is not None else None
    parts = [(instance.transform, instance.mesh) for instance in instances(scene)]
    return _Job(info=info, glb=data, views=render_views(parts, angles, side))


def _image_ids(
    angle: str, specs: Sequence[VariantSpec], only: Collection[VariantId] | None
) -> set[VariantId] | None:
    """``only`` for one view, in the terms ``render_image`` filters by (the image specs' ids)."""
    if only is None:
        return None
    return {
        (spec.name, output.format, spec.version)
        for spec in specs
        for output in spec.outputs(False)
        if (variant_name(angle, spec), output.format, preview_version(spec)) in only
    }


def _sheet_ids(only: Collection[VariantId] | None) -> set[VariantId] | None:
    """``only`` for the contact sheet, in ``render_image`` terms; None means all of it."""
    return _image_ids(HERO, (CONTACT_SHEET,), only)


def _previews(
    angle: str,
    pixels: npt.NDArray[np.uint8],
    specs: Sequence[VariantSpec],
    image_limits: ImageLimits,
    only: Collection[VariantId] | None,
) -> ImageRendition:
    """One view through the image specs, renamed and re-versioned as a model preview."""
    rendered = render_image(_png(pixels), specs, image_limits, only=_image_ids(angle, specs, only))
    by_name = {spec.name: spec for spec in specs}
    return replace(
        rendered,
        variants=tuple(
            replace(
                variant,
                name=variant_name(angle, by_name[variant.name]),
                spec_version=preview_version(by_name[variant.name]),
            )
            for variant in rendered.variants
        ),
    )


def _contact_sheet(
    views: dict[str, npt.NDArray[np.uint8]],
    image_limits: ImageLimits,
    sheet: set[VariantId] | None,
) -> tuple[RenderedVariant, ...]:
    """The four views in a 2x2 grid with thin gutters, through ``CONTACT_SHEET``."""
    cell = max(CONTACT_SHEET.width, CONTACT_SHEET.height) // 2
    tiles = [
        pyvips.Image.new_from_array(views[angle], interpretation="srgb").thumbnail_image(cell)
        for angle in ANGLES
    ]
    grid = pyvips.Image.arrayjoin(tiles, across=2, shim=cell // 100, background=SHEET_GUTTER)
    rendered = render_image(_png(grid), (CONTACT_SHEET,), image_limits, only=sheet)
    version = preview_version(CONTACT_SHEET)
    return tuple(replace(variant, spec_version=version) for variant in rendered.variants)


def _png(pixels: npt.NDArray[np.uint8] | pyvips.Image) -> bytes:
    """Our own render, losslessly and quickly encoded for ``render_image``."""
    image = (
        pixels
        if isinstance(pixels, pyvips.Image)
        else pyvips.Image.new_from_array(np.ascontiguousarray(pixels), interpretation="srgb")
    )
    return bytes(image.pngsave_buffer(compression=1))


def _glb_variant(data: bytes, spec: GlbSpec) -> RenderedVariant:
    return RenderedVariant(
        name=spec.name,
        format="glb",
        mime=GLB_MIME,
        width=0,
        height=0,
        data=data,
        spec_version=spec.version,
        encoder=GLB_ENCODER,
        extension="glb",
    )


def probe_model(path: Path, model_format: str, limits: MeshLimits) -> MeshInfo:
    """Validate a model and read its facts in a sandboxed process; nothing is rendered."""
    check_upload(path, model_format, limits)
    return run_isolated(
        _probe, str(path), model_format, limits, limits=limits.sandbox, what=_what(model_format)
    )


def _probe(path: str, model_format: str, limits: MeshLimits) -> MeshInfo:
    scene = load_model(Path(path).read_bytes(), model_format, limits)
    return describe(scene, model_format, limits)


def check_upload(path: Path, model_format: str, limits: MeshLimits) -> None:
    """The checks that need no parse: a model format we read, under the byte cap."""
    if model_format not in MODEL_FORMATS:
        raise ValidationError(
            "unsupported_type",
            f"{model_format!r} is not a model format; models must be "
            + ", ".join(sorted(f.upper() for f in MODEL_FORMATS)),
        )
    check_file_size(path, limits.max_bytes, "model")


def _what(model_format: str) -> str:
    return f"the {model_format.upper()} model"


def load_model(data: bytes, model_format: str, limits: MeshLimits) -> trimesh.Scene:
    """Check the headers, parse, and check the geometry; call it only inside a sandbox."""
    if len(data) > limits.max_bytes:
        raise ValidationError(
            "too_large", f"the model is {len(data)} bytes, over the {limits.max_bytes}-byte cap"
        )
    check_headers(data, model_format, limits)
    scene = _parse(data, model_format)
    _check_geometry(scene, model_format, limits)
    return scene


def instances(scene: trimesh.Scene) -> list[Instance]:
    """Every drawn triangle mesh of the scene, with its world transform."""
    found = []
    for node in scene.graph.nodes_geometry:
        transform, name = scene.graph[node]
        mesh = scene.geometry.get(name)
        if isinstance(mesh, trimesh.Trimesh) and len(mesh.faces):
            found.append(Instance(np.asarray(transform, dtype=np.float64), str(name), mesh))
    return found


def describe(scene: trimesh.Scene, model_format: str, limits: MeshLimits) -> MeshInfo:
    """The facts of a checked scene; ``too_many_faces`` if its distinct vertices exceed the cap."""
    drawn = instances(scene)
    shapes = {}
    for name, mesh in {i.name: i.mesh for i in drawn}.items():
        positions = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
        positions.merge_vertices(merge_tex=True, merge_norm=True)
        degenerate = int(np.count_nonzero(~positions.nondegenerate_faces()))
        shapes[name] = (len(positions.vertices), degenerate, bool(positions.is_watertight))
    vertices = sum(shapes[i.name][0] for i in drawn)
    if vertices > limits.max_vertices:
        raise ValidationError(
            "too_many_faces",
            f"the model has {vertices} vertices, over the {limits.max_vertices}-vertex cap",
        )
    low, high = _bounds(drawn)
    materials, textures = _materials(i.mesh for i in drawn)
    return MeshInfo(
        format=model_format,
        vertices=vertices,
        faces=sum(len(i.mesh.faces) for i in drawn),
        meshes=len(drawn),
        materials=len(materials),
        textures=len(textures),
        vertex_colors=any(_kind(i.mesh) in ("vertex", "face") for i in drawn),
        bounds=(_triple(low), _triple(high)),
        size=_triple(high - low),
        watertight=all(shapes[i.name][2] for i in drawn),
        degenerate_faces=sum(shapes[i.name][1] for i in drawn),
    )


def _kind(mesh: trimesh.Trimesh) -> str | None:
    """How the mesh is coloured: "texture", "vertex", "face" or None."""
    kind = getattr(mesh.visual, "kind", None)
    return kind if isinstance(kind, str) else None


def _triple(values: npt.NDArray[np.float64]) -> tuple[float, float, float]:
    return (float(values[0]), float(values[1]), float(values[2]))


def _bounds(
    drawn: list[Instance],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    corners = []
    for instance in drawn:
        points = trimesh.transform_points(instance.mesh.vertices, instance.transform)
        corners += [points.min(axis=0), points.max(axis=0)]
    stacked = np.array(corners)
    return stacked.min(axis=0), stacked.max(axis=0)


def _materials(meshes: Iterator[trimesh.Trimesh]) -> tuple[set[int], set[int]]:
    """Distinct materials and textures of the upload (trimesh shares them between meshes)."""
    materials: set[int] = set()
    textures: set[int] = set()
    for mesh in meshes:
        material = getattr(mesh.visual, "material", None)
        if _from_upload(material):
            materials.add(id(material))
            textures.update(id(image) for image in _images(material).values())
    return materials, textures


def _from_upload(material: Any) -> bool:
    """A glTF material, or one with a texture; not the stand-in trimesh gives bare UVs."""
    return isinstance(material, PBRMaterial) or bool(_images(material))


def _images(material: Any) -> dict[str, Image.Image]:
    """The texture images a material read from the upload, by attribute name.

    Images Pillow decoded from bytes carry a ``format``; trimesh's own stand-ins do not.
    """
    names = ("image",) if isinstance(material, SimpleMaterial) else _PBR_TEXTURES
    if not isinstance(material, SimpleMaterial | PBRMaterial):
        return {}
    return {
        name: image
        for name in names
        if isinstance(image := getattr(material, name, None), Image.Image) and image.format
    }


_PBR_TEXTURES: Final = (
    "baseColorTexture",
    "metallicRoughnessTexture",
    "normalTexture",
    "occlusionTexture",
    "emissiveTexture",
)


def to_y_up(scene: trimesh.Scene, model_format: str) -> None:
    """Turn a Z-up format upright for glTF's Y-up (front towards +Z), in place."""
    if model_format not in Z_UP_FORMATS:
        return
    rotation = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1]], dtype=float)
    for mesh in scene.geometry.values():
        mesh.apply_transform(rotation)


def clean(scene: trimesh.Scene) -> None:
    """Merge duplicate vertices (keeping texture seams), drop degenerate and duplicate faces.

    ``no_geometry`` if no face is left: a model of slivers and points has nothing to show.
    """
    for mesh in {id(i.mesh): i.mesh for i in instances(scene)}.values():
        mesh.merge_vertices()
        mesh.update_faces(mesh.nondegenerate_faces())
        mesh.update_faces(mesh.unique_faces())
        mesh.remove_unreferenced_vertices()
    if not instances(scene):
        fail("no_geometry", "every face of the model is degenerate")


# The parse: trimesh, with every outside reference refused.


class _NoFiles(Mapping[str, bytes]):
    """A trimesh resolver that opens nothing: every asset lookup is refused."""

    def __getitem__(self, key: str) -> bytes:
        raise ValidationError("unsafe_media", f"the model refers to {key[:80]!r}, outside it")

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _parse(data: bytes, model_format: str) -> trimesh.Scene:
    """trimesh on the bytes alone (no path, so it builds no file resolver of its own)."""
    options: dict[str, Any] = {"process": False}
    if model_format in ("obj", "ply"):
        options["skip_materials"] = True  # their materials and textures live in other files
    try:
        return trimesh.load_scene(
            BytesIO(data), file_type=model_format, resolver=_NoFiles(), **options
        )
    except (ValidationError, MemoryError):
        raise
    except Exception as error:  # any parser failure on hostile bytes means corrupt input
        raise ValidationError(
            "corrupt", f"the {model_format.upper()} data cannot be parsed: {error}"
        ) from error


def _check_geometry(scene: trimesh.Scene, model_format: str, limits: MeshLimits) -> None:
    """What the parser built: triangles exist, indices in range, finite, in bounds, under caps."""
    drawn = instances(scene)
    if not drawn:
        fail("no_geometry", f"the {model_format.upper()} model has no triangles to draw")
    for mesh in {id(i.mesh): i.mesh for i in drawn}.values():
        faces = np.asarray(mesh.faces)
        if faces.min() < 0 or faces.max() >= len(mesh.vertices):
            fail("corrupt", "a face refers to a vertex that does not exist")
        if not np.isfinite(mesh.vertices).all():
            fail("no_geometry", "the model has coordinates that are not finite numbers")
    if not all(np.isfinite(i.transform).all() for i in drawn):
        fail("no_geometry", "the model places a mesh with a transform that is not finite")
    faces_total = sum(len(i.mesh.faces) for i in drawn)
    vertices_total = None if model_format == "stl" else sum(len(i.mesh.vertices) for i in drawn)
    check_counts(vertices_total, faces_total, limits, "the parsed model")
    low, high = _bounds(drawn)
    reach = float(np.abs(np.concatenate([low, high])).max())
    if not np.isfinite(reach) or reach > limits.max_coordinate:
        fail(
            "corrupt",
            f"the model reaches {reach:g} units from the origin, past the "
            f"{limits.max_coordinate:g} sane bound",
        )
    if not (high - low).any():
        fail("no_geometry", "every vertex of the model is at one point")
    _decode_textures(drawn, limits)


def _decode_textures(drawn: list[Instance], limits: MeshLimits) -> None:
    """Decode every texture now, so a corrupt one fails here as ``corrupt``."""
    images = {}
    for instance in drawn:
        material = getattr(instance.mesh.visual, "material", None)
        for image in _images(material).values():
            images[id(image)] = image
    pixels = sum(image.width * image.height for image in images.values())
    if pixels > limits.max_texture_pixels:
        fail(
            "too_many_pixels",
            f"the textures hold {pixels} pixels, over the {limits.max_texture_pixels} cap",
        )
    for image in images.values():
        if (image.format or "").lower() not in TEXTURE_FORMATS:
            fail("unsupported_type", "a texture is not PNG, JPEG or WebP")
        try:
            image.load()
        except (OSError, ValueError, SyntaxError) as error:
            fail("corrupt", f"a texture cannot be decoded: {error}")


# The optimised GLB: rebuilt from the cleaned scene, so nothing of the upload's JSON (names,
# extras, extensions, unknown chunks) reaches it, and every texture is re-encoded.


def optimised_glb(scene: trimesh.Scene, spec: GlbSpec) -> bytes:
    """A web GLB of a cleaned, upright scene: within ``spec.face_budget``, materials kept.

    Every mesh is decimated by the same ratio (its texture coordinates and vertex colours
    follow the collapses), retried tighter if the simplifier stops short of the budget; a
    scene of thousands of tiny parts that cannot shrink further may stay above it.
    """
    drawn = instances(scene)
    total = sum(len(i.mesh.faces) for i in drawn)
    budget = spec.face_budget
    ratio = 1.0 if budget is None or total <= budget else budget / total
    reduced = _reduce_all(drawn, ratio)
    for _ in range(3):
        made = sum(len(reduced[i.name].faces) for i in drawn)
        if budget is None or made <= budget:
            break
        ratio *= budget / made * 0.98
        reduced = _reduce_all(drawn, ratio)
    output = trimesh.Scene()
    names: dict[str, str] = {}
    materials: dict[int, PBRMaterial] = {}
    images: dict[int, Image.Image] = {}
    for number, instance in enumerate(drawn):
        node = f"node{number}"
        if instance.name in names:
            output.graph.update(  # type: ignore[no-untyped-call]
                frame_to=node,
                frame_from=output.graph.base_frame,
                matrix=instance.transform,
                geometry=names[instance.name],
            )
            continue
        names[instance.name] = f"mesh{len(names)}"
        mesh = _shaded(reduced[instance.name])
        mesh.visual = _fresh_visual(mesh.visual, materials, images, spec.max_texture_side)
        output.add_geometry(
            mesh, node_name=node, geom_name=names[instance.name], transform=instance.transform
        )
    exported = output.export(file_type="glb", include_normals=True)  # type: ignore[no-untyped-call]
    return bytes(exported)


def _shaded(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """The mesh split along edges sharper than ``CREASE_DEGREES``.

    Exported vertex normals then shade curved surfaces smooth and keep hard edges hard in
    any viewer; without normals, glTF viewers must shade every triangle flat.
    """
    shaded: trimesh.Trimesh = trimesh.graph.smooth_shade(mesh, angle=math.radians(CREASE_DEGREES))
    shaded.metadata.clear()  # it records its face groups there, which would become extras
    return shaded


def _reduce_all(drawn: list[Instance], ratio: float) -> dict[str, trimesh.Trimesh]:
    shared = {i.name: i.mesh for i in drawn}
    return {name: _reduced(mesh, ratio) for name, mesh in shared.items()}


def _reduced(mesh: trimesh.Trimesh, ratio: float) -> trimesh.Trimesh:
    """A fresh copy with about ``ratio`` of the faces; per-vertex UVs and colours follow."""
    target = max(4, int(len(mesh.faces) * ratio))
    if target >= len(mesh.faces):
        return trimesh.Trimesh(
            mesh.vertices.copy(),
            mesh.faces.copy(),
            visual=_carried(mesh.visual, None, len(mesh.faces)),
            process=False,
        )
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    _, _, collapses = fast_simplification.simplify(
        vertices, faces, target_count=target, return_collapses=True
    )
    points, triangles, mapping = fast_simplification.replay_simplification(
        vertices, faces, collapses
    )
    survivors = np.setdiff1d(np.arange(len(vertices)), np.asarray(collapses)[:, 1])
    survivors = survivors[mapping[survivors] >= 0]

    def follow(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        moved = np.zeros((len(points), *values.shape[1:]), dtype=values.dtype)
        moved[mapping[survivors]] = values[survivors]
        return moved

    visual = _carried(mesh.visual, follow, len(triangles))
    return trimesh.Trimesh(points, triangles, visual=visual, process=False)


def _carried(
    visual: Any, follow: Callable[[npt.NDArray[Any]], npt.NDArray[Any]] | None, faces: int
) -> Any:
    """The colours of a copied mesh: UVs and vertex colours ``follow`` the surviving
    vertices, the material stays shared; face colours of a decimated mesh become their mean.
    """
    keep = follow or (lambda values: values.copy())
    if isinstance(visual, TextureVisuals):
        uv = None if visual.uv is None else keep(np.asarray(visual.uv))
        return TextureVisuals(uv=uv, material=visual.material)  # type: ignore[no-untyped-call]
    if isinstance(visual, ColorVisuals) and visual.kind == "vertex":
        return ColorVisuals(vertex_colors=keep(np.asarray(visual.vertex_colors)))
    if isinstance(visual, ColorVisuals) and visual.kind == "face":
        colours = np.asarray(visual.face_colors)
        if follow is not None:
            colours = np.tile(colours.mean(axis=0).astype(np.uint8), (faces, 1))
        return ColorVisuals(face_colors=colours.copy())
    return None


def _fresh_visual(
    visual: Any,
    materials: dict[int, PBRMaterial],
    images: dict[int, Image.Image],
    max_side: int,
) -> Any:
    """The same colours with a renamed material copy and re-encoded textures."""
    material = getattr(visual, "material", None)
    if material is None:
        return visual
    if not _from_upload(material):
        return ColorVisuals()
    if id(material) not in materials:
        pbr = _as_pbr(material)
        pbr.name = f"material{len(materials)}"
        for name, image in _images(pbr).items():
            if id(image) not in images:
                images[id(image)] = _fresh_image(image, max_side)
            setattr(pbr, name, images[id(image)])
        materials[id(material)] = pbr
    return TextureVisuals(  # type: ignore[no-untyped-call]
        uv=getattr(visual, "uv", None), material=materials[id(material)]
    )


def _as_pbr(material: Any) -> PBRMaterial:
    """A copy of the material as glTF PBR (OBJ-style materials are converted)."""
    if isinstance(material, SimpleMaterial):
        converted: PBRMaterial = material.to_pbr()  # type: ignore[no-untyped-call]
        return converted
    copied: PBRMaterial = material.copy()
    return copied


def _fresh_image(image: Image.Image, max_side: int) -> Image.Image:
    """Pixels only (no metadata or ICC), at most ``max_side``; JPEG stays JPEG, else PNG."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    fresh = Image.fromarray(np.asarray(image.convert("RGBA" if has_alpha else "RGB")))
    if max(fresh.size) > max_side:
        fresh.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    if image.format == "JPEG" and not has_alpha:
        fresh.format = "JPEG"
    return fresh
