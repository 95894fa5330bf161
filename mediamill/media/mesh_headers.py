"""Check a model's headers before any parser allocates: declared counts, ranges, references.

A malformed model lies in its headers: a binary STL or PLY claiming 50 million faces, a
glTF accessor reading past its buffer, a byteStride that makes a parser read out of bounds,
a buffer or texture URI naming a file outside the upload, a node graph with a cycle. These
checks read only the headers and the glTF JSON, with our own small code, so trimesh is
handed nothing it would trust blindly. They still run inside the sandbox with the parse.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any, Final, NoReturn

from PIL import Image

from mediamill.media.errors import ValidationCode, ValidationError
from mediamill.media.mesh_specs import MeshLimits
from mediamill.media.sniff import SNIFF_BYTES, sniff

TEXTURE_FORMATS: Final = frozenset({"png", "jpeg", "webp"})
"""Texture encodings a model may embed; anything else is refused before Pillow sees it."""


def check_headers(data: bytes, model_format: str, limits: MeshLimits) -> None:
    """Refuse the model if its headers declare too much, reach outside it or do not add up."""
    check = _CHECKS.get(model_format)
    if check is None:
        fail("unsupported_type", f"{model_format!r} is not a model format we read")
    check(data, limits)


def check_counts(vertices: int | None, faces: int, limits: MeshLimits, source: str) -> None:
    """``too_many_faces`` if ``source`` declares more faces (or vertices) than the caps."""
    if faces > limits.max_faces:
        fail("too_many_faces", f"{source} declares {faces} faces, over the {limits.max_faces} cap")
    if vertices is not None and vertices > limits.max_vertices:
        fail(
            "too_many_faces",
            f"{source} declares {vertices} vertices, over the {limits.max_vertices} cap",
        )


def fail(code: ValidationCode, message: str) -> NoReturn:
    """Raise the ValidationError that refuses the upload."""
    raise ValidationError(code, message)


_STL_HEADER: Final = 84
_STL_TRIANGLE: Final = 50


def _check_stl(data: bytes, limits: MeshLimits) -> None:
    """Binary if the triangle count agrees with the length, else it must be ASCII."""
    declared = int.from_bytes(data[80:84], "little") if len(data) >= _STL_HEADER else None
    if declared is not None and len(data) == _STL_HEADER + _STL_TRIANGLE * declared:
        check_counts(None, declared, limits, "the STL header")
    elif data.lstrip()[:5] == b"solid":
        check_counts(None, data.count(b"endfacet"), limits, "the ASCII STL")
    else:
        # A count over the cap is refused as such even when the body cannot hold it.
        check_counts(None, declared or 0, limits, "the STL header")
        fail("corrupt", "the STL is neither ASCII nor a binary STL of the length its count implies")


_PLY_TYPES: Final = {
    "char": 1,
    "int8": 1,
    "uchar": 1,
    "uint8": 1,
    "short": 2,
    "int16": 2,
    "ushort": 2,
    "uint16": 2,
    "int": 4,
    "int32": 4,
    "uint": 4,
    "uint32": 4,
    "float": 4,
    "float32": 4,
    "double": 8,
    "float64": 8,
}
_PLY_MAX_HEADER: Final = 64 * 1024
_PLY_END: Final = re.compile(rb"end_header[ \t]*\r?\n")
_MAX_COUNT_DIGITS: Final = 18


def _check_ply(data: bytes, limits: MeshLimits) -> None:
    """Element counts against the caps, and the least body those counts need."""
    end = _PLY_END.search(data, 0, _PLY_MAX_HEADER)
    if end is None:
        fail("corrupt", "the PLY header has no end_header in its first 64 KiB")
    lines = data[: end.start()].decode("ascii", "replace").splitlines()
    encoding = ""
    elements: list[tuple[str, int, int, int]] = []  # name, count, ascii bytes, binary bytes
    for line in lines:
        words = line.split()
        if words[:1] == ["format"] and len(words) >= 2:
            encoding = words[1]
        elif words[:1] == ["element"]:
            if len(words) != 3 or not words[2].isdigit():
                fail("corrupt", f"the PLY element {line.strip()[:80]!r} is malformed")
            elements.append((words[1], _ply_count(words[2]), 0, 0))
        elif words[:1] == ["property"] and elements:
            name, count, text, binary = elements[-1]
            elements[-1] = (name, count, *_ply_property_bytes(words, name, text, binary))
    counts = {name: count for name, count, _, _ in elements}
    if "vertex" not in counts or "face" not in counts:
        fail("no_geometry", "the PLY declares no vertex and face elements (a point cloud?)")
    check_counts(counts["vertex"], counts["face"], limits, "the PLY header")
    ascii_body = encoding == "ascii"
    needed = sum(count * (text if ascii_body else binary) for _, count, text, binary in elements)
    body = len(data) - end.end()
    if body < needed:
        fail(
            "corrupt",
            f"the PLY header declares {counts['vertex']} vertices and {counts['face']} faces, "
            f"which need at least {needed} bytes; the file holds {body}",
        )


def _ply_count(digits: str) -> int:
    """A declared element count, clamped because ``int`` refuses over 4300 digits.

    Past 18 digits a count is over every cap and every file's length anyway.
    """
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_COUNT_DIGITS else 10**_MAX_COUNT_DIGITS


def _ply_property_bytes(words: list[str], element: str, text: int, binary: int) -> tuple[int, int]:
    """Grow an element's least row size by one property (a face list holds 3 indices)."""
    if len(words) == 5 and words[1] == "list":
        count_type, item_type = words[2], words[3]
        if count_type not in _PLY_TYPES or item_type not in _PLY_TYPES:
            fail("corrupt", f"the PLY property {' '.join(words)!r} has an unknown type")
        items = 3 if element == "face" else 0  # the least a face list can hold
        list_bytes = _PLY_TYPES[count_type] + items * _PLY_TYPES[item_type]
        return text + 2 * (1 + items), binary + list_bytes
    if len(words) == 3 and words[1] in _PLY_TYPES:
        return text + 2, binary + _PLY_TYPES[words[1]]
    fail("corrupt", f"the PLY property {' '.join(words)!r} is malformed")


_OBJ_ZERO_INDEX: Final = re.compile(rb"(?m)^[ \t]*f[ \t][^\n#]*?(?<![0-9.])-?0+(?![0-9.])")
_OBJ_RELATIVE_FACE: Final = re.compile(rb"(?m)^[ \t]*f[ \t][^\n#]*-[^\n#]*")
_OBJ_VERTEX_LINES: Final = (b"\nv ", b"\nv\t")
_OBJ_BACK_INDEX: Final = re.compile(rb"-[0-9]+")


def _check_obj(data: bytes, limits: MeshLimits) -> None:
    """Lower bounds of the counts, then the indices trimesh would silently wrap or misread.

    OBJ indices start at 1, and a negative one counts back from the latest vertex; trimesh
    maps 0 to the last vertex and counts negatives from the end of the file, so both are
    checked here against the OBJ meaning.
    """
    vertices = sum(data.count(line) for line in _OBJ_VERTEX_LINES) + data.startswith(b"v")
    faces = data.count(b"\nf ") + data.startswith(b"f ")
    check_counts(vertices, faces, limits, "the OBJ")
    if _OBJ_ZERO_INDEX.search(data):
        fail("corrupt", "an OBJ face uses index 0; OBJ indices start at 1")
    seen, counted_to = int(data.startswith(b"v")), 0
    for match in _OBJ_RELATIVE_FACE.finditer(data):
        seen += sum(data.count(line, counted_to, match.start()) for line in _OBJ_VERTEX_LINES)
        counted_to = match.start()
        for corner in match.group().split()[1:]:
            position = corner.split(b"/")[0]
            if not position.startswith(b"-"):
                continue
            if not _OBJ_BACK_INDEX.fullmatch(position):
                fail("corrupt", f"an OBJ face has a malformed index {position[:24]!r}")
            back = position[1:].lstrip(b"0")
            # Compared by length first: int() refuses more than 4300 digits.
            if len(back) > len(str(seen)) or int(back or b"0") > seen:
                fail(
                    "corrupt",
                    f"an OBJ face uses index {position[:24].decode()} after only {seen} vertices",
                )


_GLB_MAGIC: Final = b"glTF"
_GLB_JSON: Final = b"JSON"
_GLB_BIN: Final = b"BIN\x00"
_COMPONENT_BYTES: Final = {5120: 1, 5121: 1, 5122: 2, 5123: 2, 5125: 4, 5126: 4}
_TYPE_WIDTHS: Final = {
    "SCALAR": 1,
    "VEC2": 2,
    "VEC3": 3,
    "VEC4": 4,
    "MAT2": 4,
    "MAT3": 9,
    "MAT4": 16,
}
_TRIANGLES, _STRIP, _FAN = 4, 5, 6
_HARMLESS: Final = ("KHR_materials_", "KHR_texture_transform")
"""Required extensions that only refine looks; any other (Draco, meshopt, quantisation)
changes how geometry is stored, which trimesh would misread as zeros or garbage."""


def _check_glb(data: bytes, limits: MeshLimits) -> None:
    """Walk the GLB container, then check its JSON document against the binary chunk."""
    if len(data) < 20 or data[:4] != _GLB_MAGIC:
        fail("corrupt", "the GLB header is missing")
    version, length = struct.unpack_from("<II", data, 4)
    if version != 2:
        fail("unsupported_type", f"GLB version {version} is not supported; only 2 is")
    if length > len(data):
        fail("corrupt", f"the GLB header claims {length} bytes; the file holds {len(data)}")
    chunks: list[tuple[bytes, bytes]] = []
    offset = 12
    while offset + 8 <= length:
        size, kind = struct.unpack_from("<I4s", data, offset)
        start, offset = offset + 8, offset + 8 + size
        if offset > length:
            fail("corrupt", f"a GLB chunk of {size} bytes runs past the end of the file")
        chunks.append((kind, data[start:offset]))
    if not chunks or chunks[0][0] != _GLB_JSON:
        fail("corrupt", "the GLB does not start with a JSON chunk")
    binary = next((chunk for kind, chunk in chunks[1:] if kind == _GLB_BIN), None)
    _check_document(_json(chunks[0][1]), binary, limits)


def _check_gltf(data: bytes, limits: MeshLimits) -> None:
    _check_document(_json(data), None, limits)


def _json(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        fail("corrupt", f"the glTF JSON cannot be parsed: {error}")


def _check_document(document: Any, binary: bytes | None, limits: MeshLimits) -> None:
    """Every reference resolves inside the upload and every range fits its buffer."""
    if not isinstance(document, dict):
        fail("corrupt", "the glTF document is not a JSON object")
    asset = document.get("asset")
    version = asset.get("version") if isinstance(asset, dict) else None
    if not isinstance(version, str) or not version.startswith("2."):
        fail("unsupported_type", f"glTF version {version!r} is not supported; only 2.x is")
    unknown = _unread_extensions(document.get("extensionsRequired", []))
    if unknown:
        fail("unsupported_type", f"the glTF requires extensions we do not read: {unknown}")
    buffers = [
        _buffer(index, entry, binary) for index, entry in enumerate(_items(document, "buffers"))
    ]
    views = [
        _view(index, entry, buffers) for index, entry in enumerate(_items(document, "bufferViews"))
    ]
    accessors = [
        _accessor(index, entry, views, limits)
        for index, entry in enumerate(_items(document, "accessors"))
    ]
    _check_images(_items(document, "images"), views, limits)
    sizes = [
        _mesh_size(index, entry, accessors)
        for index, entry in enumerate(_items(document, "meshes"))
    ]
    uses = _mesh_uses(document, len(sizes))
    vertices = sum(size[0] * max(1, uses[mesh]) for mesh, size in enumerate(sizes))
    faces = sum(size[1] * max(1, uses[mesh]) for mesh, size in enumerate(sizes))
    check_counts(vertices, faces, limits, "the glTF document")
    if faces == 0:
        fail("no_geometry", "the glTF document draws no triangles")


def _unread_extensions(required: Any) -> list[str]:
    if not isinstance(required, list):
        return ["(malformed extensionsRequired)"]
    return sorted(str(name)[:64] for name in required if not str(name).startswith(_HARMLESS))


def _items(document: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = document.get(key, [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        fail("corrupt", f"glTF {key} is not a list of objects")
    return items


def _index(entry: dict[str, Any], key: str, length: int, what: str) -> int:
    value = entry.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < length:
        fail("corrupt", f"{what} refers to {key} {value!r}, which does not exist")
    return value


def _whole(entry: dict[str, Any], key: str, default: int | None, what: str) -> int:
    value = entry.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        fail("corrupt", f"{what} has {key} {value!r}; a whole number is required")
    return value


def _buffer(index: int, entry: dict[str, Any], binary: bytes | None) -> memoryview:
    """The bytes of buffer ``index``, which must be inside the upload."""
    what = f"buffer {index}"
    declared = _whole(entry, "byteLength", None, what)
    if "uri" in entry:
        data = _data_uri(entry["uri"], what)
    elif index == 0 and binary is not None:
        data = binary
    else:
        fail("corrupt", f"{what} has no uri and is not the GLB's binary chunk")
    if declared > len(data):
        fail("corrupt", f"{what} claims {declared} bytes but holds {len(data)}")
    return memoryview(data)[:declared]


def _data_uri(uri: Any, what: str) -> bytes:
    """The bytes of a base64 data: URI; any other URI would read outside the upload."""
    if not isinstance(uri, str) or not uri.startswith("data:"):
        shown = repr(uri)[:80]
        fail("unsafe_media", f"{what} refers to {shown}, outside the upload; only data: URIs")
    header, _, payload = uri.partition(",")
    if not header.endswith(";base64"):
        fail("corrupt", f"{what} has a data: URI that is not base64")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as error:
        fail("corrupt", f"{what} has a malformed base64 data: URI ({error})")


@dataclass(frozen=True)
class _View:
    data: memoryview
    stride: int | None


def _view(index: int, entry: dict[str, Any], buffers: list[memoryview]) -> _View:
    """A bufferView once it is known to fit inside its buffer with a legal stride."""
    what = f"bufferView {index}"
    buffer = _index(entry, "buffer", len(buffers), what)
    offset = _whole(entry, "byteOffset", 0, what)
    length = _whole(entry, "byteLength", None, what)
    if offset + length > len(buffers[buffer]):
        fail(
            "corrupt",
            f"{what} spans bytes {offset}..{offset + length} of buffer {buffer}, "
            f"which holds {len(buffers[buffer])}",
        )
    stride = entry.get("byteStride")
    if stride is not None and (
        not isinstance(stride, int) or isinstance(stride, bool) or not 4 <= stride <= 252
    ):
        fail("corrupt", f"{what} has byteStride {stride!r}; glTF allows 4..252")
    return _View(buffers[buffer][offset : offset + length], stride)


def _accessor(index: int, entry: dict[str, Any], views: list[_View], limits: MeshLimits) -> int:
    """The element count of accessor ``index`` once its elements fit inside its view."""
    what = f"accessor {index}"
    count = _whole(entry, "count", None, what)
    most = max(limits.max_vertices, 3 * limits.max_faces)
    if count > most:
        fail("too_many_faces", f"{what} declares {count} elements, over the {most} cap")
    component = entry.get("componentType")
    width = _TYPE_WIDTHS.get(str(entry.get("type")))
    # The type check comes first: a JSON list or object is unhashable, so `in` would raise.
    if not isinstance(component, int) or component not in _COMPONENT_BYTES or width is None:
        fail("corrupt", f"{what} has an unknown componentType or type")
    if "bufferView" not in entry:
        return count
    view = views[_index(entry, "bufferView", len(views), what)]
    element = _COMPONENT_BYTES[component] * width
    if view.stride is not None and view.stride < element:
        fail("corrupt", f"{what} has {element}-byte elements but a stride of {view.stride}")
    offset = _whole(entry, "byteOffset", 0, what)
    if count and offset + (view.stride or element) * (count - 1) + element > len(view.data):
        fail("corrupt", f"{what} reads past the end of its bufferView")
    return count


def _check_images(images: list[dict[str, Any]], views: list[_View], limits: MeshLimits) -> None:
    """Textures are PNG, JPEG or WebP inside the upload, and their headers are within caps."""
    pixels = 0
    for index, entry in enumerate(images):
        what = f"image {index}"
        if "uri" in entry:
            blob = _data_uri(entry["uri"], what)
        else:
            blob = bytes(views[_index(entry, "bufferView", len(views), what)].data)
        pixels += _texture_pixels(blob, what)
    if pixels > limits.max_texture_pixels:
        fail(
            "too_many_pixels",
            f"the textures hold {pixels} pixels, over the {limits.max_texture_pixels} cap",
        )


def _texture_pixels(blob: bytes, what: str) -> int:
    """Width x height from the texture's header, refusing formats outside the allowlist."""
    try:
        kind = sniff(blob[:SNIFF_BYTES]).format
    except ValidationError:
        kind = "unknown"
    if kind not in TEXTURE_FORMATS:
        fail("unsupported_type", f"{what} is not a PNG, JPEG or WebP texture")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(BytesIO(blob), formats=[kind.upper()]) as image:
                width, height = image.size
    except Image.DecompressionBombError as error:
        fail("too_many_pixels", f"{what} is too large: {error}")
    except (OSError, ValueError, SyntaxError) as error:
        fail("corrupt", f"{what} cannot be read: {error}")
    return int(width) * int(height)


def _mesh_size(index: int, entry: dict[str, Any], accessors: list[int]) -> tuple[int, int]:
    """(vertices, triangles) one instance of mesh ``index`` declares."""
    vertices = triangles = 0
    primitives = entry.get("primitives")
    if not isinstance(primitives, list) or not primitives:
        fail("no_geometry", f"mesh {index} has no primitives")
    for number, primitive in enumerate(primitives):
        what = f"primitive {number} of mesh {index}"
        attributes = primitive.get("attributes") if isinstance(primitive, dict) else None
        if not isinstance(attributes, dict) or "POSITION" not in attributes:
            fail("no_geometry", f"{what} has no POSITION attribute")
        for name in attributes:
            _index(attributes, name, len(accessors), what)
        count = accessors[attributes["POSITION"]]
        if "indices" in primitive:
            count = accessors[_index(primitive, "indices", len(accessors), what)]
        mode = primitive.get("mode", _TRIANGLES)
        vertices += accessors[attributes["POSITION"]]
        if mode == _TRIANGLES:
            triangles += count // 3
        elif mode in (_STRIP, _FAN):
            triangles += max(0, count - 2)
    return vertices, triangles


def _mesh_uses(document: dict[str, Any], meshes: int) -> list[int]:
    """How many nodes draw each mesh, once the nodes are known to form a forest."""
    nodes = _items(document, "nodes")
    parents = [0] * len(nodes)
    uses = [0] * meshes
    for index, node in enumerate(nodes):
        what = f"node {index}"
        children = node.get("children", [])
        if not isinstance(children, list):
            fail("corrupt", f"{what} has malformed children")
        for position in range(len(children)):
            child = _index({"child": children[position]}, "child", len(nodes), what)
            parents[child] += 1
        if "mesh" in node:
            uses[_index(node, "mesh", meshes, what)] += 1
    if any(count > 1 for count in parents):
        fail("corrupt", "a glTF node has more than one parent")
    reached = [index for index, count in enumerate(parents) if count == 0]
    seen = set(reached)
    while reached:
        for child in nodes[reached.pop()].get("children", []):
            if child not in seen:
                seen.add(child)
                reached.append(child)
    if len(seen) < len(nodes):
        fail("corrupt", "the glTF node hierarchy has a cycle")
    return uses


_CHECKS: Final[dict[str, Callable[[bytes, MeshLimits], None]]] = {
    "glb": _check_glb,
    "gltf": _check_gltf,
    "obj": _check_obj,
    "stl": _check_stl,
    "ply": _check_ply,
}
