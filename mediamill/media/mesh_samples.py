"""Generated 3D uploads, benign and hostile, for the demo, tests and benchmarks.

Benign models are built with trimesh; hostile ones are assembled by hand so that each
carries exactly the one defect its name promises.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from io import BytesIO
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import trimesh
from PIL import Image
from trimesh.exchange.gltf import export_gltf
from trimesh.exchange.ply import export_ply

FACE_COLOURS: Final[dict[str, tuple[int, int, int]]] = {
    "+x": (220, 40, 40),
    "-x": (40, 200, 200),
    "+y": (40, 180, 60),
    "-y": (200, 40, 200),
    "+z": (40, 70, 220),
    "-z": (235, 200, 30),
}
"""Texture colour of each face of ``textured_box``: glTF is Y-up and its front faces +Z."""

CUBE_FORMATS: Final = ("glb", "gltf", "obj", "stl", "stl_ascii", "ply", "ply_ascii")
"""The encodings ``unit_cube`` can produce."""

_FACES: Final = (
    # name, outward normal, u axis, v axis (u x v = normal, so quads wind outwards)
    ("+x", (1, 0, 0), (0, 0, -1), (0, 1, 0)),
    ("-x", (-1, 0, 0), (0, 0, 1), (0, 1, 0)),
    ("+y", (0, 1, 0), (1, 0, 0), (0, 0, -1)),
    ("-y", (0, -1, 0), (1, 0, 0), (0, 0, 1)),
    ("+z", (0, 0, 1), (1, 0, 0), (0, 1, 0)),
    ("-z", (0, 0, -1), (-1, 0, 0), (0, 1, 0)),
)
_CELL: Final = 64
_QUAD: Final = ((-1, -1), (1, -1), (1, 1), (-1, 1))
_FLOAT: Final = 5126
_UINT32: Final = 5125
_ARRAY_BUFFER: Final = 34962


def textured_box() -> trimesh.Trimesh:
    """A unit cube with UVs into a generated atlas: each face a colour of ``FACE_COLOURS``."""
    vertices: list[npt.NDArray[np.float64]] = []
    faces: list[tuple[int, int, int]] = []
    uvs: list[tuple[float, float]] = []
    for index, (_, normal, u_axis, v_axis) in enumerate(_FACES):
        centre, u, v = (np.array(a, dtype=float) for a in (normal, u_axis, v_axis))
        corners = [centre * 0.5 + u * su * 0.5 + v * sv * 0.5 for su, sv in _QUAD]
        column, row = index % 3, index // 3
        inset = 0.5 / _CELL
        u0, u1 = (column + inset) / 3, (column + 1 - inset) / 3
        v0, v1 = 1 - (row + 1 - inset) / 2, 1 - (row + inset) / 2  # trimesh: v up from the bottom
        base = len(vertices)
        vertices.extend(corners)
        uvs.extend([(u0, v0), (u1, v0), (u1, v1), (u0, v1)])
        faces.extend([(base, base + 1, base + 2), (base, base + 2, base + 3)])
    return textured_mesh(np.array(vertices), np.array(faces), np.array(uvs), _atlas())


def textured_mesh(
    vertices: npt.ArrayLike,
    faces: npt.ArrayLike,
    uv: npt.ArrayLike,
    texture: npt.NDArray[np.uint8],
) -> trimesh.Trimesh:
    """A mesh whose base colour comes from ``texture`` (height, width, 3) through ``uv``."""
    material = trimesh.visual.material.PBRMaterial(  # type: ignore[no-untyped-call]
        name="texture", baseColorTexture=Image.fromarray(texture), roughnessFactor=0.8
    )
    return trimesh.Trimesh(
        vertices=np.asarray(vertices, dtype=np.float64),
        faces=np.asarray(faces, dtype=np.int64),
        visual=trimesh.visual.TextureVisuals(  # type: ignore[no-untyped-call]
            uv=np.asarray(uv, dtype=np.float64), material=material
        ),
        process=False,
    )


def _atlas() -> npt.NDArray[np.uint8]:
    """A 3x2 grid of face colours, each cell with a white inner frame."""
    atlas = np.zeros((2 * _CELL, 3 * _CELL, 3), dtype=np.uint8)
    for index, (name, *_) in enumerate(_FACES):
        column, row = index % 3, index // 3
        cell = atlas[row * _CELL : (row + 1) * _CELL, column * _CELL : (column + 1) * _CELL]
        cell[:] = FACE_COLOURS[name]
        cell[12:-12, 12:16] = cell[12:-12, -16:-12] = 255
        cell[12:16, 12:-12] = cell[-16:-12, 12:-12] = 255
    return atlas


def textured_box_glb() -> bytes:
    """``textured_box`` as a GLB, the format storefront viewers load."""
    return _glb_of(textured_box())


def textured_box_gltf() -> bytes:
    """``textured_box`` as a self-contained glTF: buffers and texture in data: URIs."""
    return _gltf_of(textured_box())


def textured_sphere_glb(faces: int = 20_000) -> bytes:
    """A UV sphere of about ``faces`` triangles with a generated checker texture."""
    rings = max(4, round((faces / 4) ** 0.5))
    segments = 2 * rings
    theta = np.linspace(0, np.pi, rings + 1)
    phi = np.linspace(0, 2 * np.pi, segments + 1)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    vertices = np.stack([np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)], axis=-1)
    uv = np.stack([p / (2 * np.pi), 1 - t / np.pi], axis=-1)
    grid = np.arange((rings + 1) * (segments + 1)).reshape(rings + 1, segments + 1)
    a, b = grid[:-1, :-1].ravel(), grid[:-1, 1:].ravel()
    c, d = grid[1:, :-1].ravel(), grid[1:, 1:].ravel()
    ring = np.repeat(np.arange(rings), segments)
    upper = np.stack([a, c, d], axis=1)[ring < rings - 1]  # c, d are not the south pole
    lower = np.stack([a, d, b], axis=1)[ring > 0]  # a, b are not the north pole
    texture = np.zeros((256, 512, 3), dtype=np.uint8)
    palette = np.array(list(FACE_COLOURS.values()), dtype=np.uint8)
    for row in range(4):
        for column in range(8):
            colour = palette[(row * 3 + column) % len(palette)]
            texture[row * 64 : (row + 1) * 64, column * 64 : (column + 1) * 64] = colour
    mesh = textured_mesh(
        vertices.reshape(-1, 3), np.concatenate([upper, lower]), uv.reshape(-1, 2), texture
    )
    mesh.remove_unreferenced_vertices()
    return _glb_of(mesh)


def vertex_coloured_ply() -> bytes:
    """A unit cube whose eight vertices carry saturated colours, as binary PLY."""
    box = trimesh.creation.box()
    colours = np.array(
        [[255 * (i & 1), 255 * ((i >> 1) & 1), 255 * ((i >> 2) & 1), 255] for i in range(8)],
        dtype=np.uint8,
    )
    colours[0] = (255, 140, 0, 255)
    colours[7] = (120, 0, 255, 255)
    box.visual = trimesh.visual.ColorVisuals(box, vertex_colors=colours)
    return bytes(export_ply(box, encoding="binary"))


def unit_cube(model_format: str) -> bytes:
    """An untextured unit cube centred on the origin, in one of ``CUBE_FORMATS``."""
    box = trimesh.creation.box()
    box.metadata.clear()
    if model_format == "glb":
        return _glb_of(box)
    if model_format == "gltf":
        return _gltf_of(box)
    if model_format == "obj":
        return str(box.export(file_type="obj")).encode()
    if model_format == "stl":
        return bytes(box.export(file_type="stl"))
    if model_format == "stl_ascii":
        return str(box.export(file_type="stl_ascii")).encode()
    if model_format in ("ply", "ply_ascii"):
        encoding = "ascii" if model_format == "ply_ascii" else "binary"
        return bytes(export_ply(box, encoding=encoding))
    raise ValueError(f"unit_cube makes {', '.join(CUBE_FORMATS)}, not {model_format!r}")


def _glb_of(mesh: trimesh.Trimesh) -> bytes:
    return bytes(trimesh.Scene(mesh).export(file_type="glb"))  # type: ignore[no-untyped-call]


def _gltf_of(mesh: trimesh.Trimesh) -> bytes:
    files = export_gltf(trimesh.Scene(mesh), embed_buffers=True)  # type: ignore[no-untyped-call]
    return bytes(files["model.gltf"])


def random_triangles_stl(faces: int, seed: int = 0) -> bytes:
    """A valid binary STL of ``faces`` random triangles: big, cheap to make, costly to load."""
    rng = np.random.default_rng(seed)
    record = np.dtype([("normal", "<f4", 3), ("corners", "<f4", 9), ("attribute", "<u2")])
    body = np.zeros(faces, dtype=record)
    body["corners"] = rng.uniform(-1, 1, (faces, 9)).astype(np.float32)
    return b"\x00" * 80 + struct.pack("<I", faces) + body.tobytes()


# Hand-built glTF: a minimal document around one triangle list, then one defect each.


def gltf_document(vertices: npt.ArrayLike, faces: npt.ArrayLike) -> tuple[dict[str, Any], bytes]:
    """A minimal glTF 2.0 document and its binary buffer: one mesh, one node, one scene."""
    positions = np.asarray(vertices, dtype="<f4").reshape(-1, 3)
    indices = np.asarray(faces, dtype="<u4").reshape(-1)
    position_bytes, index_bytes = positions.tobytes(), indices.tobytes()
    document: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": "mediamill samples"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1}]}],
        "buffers": [{"byteLength": len(position_bytes) + len(index_bytes)}],
        "bufferViews": [
            {
                "buffer": 0,
                "byteOffset": 0,
                "byteLength": len(position_bytes),
                "target": _ARRAY_BUFFER,
            },
            {"buffer": 0, "byteOffset": len(position_bytes), "byteLength": len(index_bytes)},
        ],
        "accessors": [
            {
                "bufferView": 0,
                "componentType": _FLOAT,
                "count": len(positions),
                "type": "VEC3",
                "min": positions.min(axis=0).tolist() if len(positions) else [0, 0, 0],
                "max": positions.max(axis=0).tolist() if len(positions) else [0, 0, 0],
            },
            {"bufferView": 1, "componentType": _UINT32, "count": len(indices), "type": "SCALAR"},
        ],
    }
    return document, position_bytes + index_bytes


def glb(document: dict[str, Any], binary: bytes = b"") -> bytes:
    """Assemble a GLB container from a document and its binary chunk (lengths as given)."""
    text = json.dumps(document).encode()
    text += b" " * (-len(text) % 4)
    chunks = struct.pack("<I4s", len(text), b"JSON") + text
    if binary:
        padded = binary + b"\x00" * (-len(binary) % 4)
        chunks += struct.pack("<I4s", len(padded), b"BIN\x00") + padded
    return struct.pack("<4sII", b"glTF", 2, 12 + len(chunks)) + chunks


def _triangle() -> tuple[dict[str, Any], bytes]:
    return gltf_document([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]])


def glb_without_position() -> bytes:
    """A GLB whose only primitive has a NORMAL attribute but no POSITION."""
    document, binary = _triangle()
    document["meshes"][0]["primitives"][0]["attributes"] = {"NORMAL": 0}
    return glb(document, binary)


def glb_bad_stride(stride: int = 2) -> bytes:
    """A GLB whose vertex bufferView declares a byteStride smaller than one vertex."""
    document, binary = _triangle()
    document["bufferViews"][0]["byteStride"] = stride
    return glb(document, binary)


def glb_view_past_end() -> bytes:
    """A GLB whose bufferView (and buffer) claim far more bytes than the file holds."""
    document, binary = _triangle()
    document["buffers"][0]["byteLength"] = 1 << 30
    document["bufferViews"][1]["byteLength"] = (1 << 30) - 36
    document["accessors"][1]["count"] = 3_000_000
    return glb(document, binary)


def glb_claiming(faces: int = 50_000_000) -> bytes:
    """A small GLB whose index accessor declares ``faces`` triangles."""
    document, binary = _triangle()
    document["accessors"][1]["count"] = faces * 3
    return glb(document, binary)


def glb_requiring(extension: str = "KHR_draco_mesh_compression") -> bytes:
    """A triangle GLB that declares it cannot be read without ``extension``."""
    document, binary = _triangle()
    document["extensionsUsed"] = document["extensionsRequired"] = [extension]
    return glb(document, binary)


def glb_node_cycle() -> bytes:
    """A GLB whose two nodes are each other's child, a loop for any scene-graph walk."""
    document, binary = _triangle()
    document["nodes"] = [{"mesh": 0, "children": [1]}, {"children": [0]}]
    return glb(document, binary)


def glb_instanced(copies: int) -> bytes:
    """A GLB drawing one 12-triangle cube through ``copies`` nodes."""
    box = trimesh.creation.box()
    document, binary = gltf_document(box.vertices, box.faces)
    document["nodes"] = [{"mesh": 0, "translation": [2.0 * i, 0, 0]} for i in range(copies)]
    document["scenes"] = [{"nodes": list(range(copies))}]
    return glb(document, binary)


def glb_with_texture(image: bytes, mime: str = "image/png") -> bytes:
    """A textured triangle GLB whose texture is ``image``, stored in the binary chunk."""
    document, binary = gltf_document([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]])
    uv = np.array([[0, 0], [1, 0], [0, 1]], dtype="<f4").tobytes()
    start = len(binary)
    binary += uv + image
    document["buffers"][0]["byteLength"] = len(binary)
    document["bufferViews"] += [
        {"buffer": 0, "byteOffset": start, "byteLength": len(uv)},
        {"buffer": 0, "byteOffset": start + len(uv), "byteLength": len(image)},
    ]
    document["accessors"].append(
        {"bufferView": 2, "componentType": _FLOAT, "count": 3, "type": "VEC2"}
    )
    primitive = document["meshes"][0]["primitives"][0]
    primitive["attributes"]["TEXCOORD_0"] = 2
    primitive["material"] = 0
    document["materials"] = [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}]
    document["textures"] = [{"source": 0}]
    document["images"] = [{"bufferView": 3, "mimeType": mime}]
    return glb(document, binary)


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` in its header and holds one row of pixels."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * (1 + 3 * min(width, 64)))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def gltf_external_buffer(uri: str) -> bytes:
    """A glTF whose buffer is read from ``uri``: a path or URL outside the upload."""
    document, _ = _triangle()
    document["buffers"][0]["uri"] = uri
    return json.dumps(document).encode()


def gltf_external_image(uri: str) -> bytes:
    """A self-contained textured glTF except that its image is read from ``uri``."""
    document, binary = _triangle()
    document["buffers"][0]["uri"] = _data_uri(binary)
    document["meshes"][0]["primitives"][0]["material"] = 0
    document["materials"] = [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}]
    document["textures"] = [{"source": 0}]
    document["images"] = [{"uri": uri}]
    return json.dumps(document).encode()


def _data_uri(data: bytes) -> str:
    return "data:application/octet-stream;base64," + base64.b64encode(data).decode()


def obj_face_index(index: int | str) -> bytes:
    """A triangle OBJ whose face, written before its three vertices, ends with ``index``.

    -1 counts back from the latest vertex and there is none yet; 0 and 10**9 name no vertex.
    """
    return f"f 1 2 {index}\nv 0 0 0\nv 1 0 0\nv 0 1 0\n".encode()


def obj_with_mtllib(path: str) -> bytes:
    """A triangle OBJ whose material library is ``path``, a file outside the upload."""
    return f"mtllib {path}\nusemtl secret\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n".encode()


def obj_non_finite(value: str = "nan") -> bytes:
    """A triangle OBJ with one coordinate spelled ``value`` (nan, inf, -inf)."""
    return f"v 0 0 0\nv 1 {value} 0\nv 0 1 0\nf 1 2 3\n".encode()


def obj_far_away(coordinate: float = 1e30) -> bytes:
    """A finite triangle OBJ with one vertex at ``coordinate``, past any sane bound."""
    return f"v 0 0 0\nv {coordinate:g} 0 0\nv 0 1 0\nf 1 2 3\n".encode()


def stl_claiming(faces: int = 50_000_000) -> bytes:
    """A one-triangle binary STL whose header counts ``faces`` triangles."""
    body = struct.pack("<12fH", 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0)
    return b"\x00" * 80 + struct.pack("<I", faces) + body


def ply_claiming(faces: int = 50_000_000) -> bytes:
    """An ASCII PLY whose header declares ``faces`` faces and whose body holds one."""
    return (
        b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
        b"property float z\nelement face %d\nproperty list uchar int vertex_indices\n"
        b"end_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n" % faces
    )


def empty(model_format: str) -> bytes:
    """A well-formed file of ``model_format`` that holds no geometry at all."""
    if model_format == "glb":
        return glb({"asset": {"version": "2.0"}, "scenes": [{"nodes": []}], "scene": 0})
    if model_format == "gltf":
        return json.dumps({"asset": {"version": "2.0"}}).encode()
    if model_format == "obj":
        return b"# nothing here\no empty\n"
    if model_format == "stl":
        return b"\x00" * 80 + struct.pack("<I", 0)
    if model_format == "ply":
        return (
            b"ply\nformat ascii 1.0\nelement vertex 0\nproperty float x\nproperty float y\n"
            b"property float z\nelement face 0\nproperty list uchar int vertex_indices\n"
            b"end_header\n"
        )
    raise ValueError(f"no empty sample for {model_format!r}")


def texture_bytes(side: int = 32, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A small one-colour PNG, a well-formed texture for ``glb_with_texture``."""
    buffer = BytesIO()
    Image.new("RGB", (side, side), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def ply_with_texture_file(path: str) -> bytes:
    """A textured ASCII PLY triangle whose texture is the file ``path``, outside the upload."""
    return (
        f"ply\nformat ascii 1.0\ncomment TextureFile {path}\nelement vertex 3\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property float s\nproperty float t\nelement face 1\n"
        "property list uchar int vertex_indices\nend_header\n"
        "0 0 0 0 0\n1 0 0 1 0\n0 1 0 0 1\n3 0 1 2\n"
    ).encode()


def obj_only_slivers() -> bytes:
    """An OBJ whose only triangle has three distinct but collinear corners."""
    return b"v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n"


def obj_with_defects() -> bytes:
    """A unit square of two triangles plus one degenerate and one repeated triangle."""
    return b"v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf 1 2 3\nf 1 3 4\nf 1 1 2\nf 3 1 2\n"
