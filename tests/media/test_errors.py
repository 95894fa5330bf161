"""The error tree callers branch on."""

from __future__ import annotations

import pytest

from mediamill.media.errors import (
    VALIDATION_CODES,
    MediaError,
    ProcessingError,
    ValidationError,
)


def test_validation_error_carries_code_and_human_message() -> None:
    error = ValidationError("too_large", "the upload is 201 MiB, over the cap")
    assert error.code == "too_large"
    assert str(error) == "the upload is 201 MiB, over the cap"
    assert "too_large" in repr(error)


def test_tree_lets_callers_catch_one_class() -> None:
    assert issubclass(ValidationError, MediaError)
    assert issubclass(ProcessingError, MediaError)
    assert not issubclass(ProcessingError, ValidationError)
    with pytest.raises(MediaError):
        raise ProcessingError("encoder failed")


def test_documented_codes_are_the_allowed_codes() -> None:
    import mediamill.media.errors as module

    assert module.__doc__ is not None
    for code in VALIDATION_CODES:
        assert f'"{code}"' in module.__doc__
    assert {"unsupported_type", "too_large", "too_many_pixels", "too_many_frames", "corrupt"} <= (
        VALIDATION_CODES
    )
