"""Errors raised by the media layer.

Callers branch on the class, and on ``code`` for validation failures::

    MediaError
    ├── ValidationError      the upload is refused; retrying cannot help
    │     .code: "empty" | "unsupported_type" | "too_large" | "too_many_pixels"
    │            | "too_many_frames" | "corrupt" | "blocked_loader" | "unsafe_svg"
    │            | "too_long" | "unsafe_media" | "too_many_faces" | "no_geometry"
    │            | "too_many_pages" | "encrypted" | "timed_out" | "out_of_memory"
    │            | "decoder_crashed"
    └── ProcessingError      a valid upload that an encoder or library failed on
"""

from __future__ import annotations

from typing import Final, Literal, get_args

ValidationCode = Literal[
    "empty",
    "unsupported_type",
    "too_large",
    "too_many_pixels",
    "too_many_frames",
    "corrupt",
    "blocked_loader",
    "unsafe_svg",
    "too_long",  # a video over the duration cap
    "unsafe_media",  # a playlist, a reference to another file, a demuxer we refuse
    "too_many_faces",  # a mesh over the vertex or face cap
    "no_geometry",  # a model with nothing to draw, or coordinates that are not finite
    "too_many_pages",
    "encrypted",
    "timed_out",  # a decoder ran past its wall-clock limit and was killed
    "out_of_memory",  # a decoder hit its memory limit
    "decoder_crashed",  # a decoder process died on the input
]

VALIDATION_CODES: Final[frozenset[str]] = frozenset(get_args(ValidationCode))


class MediaError(Exception):
    """Base of every error the media layer raises, so callers can catch one class."""


class ValidationError(MediaError):
    """The input is refused for what it is, so callers mark it failed and never retry."""

    def __init__(self, code: ValidationCode, message: str) -> None:
        super().__init__(message)
        self.code: ValidationCode = code
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class ProcessingError(MediaError):
    """A library failed on input that passed validation, so the fault is ours to look at."""
