"""Generated video uploads, benign and hostile, for the tests, the demo and the benchmarks.

Clips come from FFmpeg's own test sources (``testsrc2`` pictures, a ``sine`` tone), so
nothing is downloaded. The hostile ones are the THREATS.md "ffmpeg file read" inputs:
playlists and references that make an unhardened FFmpeg read another file on the machine.
"""

from __future__ import annotations

import struct
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, Literal

import ffmpeg

from mediamill.media.ffmpeg import binary

Container = Literal["mp4", "mov", "webm", "mkv"]

SENTINEL_TEXT: Final = b"mediamill-sentinel-7f3a9c: this file must never reach an output\n"
"""Contents of ``sentinel``: a byte string no encoder would ever produce by chance."""

_MUXERS: Final[dict[str, str]] = {"mp4": "mp4", "mov": "mov", "webm": "webm", "mkv": "matroska"}
_QUICKTIME_CONTAINERS: Final = frozenset({"moov", "trak", "edts", "mdia", "minf", "dinf", "stbl"})


def clip(
    path: Path,
    *,
    width: int = 320,
    height: int = 240,
    seconds: float = 2.0,
    fps: int = 30,
    container: Container = "mp4",
    audio: bool = True,
    rotation: int = 0,
    black_seconds: float = 0.0,
    all_black: bool = False,
    comment: str | None = None,
    quality: Literal["test", "camera"] = "test",
) -> Path:
    """A ``testsrc2`` clip with a tone, written to ``path`` and returned.

    ``rotation`` (mp4/mov only) is stored as display-matrix metadata, as phones do: the
    frames stay landscape and players turn them that many degrees clockwise.
    ``black_seconds`` opens the clip with black; ``all_black`` makes every frame black.
    ``comment`` is written as container metadata (to check it is stripped). ``camera``
    quality encodes at a phone-like high bitrate, for benchmarks.
    """
    if rotation % 90 or (rotation % 360 and container not in ("mp4", "mov")):
        raise ValueError("rotation must be a multiple of 90, and only mp4/mov can carry it")
    size = f"{width}x{height}"
    if all_black:
        video = _lavfi(f"color=c=black:s={size}:r={fps}:d={seconds}")
    else:
        video = _lavfi(f"testsrc2=size={size}:rate={fps}:duration={seconds - black_seconds}")
        if black_seconds > 0:
            black = _lavfi(f"color=c=black:s={size}:r={fps}:d={black_seconds}")
            video = ffmpeg.concat(black, video, v=1, a=0)
    streams = [video.filter("format", "yuv420p")]
    if audio:
        streams.append(_lavfi(f"sine=frequency=440:sample_rate=48000:duration={seconds}"))
    options: dict[str, Any] = {"format": _MUXERS[container], "g": fps, **_codecs(container)}
    if quality == "camera":
        options |= {"preset": "veryfast", "crf": 16}
    if comment is not None:
        options["metadata"] = f"comment={comment}"
    if rotation % 360 == 0:
        _ffmpeg(ffmpeg.output(*streams, str(path), **options))
        return path
    with tempfile.TemporaryDirectory(prefix="mediamill-sample-") as scratch:
        upright = Path(scratch) / f"upright.{container}"
        _ffmpeg(ffmpeg.output(*streams, str(upright), **options))
        # -display_rotation is counter-clockwise; ``rotation`` is clockwise like the old tag.
        rotated = ffmpeg.input(str(upright), display_rotation=-rotation % 360)
        _ffmpeg(ffmpeg.output(rotated, str(path), c="copy", format=_MUXERS[container]))
    return path


def audio_only(path: Path, seconds: float = 1.0) -> Path:
    """An MP4 (M4A) with a tone and no video stream."""
    tone = _lavfi(f"sine=frequency=440:duration={seconds}")
    _ffmpeg(ffmpeg.output(tone, str(path), format="mp4", acodec="aac"))
    return path


def avi(path: Path, seconds: float = 1.0) -> Path:
    """An AVI clip: a container the pipeline refuses whatever it holds."""
    video = _lavfi(f"testsrc2=size=160x120:rate=10:duration={seconds}")
    _ffmpeg(ffmpeg.output(video, str(path), format="avi", vcodec="mpeg4"))
    return path


def sentinel(path: Path) -> Path:
    """A file standing for ``/etc/passwd``: hostile inputs point at it, outputs must not hold it."""
    path.write_bytes(SENTINEL_TEXT * 64)
    return path


def playlist(path: Path, target: Path) -> Path:
    """An HLS playlist whose one segment is ``file://`` ``target`` (name it ``.mp4`` to lie)."""
    path.write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:10.0,\nfile://{target.resolve()}\n#EXT-X-ENDLIST\n"
    )
    return path


def ffconcat(path: Path, target: Path) -> Path:
    """An ffconcat script listing ``file://`` ``target``."""
    path.write_text(f"ffconcat version 1.0\nfile 'file://{target.resolve()}'\n")
    return path


def truncated(source: Path, path: Path, keep: float = 0.6) -> Path:
    """The first ``keep`` fraction of ``source``, as an interrupted upload leaves it."""
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def stretched(source: Path, path: Path, seconds_per_frame: float = 100.0) -> Path:
    """``source`` (mp4/mov) whose video track claims every frame lasts that long.

    The header then claims a duration of hours while the file holds a few seconds of
    pictures: the duration cap must come from what the file claims, not from its size.
    """
    data = bytearray(source.read_bytes())
    for trak in list(_boxes(data, "trak")):
        if not _is_video_track(data, trak):
            continue
        for start, _ in list(_boxes(data, "edts", trak)):
            data[start - 4 : start] = b"free"  # drop the edit list that would clip it
        timescale = _media_timescale(data, trak)
        delta = int(seconds_per_frame * timescale)
        stts, _ = next(_boxes(data, "stts", trak))
        frames = 0
        for index in range(struct.unpack_from(">I", data, stts + 4)[0]):
            count_at = stts + 8 + index * 8
            frames += struct.unpack_from(">I", data, count_at)[0]
            struct.pack_into(">I", data, count_at + 4, delta)
        mdhd, _ = next(_boxes(data, "mdhd", trak))
        if data[mdhd] == 1:
            struct.pack_into(">Q", data, mdhd + 24, frames * delta)
        else:
            struct.pack_into(">I", data, mdhd + 16, min(frames * delta, 0xFFFFFFFF))
    path.write_bytes(bytes(data))
    return path


def external_reference(source: Path, path: Path, target: Path) -> Path:
    """``source`` (an mp4 with moov after mdat) whose video track lives in ``target``.

    The video track's data reference becomes a QuickTime alias to ``target``'s absolute
    path and the track's own picture bytes are zeroed. An FFmpeg with external references
    on (``-enable_drefs 1 -use_absolute_path 1``) reads the pictures from ``target``;
    pass the unmodified ``source`` as ``target`` to see it decode.
    """
    data = bytearray(source.read_bytes())
    moov = next(_boxes(data, "moov"))
    if any(True for _ in _boxes(data, "mdat", (moov[1], len(data)))):
        raise ValueError("the source must keep moov after mdat (no +faststart)")
    trak = next(box for box in _boxes(data, "trak") if _is_video_track(data, box))
    _zero_samples(data, trak)
    dref_start, dref_end = next(_boxes(data, "dref", trak))
    alias = _alias_box(str(target.resolve()))
    new_dref = bytes(data[dref_start : dref_start + 4]) + struct.pack(">I", 1) + alias
    grow = len(new_dref) - (dref_end - dref_start)
    for start, end in _ancestors(data, dref_start):
        struct.pack_into(">I", data, start - 8, end - start + 8 + grow)
    data[dref_start:dref_end] = new_dref
    path.write_bytes(bytes(data))
    return path


def _lavfi(source: str) -> Any:
    return ffmpeg.input(source, format="lavfi")


def _codecs(container: str) -> dict[str, Any]:
    if container == "webm":
        return {
            "vcodec": "libvpx-vp9",
            "acodec": "libopus",
            "deadline": "realtime",
            "cpu-used": 8,
            "b:v": "1M",
        }
    return {"vcodec": "libx264", "acodec": "aac", "preset": "ultrafast"}


def _ffmpeg(stream: Any) -> None:
    args = stream.global_args("-nostdin", "-hide_banner", "-loglevel", "error")
    subprocess.run(args.overwrite_output().compile(cmd=binary()), check=True, capture_output=True)


def _boxes(
    data: bytearray, kind: str, within: tuple[int, int] | None = None
) -> Iterator[tuple[int, int]]:
    """(payload start, end) of every ``kind`` box, descending into container boxes."""
    start, end = within if within is not None else (0, len(data))
    offset = start
    while offset + 8 <= end:
        size, name = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, offset + 8)[0], 16
        elif size == 0:
            size = end - offset
        box = (offset + header, offset + size)
        if name.decode("latin-1") == kind:
            yield box
        if name.decode("latin-1") in _QUICKTIME_CONTAINERS:
            yield from _boxes(data, kind, box)
        offset += max(size, header)


def _ancestors(data: bytearray, position: int) -> list[tuple[int, int]]:
    """Payload ranges of the container boxes around ``position``, plus the box itself."""
    found: list[tuple[int, int]] = []
    for kind in ("moov", "trak", "mdia", "minf", "dinf", "dref"):
        found.extend(box for box in _boxes(data, kind) if box[0] - 8 <= position < box[1])
    return found


def _is_video_track(data: bytearray, trak: tuple[int, int]) -> bool:
    return any(data[start + 8 : start + 12] == b"vide" for start, _ in _boxes(data, "hdlr", trak))


def _media_timescale(data: bytearray, trak: tuple[int, int]) -> int:
    start, _ = next(_boxes(data, "mdhd", trak))
    offset = start + (20 if data[start] == 1 else 12)
    return int(struct.unpack_from(">I", data, offset)[0])


def _zero_samples(data: bytearray, trak: tuple[int, int]) -> None:
    """Overwrite a track's sample bytes, found through its chunk and size tables."""
    sizes_start, _ = next(_boxes(data, "stsz", trak))
    fixed, count = struct.unpack_from(">II", data, sizes_start + 4)
    sizes = (
        [fixed] * count if fixed else list(struct.unpack_from(f">{count}I", data, sizes_start + 12))
    )
    chunks_start, _ = next(_boxes(data, "stco", trak))
    chunk_count = struct.unpack_from(">I", data, chunks_start + 4)[0]
    offsets = struct.unpack_from(f">{chunk_count}I", data, chunks_start + 8)
    table_start, _ = next(_boxes(data, "stsc", trak))
    runs = struct.unpack_from(">I", data, table_start + 4)[0]
    table = [struct.unpack_from(">III", data, table_start + 8 + 12 * i) for i in range(runs)]
    sample = 0
    for chunk, offset in enumerate(offsets, start=1):
        per_chunk = next(n for first, n, _ in reversed(table) if first <= chunk)
        for _ in range(per_chunk):
            if sample >= count:
                return
            data[offset : offset + sizes[sample]] = bytes(sizes[sample])
            offset += sizes[sample]
            sample += 1


def _alias_box(target: str) -> bytes:
    """A QuickTime ``alis`` data reference with an absolute path (record type 2)."""
    name = Path(target).name.encode()[:63]
    path = target.encode()
    path += b"\x00" * (len(path) % 2)
    record = (
        bytes(10)
        + bytes([0])
        + bytes(27)
        + bytes(12)
        + bytes([len(name)])
        + name.ljust(63, b"\x00")
        + bytes(16)
        + struct.pack(">hh", -1, -1)
        + bytes(16)
        + struct.pack(">HH", 2, len(path))
        + path
        + struct.pack(">hH", -1, 0)
    )
    body = struct.pack(">I", 0) + record
    return struct.pack(">I4s", 8 + len(body), b"alis") + body
