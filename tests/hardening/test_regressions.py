"""Inputs the fuzzer and the property tests crashed a validator with, kept so they stay fixed.

Each one used to escape its validator as a bare Python exception (ValueError, TypeError,
LookupError, UnicodeEncodeError) instead of the module's own refusal. Inside the model
sandbox that turned a hostile upload into a ProcessingError, "our fault", instead of a
``corrupt`` validation failure; in the image probe it escaped the media layer altogether.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from mediamill.api.signatures import SignatureError, verify
from mediamill.media.errors import ValidationError
from mediamill.media.images import probe_image
from mediamill.media.limits import ImageLimits
from mediamill.media.mesh_headers import check_headers
from mediamill.media.mesh_specs import MeshLimits
from mediamill.media.meshes import probe_model
from mediamill.media.svg import sanitize_svg

TRIANGLE = b"v 0 0 0\nv 1 0 0\nv 0 1 0\n"


# -- SVG: an XML declaration naming an encoding Python has no text codec for ---------------


@pytest.mark.parametrize("encoding", ["UTF-9", "hex", "rot13", "no-such-codec"])
def test_svg_declaring_an_unknown_encoding_is_corrupt(encoding: str) -> None:
    """Found by the fuzzer: expat asked Python for the codec and the LookupError escaped."""
    data = f'<?xml version="1.0" encoding="{encoding}"?><svg width="4" height="4"/>'.encode()
    with pytest.raises(ValidationError) as refused:
        sanitize_svg(data)
    assert refused.value.code == "corrupt"
    with pytest.raises(ValidationError) as probed:
        probe_image(data, ImageLimits())
    assert probed.value.code == "corrupt"


# -- OBJ: a back-reference face index that is not "-" and digits --------------------------


@pytest.mark.parametrize(
    "face",
    [
        # The fuzzer's input: NULs after the index; int() refused them.
        base64.b64decode("ZiAxIDIgLTEAAAAACg=="),
        b"f 1 2 --\n",
        b"f 1 2 -x\n",
        b"f 1 2 -1e3\n",
        b"f 1 2 -\xff\n",
    ],
)
def test_obj_with_a_malformed_negative_index_is_corrupt(face: bytes) -> None:
    with pytest.raises(ValidationError, match="malformed index") as refused:
        check_headers(TRIANGLE + face, "obj", MeshLimits())
    assert refused.value.code == "corrupt"


def test_obj_index_with_more_digits_than_int_reads_is_corrupt() -> None:
    """int() refuses over 4300 digits; such an index is past any vertex count anyway."""
    data = TRIANGLE + b"f 1 2 -" + b"9" * 5000 + b"\n"
    with pytest.raises(ValidationError, match="after only 3 vertices") as refused:
        check_headers(data, "obj", MeshLimits())
    assert refused.value.code == "corrupt"


def test_obj_back_references_that_exist_still_pass() -> None:
    """The stricter parse keeps valid relative indices, leading zeros included."""
    check_headers(TRIANGLE + b"f -1 -2 -03\nf -1/-1 -2/-2 -3/-3\n", "obj", MeshLimits())


def test_a_malformed_obj_fails_as_corrupt_through_the_sandbox(tmp_path: Path) -> None:
    """End to end: the refusal is a ValidationError, not a ProcessingError of ours."""
    path = tmp_path / "upload.obj"
    path.write_bytes(TRIANGLE + b"f 1 2 --\n")
    with pytest.raises(ValidationError) as refused:
        probe_model(path, "obj", MeshLimits())
    assert refused.value.code == "corrupt"


# -- PLY: an element count with more digits than int() converts ---------------------------


def ply_header(element: str, count: bytes) -> bytes:
    return (
        b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
        b"property float z\nelement face 1\nproperty list uchar int vertex_indices\n"
        b"element " + element.encode() + b" " + count + b"\nproperty int x\n"
        b"end_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n"
    )


@pytest.mark.parametrize(("element", "code"), [("face", "too_many_faces"), ("extra", "corrupt")])
def test_ply_count_past_int_conversion_is_refused(element: str, code: str) -> None:
    data = ply_header(element, b"9" * 5000)
    with pytest.raises(ValidationError) as refused:
        check_headers(data, "ply", MeshLimits())
    assert refused.value.code == code


def test_ply_count_with_leading_zeros_is_its_value() -> None:
    check_headers(ply_header("extra", b"0" * 5000), "ply", MeshLimits())


# -- glTF: an accessor whose componentType is a JSON list or object -----------------------


@pytest.mark.parametrize("component", [[5126], {"type": 5126}, "5126", 5126.0, True])
def test_gltf_accessor_with_a_non_integer_component_type_is_corrupt(component: object) -> None:
    """A list or object is unhashable: ``component in dict`` raised TypeError."""
    document = {
        "asset": {"version": "2.0"},
        "accessors": [{"count": 3, "componentType": component, "type": "VEC3"}],
    }
    with pytest.raises(ValidationError, match="componentType") as refused:
        check_headers(json.dumps(document).encode(), "gltf", MeshLimits())
    assert refused.value.code == "corrupt"


# -- webhook signatures: a v1 value that cannot be encoded for the comparison -------------


@pytest.mark.parametrize("signature", ["\udcff", "ab\ud800cd", "\u00e9" * 64])
def test_a_non_ascii_v1_is_refused_with_signature_error(signature: str) -> None:
    """Found by the property test: a lone surrogate raised UnicodeEncodeError in compare."""
    with pytest.raises(SignatureError, match="not hex"):
        verify(f"t=100,v1={signature}", b"{}", ["s"], tolerance_seconds=300, now=100)
