"""decode_json reads every document exactly as json.loads does, only faster."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediamill.catalog import json_codec
from mediamill.catalog.json_codec import decode_json

# Everything json.dumps can write: integers of any size, NaN and the infinities, any text.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types (``repr`` tells 1 from 1.0 and shows NaN as nan)."""
    return repr(a) == repr(b)


@given(json_values, st.booleans())
def test_reads_what_json_writes_as_json_reads_it(value: Any, ensure_ascii: bool) -> None:
    document = json.dumps(value, ensure_ascii=ensure_ascii)
    assert same(decode_json(document), json.loads(document))
    assert same(decode_json(document.encode("utf-8", "surrogatepass")), json.loads(document))


@pytest.mark.parametrize(
    "document",
    [
        "18446744073709551616",  # 2**64: orjson would give a float
        "-9223372036854775809",  # below -2**63
        '{"bitrate": 123456789012345678901234567890}',
        "[NaN, Infinity, -Infinity]",
        "1e400",
        '"\\ud800"',  # a lone surrogate, as json.dumps escapes it
    ],
)
def test_documents_orjson_reads_differently_go_to_json(document: str) -> None:
    assert same(decode_json(document), json.loads(document))


def test_ordinary_documents_never_reach_json(monkeypatch: pytest.MonkeyPatch) -> None:
    # The point of the module: metadata as mediamill writes it is read by orjson alone.
    def refuse(document: object) -> None:
        raise AssertionError(f"json.loads was asked to read {document!r}")

    monkeypatch.setattr(json_codec.json, "loads", refuse)
    document = '{"exif": {"ISO": 200, "Make": "Canon"}, "sha256": "ab12", "n": 9223372036854775}'
    assert decode_json(document) == {
        "exif": {"ISO": 200, "Make": "Canon"},
        "sha256": "ab12",
        "n": 9223372036854775,
    }


@pytest.mark.parametrize("document", ["", "{", "[1,]", "nope"])
def test_invalid_documents_raise_json_errors(document: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        decode_json(document)
