"""Hand untrusted video to FFmpeg safely: a forced demuxer, local files only, bounded runs.

FFmpeg guesses formats and follows references: a playlist (HLS, ffconcat) named ``.mp4``
makes it open ``file:///etc/passwd`` and encode those bytes into the output. Everything
here closes that door the same way for both ways in, the ``ffmpeg`` command line
(``open_input``/``command``/``run``) and PyAV (``read_streams``, run in a sandbox child):

- the demuxer is forced from the sniffed container (``DEMUXERS``), never probed;
- ``protocol_whitelist`` is ``file`` and ``format_whitelist`` the forced demuxer, so
  nothing the demuxer finds inside the file can open a URL or a nested playlist;
- the mov demuxer's external data references (``enable_drefs``) stay off;
- every ``ffmpeg`` run has a wall-clock and a memory limit and is killed past either.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import av
import ffmpeg
import imageio_ffmpeg

from mediamill.media.errors import ValidationError
from mediamill.media.sandbox import resident_bytes

DEMUXERS: Final[Mapping[str, str]] = {
    "mp4": "mov",
    "mov": "mov",
    "3gp": "mov",
    "webm": "matroska",
    "mkv": "matroska",
}
"""The FFmpeg demuxer forced for each sniffed container; anything else is never opened."""

REFUSED_DEMUXERS: Final = frozenset({"hls", "applehttp", "concat", "dash", "image2", "lavfi"})
"""Demuxers that read other files or URLs named inside the input; no command may use them."""

ALLOWED_PROTOCOLS: Final = frozenset({"file", "pipe"})
"""What an input's ``protocol_whitelist`` may name: local files and our own pipes, no network."""

GLOBAL_ARGS: Final = ("-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-xerror")
"""Every run: no terminal input, only errors on stderr, and stop at the first decode error."""

_POLL_SECONDS: Final = 0.05
_REASON_CHARS: Final = 300
_ADDRESS = re.compile(r"\s*@ 0x[0-9a-f]+")


def binary() -> str:
    """The ``ffmpeg`` on PATH if there is one, else the build imageio-ffmpeg ships."""
    return _binary()


@functools.cache
def _binary() -> str:
    return shutil.which("ffmpeg") or imageio_ffmpeg.get_ffmpeg_exe()


def version() -> str:
    """The FFmpeg release, e.g. ``n9.0.2``, recorded as the encoder of every variant."""
    return _version()


@functools.cache
def _version() -> str:
    output = subprocess.run(
        [binary(), "-hide_banner", "-version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.match(r"ffmpeg version (\S+)", output)
    return match.group(1).split("-")[0] if match else "unknown"


def demuxer_for(container: str) -> str:
    """The demuxer for a sniffed container, refusing containers FFmpeg must not open."""
    try:
        return DEMUXERS[container]
    except KeyError:
        raise ValidationError(
            "unsupported_type", f"{container!r} is not a video container this pipeline reads"
        ) from None


def demuxer_options(container: str) -> dict[str, str]:
    """Input options that keep the demuxer to this one file, for ``ffmpeg`` and PyAV alike."""
    demuxer = demuxer_for(container)
    options = {"protocol_whitelist": "file", "format_whitelist": demuxer}
    if demuxer == "mov":
        options |= {"enable_drefs": "0", "use_absolute_path": "0"}
    return options


def source_url(path: Path) -> str:
    """An explicit ``file:`` URL, so a name like ``http:x`` or ``-i`` is never misread."""
    return f"file:{path.resolve()}"


def open_input(path: Path, container: str, **options: Any) -> Any:
    """An ffmpeg-python input with the demuxer forced and the hardening options set."""
    return ffmpeg.input(
        source_url(path), f=demuxer_for(container), **demuxer_options(container), **options
    )


def command(stream: Any) -> list[str]:
    """The argument list of an ffmpeg-python output, with our binary and global options."""
    args: list[str] = stream.global_args(*GLOBAL_ARGS).compile(cmd=binary())
    check_command(args)
    return args


def check_command(args: Sequence[str]) -> None:
    """Refuse a command whose inputs are not forced, whitelisted and from the allowed set.

    This guards our own command builders (a programming error raises ``ValueError``); the
    bytes never get this far unless the command is one of the hardened shapes.
    """
    pending: dict[str, str] = {}
    for flag, value in itertools.pairwise(args):
        if flag != "-i":
            if flag.startswith("-"):
                pending[flag] = value
            continue
        demuxer = pending.get("-f")
        if demuxer is None or demuxer in REFUSED_DEMUXERS or demuxer not in DEMUXERS.values():
            raise ValueError(f"input {value!r} must force an allowed demuxer, not {demuxer!r}")
        protocols = set(pending.get("-protocol_whitelist", "").split(","))
        if not protocols or not protocols <= ALLOWED_PROTOCOLS or "" in protocols:
            raise ValueError(f"input {value!r} must whitelist only {sorted(ALLOWED_PROTOCOLS)}")
        if pending.get("-format_whitelist") != demuxer:
            raise ValueError(f"input {value!r} must whitelist only its demuxer {demuxer!r}")
        if demuxer == "mov" and pending.get("-enable_drefs") != "0":
            raise ValueError(f"input {value!r} must keep mov external references off")
        pending = {}


def run(
    args: Sequence[str], *, timeout: float, memory_bytes: int | None = None, what: str
) -> bytes:
    """Run one ffmpeg command and return its stdout; past its limits it is killed.

    A run over ``timeout`` seconds or ``memory_bytes`` of resident memory raises
    ``ValidationError`` ``timed_out`` or ``out_of_memory``; death by a signal is
    ``decoder_crashed``; any other failure is the input's (``corrupt``), with the first
    lines FFmpeg printed, paths removed, as the reason.
    """
    check_command(args)
    process = subprocess.Popen(
        list(args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                stdout, stderr = process.communicate(timeout=_POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    raise ValidationError(
                        "timed_out", f"ffmpeg took longer than {timeout:g} s on {what}"
                    ) from None
                if memory_bytes is not None and resident_bytes(process.pid) > memory_bytes:
                    raise ValidationError(
                        "out_of_memory",
                        f"ffmpeg went over {memory_bytes // (1024 * 1024)} MiB on {what}",
                    ) from None
    finally:
        if process.returncode is None:
            _kill(process)
    if process.returncode < 0:
        raise ValidationError(
            "decoder_crashed", f"ffmpeg died on {what} (signal {-process.returncode})"
        )
    if process.returncode != 0:
        raise ValidationError("corrupt", f"ffmpeg failed on {what}: {_reason(stderr, args)}")
    return stdout


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def _reason(stderr: bytes, args: Sequence[str]) -> str:
    """The first errors FFmpeg printed (the cause; later lines are consequences), no paths."""
    text = stderr.decode("utf-8", "replace")
    for arg in args[1:]:
        if arg.startswith(("file:", "/")) and len(arg) > 1:
            text = text.replace(arg, "<file>")
    lines = [_ADDRESS.sub("", line).strip() for line in text.splitlines() if line.strip()]
    reason = "; ".join(dict.fromkeys(lines[:2])) or "no error message"
    return reason if len(reason) <= _REASON_CHARS else reason[: _REASON_CHARS - 3] + "..."


def read_streams(path: str, container: str, max_seconds: float) -> dict[str, Any]:
    """Stream facts and the first decoded picture's rotation, read with PyAV.

    Meant to run inside ``sandbox.run_isolated``: it opens the file with the same forced
    demuxer and whitelists as every ``ffmpeg`` run, decodes one picture to prove the video
    decodes, and returns plain data. Without a duration in the header it reads packet
    timestamps until the end or until past ``max_seconds``.
    """
    url = source_url(Path(path))
    try:
        with av.open(
            url,
            format=demuxer_for(container),
            container_options=demuxer_options(container),
            metadata_errors="ignore",
        ) as media:
            return _facts(media, container, max_seconds)
    except av.FFmpegError as error:
        raise ValidationError(
            "corrupt", f"the {container} data cannot be read: {error.strerror}"
        ) from error


def _facts(media: Any, container: str, max_seconds: float) -> dict[str, Any]:
    if not media.streams.video:
        raise ValidationError("unsupported_type", f"the {container} file has no video stream")
    video = media.streams.video[0]
    audio = media.streams.audio[0] if media.streams.audio else None
    codec = video.codec_context
    rate = video.average_rate or video.guessed_rate or video.base_rate
    sar = video.sample_aspect_ratio or Fraction(1)
    facts: dict[str, Any] = {
        "duration": _duration(media, video),
        "width": int(codec.width),
        "height": int(codec.height),
        "sample_aspect_ratio": (sar.numerator, sar.denominator),
        "fps": float(rate) if rate else 0.0,
        "video_codec": str(codec.name),
        "audio_codec": str(audio.codec_context.name) if audio is not None else None,
        "audio_channels": int(audio.codec_context.channels) if audio is not None else 0,
        "bit_rate": int(media.bit_rate) if media.bit_rate else None,
    }
    first = next(media.decode(video), None)
    if first is None:
        raise ValidationError("corrupt", f"no picture in the {container} file can be decoded")
    facts["display_rotation"] = float(first.rotation or 0)
    if facts["duration"] is None:
        facts["duration"] = _scan_duration(media, video, max_seconds)
    return facts


def _duration(media: Any, video: Any) -> float | None:
    """Seconds from the header: the container's, else the video stream's."""
    if media.duration:
        return float(media.duration / av.time_base)
    if video.duration and video.time_base:
        return float(video.duration * video.time_base)
    return None


def _scan_duration(media: Any, video: Any, max_seconds: float) -> float:
    """End of the last video packet, stopping early once it is past ``max_seconds``."""
    end = 0.0
    for packet in media.demux(video):
        if packet.pts is None or packet.time_base is None:
            continue
        end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
        if end > max_seconds:
            break
    return end
