"""Probe and render videos: caps from the header, a poster, a web MP4 and an optional HLS ladder.

A render is three steps; every one reads the upload through ``mediamill.media.ffmpeg``
(forced demuxer, local file only, time and memory limits):

1. ``probe_video`` reads the stream facts with PyAV in a sandbox child and refuses the
   upload over the caps before anything is decoded past the first picture;
2. a poster frame (seeked to 10% of the duration, later if that frame is black) goes
   through ``render_image``, so a video's stills have the image specs' names and the
   placeholder is the poster's ThumbHash;
3. one H.264/AAC encode per output: the ``web`` MP4 and, when asked, an fMP4 HLS ladder.

Sizes are computed here, in the displayed orientation, and handed to FFmpeg as exact
numbers, so ``planned_video_variants`` and the outputs always agree.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import ffmpeg
import pyvips

from mediamill.media.errors import ValidationError
from mediamill.media.ffmpeg import command, open_input, read_streams, run, version
from mediamill.media.geometry import plan_size
from mediamill.media.images import ImageRendition, render_image
from mediamill.media.limits import ImageLimits, check_file_size
from mediamill.media.rendition import RenderedVariant, Rendition, VariantId, wanted
from mediamill.media.sandbox import SandboxLimits, run_isolated
from mediamill.media.sniff import ACCEPTED_VIDEO_FORMATS, SNIFF_BYTES, sniff
from mediamill.media.specs import VariantSpec
from mediamill.media.thumbhash import MAX_SIDE as PLACEHOLDER_SIDE
from mediamill.media.video_specs import (
    DEFAULT_WEB_VIDEO,
    HlsRung,
    HlsSpec,
    VideoLimits,
    WebVideoSpec,
    fit_even,
)

SUPPORTED_CONTAINERS: Final = ACCEPTED_VIDEO_FORMATS
"""Containers accepted by content; 3GP, AVI and the rest are refused before FFmpeg sees them."""

MP4_MIME: Final = "video/mp4"
"""Content-Type of the web MP4 and of each rung's fMP4 media."""
HLS_MIME: Final = "application/vnd.apple.mpegurl"
"""Content-Type of HLS playlists, the one players and CDNs expect."""

POSTER_FRACTIONS: Final = (0.10, 0.25, 0.40, 0.55, 0.70, 0.85, 0.0)
"""Where the poster is looked for, in order, as fractions of the duration."""
BLACK_LUMA: Final = 32
"""A pixel darker than this (of 255) counts as black, as in FFmpeg's blackframe filter."""
BLACK_SHARE: Final = 98
"""A frame is black when this percentage of its pixels are."""

_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


@dataclass(frozen=True)
class VideoInfo:
    """What the probe found; ``width``/``height`` are as displayed (rotation and SAR applied).

    ``rotation`` is the degrees clockwise a player turns the stored pictures (what the old
    ``rotate`` tag said; phones record portrait as 90). ``coded_width``/``coded_height``
    are the stored pictures' size, which is what decoding costs.
    """

    container: str
    duration: float
    width: int
    height: int
    rotation: int
    fps: float
    video_codec: str
    audio_codec: str | None
    bit_rate: int | None
    coded_width: int
    coded_height: int
    audio_channels: int = 0

    @property
    def has_audio(self) -> bool:
        """Whether there is an audio stream to carry over."""
        return self.audio_codec is not None


def probe_video(path: Path, container: str, limits: VideoLimits) -> VideoInfo:
    """Check the container by content, read the stream facts in a sandbox, apply the caps."""
    _check_upload(path, container, limits)
    facts = run_isolated(
        read_streams,
        str(path),
        container,
        limits.max_seconds,
        limits=SandboxLimits(seconds=limits.probe_seconds, memory_bytes=limits.memory_bytes),
        what=f"the {container} file",
    )
    info = _info(container, facts)
    _check_limits(info, limits)
    return info


def _check_upload(path: Path, container: str, limits: VideoLimits) -> None:
    if container not in SUPPORTED_CONTAINERS:
        raise ValidationError(
            "unsupported_type",
            f"{container!r} videos are not accepted; send "
            + ", ".join(sorted(c.upper() for c in SUPPORTED_CONTAINERS)),
        )
    check_file_size(path, limits.max_bytes, "video")
    with path.open("rb") as file:
        head = file.read(SNIFF_BYTES)
    try:
        found = sniff(head).format
    except ValidationError:
        found = "unknown"
    if found != container:
        raise ValidationError(
            "unsupported_type", f"the content is {found}, not the {container} it was taken for"
        )


def _info(container: str, facts: dict[str, Any]) -> VideoInfo:
    coded_width, coded_height = int(facts["width"]), int(facts["height"])
    if coded_width < 1 or coded_height < 1:
        raise ValidationError("corrupt", f"the video claims {coded_width}x{coded_height} pictures")
    sar_num, sar_den = facts["sample_aspect_ratio"]
    width = coded_width
    if sar_num > 0 and sar_den > 0 and sar_num != sar_den:
        width = max(1, round(coded_width * sar_num / sar_den))
    rotation = round(-float(facts["display_rotation"]) / 90) * 90 % 360
    height = coded_height
    if rotation in (90, 270):
        width, height = height, width
    return VideoInfo(
        container=container,
        duration=float(facts["duration"]),
        width=width,
        height=height,
        rotation=rotation,
        fps=float(facts["fps"]),
        video_codec=str(facts["video_codec"]),
        audio_codec=facts["audio_codec"],
        bit_rate=facts["bit_rate"],
        coded_width=coded_width,
        coded_height=coded_height,
        audio_channels=int(facts["audio_channels"]),
    )


def _check_limits(info: VideoInfo, limits: VideoLimits) -> None:
    if not math.isfinite(info.duration) or info.duration < 0:
        raise ValidationError("corrupt", f"the video claims a duration of {info.duration}")
    if info.duration > limits.max_seconds:
        raise ValidationError(
            "too_long",
            f"the video lasts {info.duration:.1f} s, over the {limits.max_seconds:g} s cap",
        )
    sides = (info.coded_width, info.coded_height, info.width, info.height)
    if max(sides) > limits.max_side:
        raise ValidationError(
            "too_many_pixels",
            f"{info.width}x{info.height} has a side over the {limits.max_side}-pixel cap",
        )
    pixels = info.coded_width * info.coded_height
    if pixels > limits.max_pixels:
        raise ValidationError(
            "too_many_pixels",
            f"{info.coded_width}x{info.coded_height} is {pixels} pixels a frame, "
            f"over the {limits.max_pixels} cap",
        )


def render_video(
    path: Path,
    container: str,
    image_specs: Sequence[VariantSpec],
    image_limits: ImageLimits,
    limits: VideoLimits,
    *,
    web: WebVideoSpec = DEFAULT_WEB_VIDEO,
    hls: HlsSpec | None = None,
    filename_for: Callable[[str, str], str] | None = None,
    only: Collection[VariantId] | None = None,
) -> Rendition:
    """Poster variants, the web MP4 and the HLS ladder (or those in ``only``) of one video.

    ``filename_for(variant_name, extension)`` names the stored objects, which HLS
    playlists reference; every object of one render is stored in the same directory. A
    rung's playlist holds byte ranges into its media, so store (or regenerate) the two
    together. The placeholder is always made, from the poster.
    """
    _check_names(image_specs, web, hls)
    hls_names = _hls_names(hls, filename_for or _default_filename) if hls is not None else None
    info = probe_video(path, container, limits)
    videos: list[RenderedVariant] = []
    metadata: dict[str, Any] = {
        "duration": round(info.duration, 3),
        "fps": round(info.fps, 3),
        "video_codec": info.video_codec,
        "audio_codec": info.audio_codec,
        "has_audio": info.has_audio,
        "rotation": info.rotation,
        "bit_rate": info.bit_rate,
    }
    # The poster (one frame, a few stills) runs beside the encodes, on the cores x264 leaves.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mediamill-poster") as pool:
        poster_job = pool.submit(
            _poster_rendition, path, info, image_specs, image_limits, limits, only
        )
        if wanted(web.variant_id, only):
            encoded = _web(path, info, web, limits)
            videos.append(encoded)
            metadata |= {"web_width": encoded.width, "web_height": encoded.height}
        if (
            hls is not None
            and hls_names is not None
            and any(wanted(variant_id, only) for variant_id in hls.variant_ids)
        ):
            ladder = _hls(path, info, hls, limits, hls_names)
            videos.extend(v for v in ladder if wanted(v.variant_id, only))
            metadata["hls_rungs"] = [
                {"name": hls.rung_name(rung), "width": width, "height": height}
                for rung, (width, height) in zip(
                    hls.rungs, hls.sizes(info.width, info.height), strict=True
                )
            ]
        poster, poster_seconds = poster_job.result()
    metadata["poster_seconds"] = poster_seconds
    return Rendition(
        kind="video",
        format=container,
        width=info.width,
        height=info.height,
        variants=(*poster.variants, *videos),
        placeholder=poster.placeholder,
        has_alpha=False,
        metadata=metadata,
    )


def _check_names(
    image_specs: Sequence[VariantSpec], web: WebVideoSpec, hls: HlsSpec | None
) -> None:
    names = [spec.name for spec in image_specs] + [web.name]
    if hls is not None:
        names += [hls.name] + [hls.rung_name(r) for r in hls.rungs]
        names += [hls.media_name(r) for r in hls.rungs]
    if len(set(names)) != len(names):
        raise ValueError(f"variant names must be unique across posters and videos: {names}")


def _default_filename(name: str, extension: str) -> str:
    return f"{name}.{extension}"


# Poster


def _poster_specs(
    image_specs: Sequence[VariantSpec], only: Collection[VariantId] | None
) -> list[VariantSpec]:
    return [
        spec
        for spec in image_specs
        if any(wanted((spec.name, out.format, spec.version), only) for out in spec.formats)
    ]


def poster_size(info: VideoInfo, image_specs: Sequence[VariantSpec]) -> tuple[int, int]:
    """The smallest frame size every spec (and the placeholder) can be cut from unscaled up."""
    scale = min(1.0, PLACEHOLDER_SIDE / max(info.width, info.height))
    for spec in image_specs:
        plan = plan_size(info.width, info.height, spec.width, spec.height, spec.fit)
        scale = max(scale, plan.scale)
    return max(1, math.ceil(info.width * scale)), max(1, math.ceil(info.height * scale))


def poster_times(duration: float) -> tuple[float, ...]:
    """Timestamps tried for the poster, in order: 10% in first, the very start last."""
    times: list[float] = []
    for fraction in POSTER_FRACTIONS:
        seconds = round(duration * fraction, 3)
        if seconds not in times:
            times.append(seconds)
    return tuple(times)


def poster_command(path: Path, info: VideoInfo, seconds: float, size: tuple[int, int]) -> list[str]:
    """One upright RGB PNG frame at ``seconds`` (seeking on the input), scaled to ``size``."""
    source = open_input(path, info.container, ss=f"{seconds:.3f}")
    frame = (
        source["v:0"]
        .filter("scale", size[0], size[1], flags="lanczos")
        .filter("setsar", 1)
        .filter("format", "rgb24")
    )
    output = ffmpeg.output(
        frame,
        "pipe:1",
        format="image2pipe",
        vcodec="png",
        compression_level=1,
        map_metadata=-1,
        **{"frames:v": 1},
    )
    return command(output)


def _poster_rendition(
    path: Path,
    info: VideoInfo,
    image_specs: Sequence[VariantSpec],
    image_limits: ImageLimits,
    limits: VideoLimits,
    only: Collection[VariantId] | None,
) -> tuple[ImageRendition, float]:
    """The poster's image variants and placeholder, and the timestamp it was taken at."""
    png, seconds = _poster(path, info, _poster_specs(image_specs, only), limits)
    return render_image(png, image_specs, image_limits, only=only), seconds


def _poster(
    path: Path, info: VideoInfo, specs: Sequence[VariantSpec], limits: VideoLimits
) -> tuple[bytes, float]:
    """The first frame that is not black, or the first frame found if all of them are."""
    size = poster_size(info, specs)
    fallback: tuple[bytes, float] | None = None
    for seconds in poster_times(info.duration):
        png = run(
            poster_command(path, info, seconds, size),
            timeout=limits.timeout_seconds,
            memory_bytes=limits.memory_bytes,
            what=f"the poster frame at {seconds:g} s",
        )
        if not png:
            continue  # the seek went past the last picture
        if not is_black(png):
            return png, seconds
        fallback = fallback or (png, seconds)
    if fallback is None:
        raise ValidationError("corrupt", "no picture of the video could be decoded for a poster")
    return fallback


def is_black(png: bytes) -> bool:
    """Whether nearly every pixel is nearly black (a fade-in, a lens cap, a black slate)."""
    luma = pyvips.Image.pngload_buffer(png).colourspace("b-w")[0]
    return float(luma.percent(BLACK_SHARE)) < BLACK_LUMA


# Web MP4


def web_size(info: VideoInfo, spec: WebVideoSpec = DEFAULT_WEB_VIDEO) -> tuple[int, int]:
    """The web MP4's size: the displayed size fit in the spec's box, even, never upscaled."""
    return fit_even(info.width, info.height, spec.max_width, spec.max_height)


def web_command(
    path: Path,
    info: VideoInfo,
    output: Path,
    limits: VideoLimits,
    spec: WebVideoSpec = DEFAULT_WEB_VIDEO,
) -> list[str]:
    """The ffmpeg command that writes the web MP4 of ``path`` to ``output``."""
    source = open_input(path, info.container, t=limits.max_seconds)
    width, height = web_size(info, spec)
    streams = [_scaled(source["v:0"], width, height)]
    options = _h264(spec.preset, spec.max_fps) | {
        "crf": spec.crf,
        "movflags": "+faststart",
        "format": "mp4",
    }
    if info.has_audio:
        streams.append(source["a:0"])
        options |= _aac(info, spec.audio_kbps)
    return command(ffmpeg.output(*streams, str(output), **options).overwrite_output())


def _scaled(video: Any, width: int, height: int) -> Any:
    return video.filter("scale", width, height).filter("setsar", 1).filter("format", "yuv420p")


def _h264(preset: str, max_fps: int) -> dict[str, Any]:
    return {
        "c:v": "libx264",
        "profile:v": "high",
        "pix_fmt": "yuv420p",
        "preset": preset,
        "fpsmax": max_fps,
        "map_metadata": -1,
        "map_chapters": -1,
    }


def _aac(info: VideoInfo, kbps: int) -> dict[str, Any]:
    options: dict[str, Any] = {"c:a": "aac", "b:a": f"{kbps}k"}
    if info.audio_channels > 2:
        options["ac"] = 2
    return options


def _web(path: Path, info: VideoInfo, spec: WebVideoSpec, limits: VideoLimits) -> RenderedVariant:
    with tempfile.TemporaryDirectory(prefix="mediamill-video-") as scratch:
        output = Path(scratch) / "web.mp4"
        run(
            web_command(path, info, output, limits, spec),
            timeout=limits.timeout_seconds,
            memory_bytes=limits.memory_bytes,
            what="the web MP4 encode",
        )
        data = output.read_bytes()
    width, height = web_size(info, spec)
    return RenderedVariant(
        name=spec.name,
        format="mp4",
        mime=MP4_MIME,
        width=width,
        height=height,
        data=data,
        spec_version=spec.version,
        encoder=_encoder(),
        extension="mp4",
    )


def _encoder() -> str:
    return f"ffmpeg {version()} libx264"


# HLS


def hls_encodes(info: VideoInfo, spec: HlsSpec) -> list[tuple[HlsRung, int, int]]:
    """The distinct sizes the ladder encodes: the first rung of each size, in order."""
    encodes: dict[tuple[int, int], HlsRung] = {}
    for rung, size in zip(spec.rungs, spec.sizes(info.width, info.height), strict=True):
        encodes.setdefault(size, rung)
    return [(rung, width, height) for (width, height), rung in encodes.items()]


def hls_command(
    path: Path, info: VideoInfo, directory: Path, limits: VideoLimits, spec: HlsSpec
) -> list[str]:
    """The ffmpeg command that writes the ladder into ``directory``.

    It writes ``master.m3u8`` and, per encode ``i`` of ``hls_encodes``, ``rung_i.m3u8``
    and ``rung_i.mp4``; the render then renames the references to the caller's names.
    """
    encodes = hls_encodes(info, spec)
    source = open_input(path, info.container, t=limits.max_seconds)
    split = source["v:0"].filter_multi_output("split", len(encodes))
    streams: list[Any] = []
    options = _h264(spec.preset, spec.max_fps)
    stream_map = []
    for index, (rung, width, height) in enumerate(encodes):
        streams.append(_scaled(split.stream(index), width, height))
        options |= {
            f"crf:v:{index}": rung.crf,
            f"maxrate:v:{index}": f"{rung.max_kbps}k",
            f"bufsize:v:{index}": f"{rung.max_kbps * 2}k",
        }
        stream_map.append(f"v:{index},a:{index}" if info.has_audio else f"v:{index}")
    if info.has_audio:
        streams.extend(source["a:0"] for _ in encodes)
        options |= _aac(info, spec.audio_kbps)
    options |= {
        "force_key_frames": f"expr:gte(t,n_forced*{spec.segment_seconds})",
        "format": "hls",
        "hls_time": spec.segment_seconds,
        "hls_playlist_type": "vod",
        "hls_segment_type": "fmp4",
        "hls_flags": "single_file",
        "hls_segment_filename": str(directory / "rung_%v.mp4"),
        "master_pl_name": "master.m3u8",
        "var_stream_map": " ".join(stream_map),
    }
    playlists = str(directory / "rung_%v.m3u8")
    return command(ffmpeg.output(*streams, playlists, **options).overwrite_output())


@dataclass(frozen=True)
class _HlsNames:
    """The stored file names of a ladder's playlists and media, by rung height."""

    playlists: dict[int, str]
    media: dict[int, str]


def _hls_names(spec: HlsSpec, name_of: Callable[[str, str], str]) -> _HlsNames:
    """Ask the caller for every name up front, so a bad ``filename_for`` fails before work."""
    playlists = {r.height: _filename(name_of, spec.rung_name(r), "m3u8") for r in spec.rungs}
    media = {r.height: _filename(name_of, spec.media_name(r), "mp4") for r in spec.rungs}
    filenames = [_filename(name_of, spec.name, "m3u8"), *playlists.values(), *media.values()]
    if len(set(filenames)) != len(filenames):
        raise ValueError("filename_for must give each HLS object its own name")
    return _HlsNames(playlists, media)


def _hls(
    path: Path, info: VideoInfo, spec: HlsSpec, limits: VideoLimits, names: _HlsNames
) -> list[RenderedVariant]:
    """Every object of the ladder; a rung the size of the one below shares its encode."""
    encodes = hls_encodes(info, spec)
    encode_of = {(width, height): index for index, (_, width, height) in enumerate(encodes)}
    encoder = _encoder()
    top_width, top_height = encodes[-1][1], encodes[-1][2]

    def variant(name: str, fmt: str, data: bytes, width: int, height: int) -> RenderedVariant:
        return RenderedVariant(
            name=name,
            format=fmt,
            mime=HLS_MIME if fmt == "m3u8" else MP4_MIME,
            width=width,
            height=height,
            data=data,
            spec_version=spec.version,
            encoder=encoder,
            extension=fmt,
        )

    with tempfile.TemporaryDirectory(prefix="mediamill-hls-") as scratch:
        directory = Path(scratch)
        run(
            hls_command(path, info, directory, limits, spec),
            timeout=limits.timeout_seconds,
            memory_bytes=limits.memory_bytes,
            what="the HLS encode",
        )
        master_names = {
            f"rung_{index}.m3u8": names.playlists[rung.height]
            for index, (rung, _, _) in enumerate(encodes)
        }
        master = relink((directory / "master.m3u8").read_text(), master_names)
        variants = [variant(spec.name, "m3u8", master, top_width, top_height)]
        sizes = spec.sizes(info.width, info.height)
        for rung, (width, height) in zip(spec.rungs, sizes, strict=True):
            index = encode_of[(width, height)]
            own_media = {f"rung_{index}.mp4": names.media[rung.height]}
            playlist = relink((directory / f"rung_{index}.m3u8").read_text(), own_media)
            media = (directory / f"rung_{index}.mp4").read_bytes()
            variants.append(variant(spec.rung_name(rung), "m3u8", playlist, width, height))
            variants.append(variant(spec.media_name(rung), "mp4", media, width, height))
    return variants


def _filename(name_of: Callable[[str, str], str], name: str, extension: str) -> str:
    filename = name_of(name, extension)
    if not _FILENAME.fullmatch(filename):
        raise ValueError(f"filename_for gave {filename!r}: playlists need a plain file name")
    return filename


_URI_ATTRIBUTE = re.compile(r'URI="([^"]*)"')


def relink(playlist: str, names: dict[str, str]) -> bytes:
    """The playlist with every reference renamed through ``names``; others are refused.

    FFmpeg names the files it writes; the stored objects have the caller's names. Any
    reference not in ``names`` would point outside the render, so it is an error.
    """

    def rename(reference: str) -> str:
        if reference not in names:
            raise ValueError(
                f"the playlist references {reference!r}, which the render did not make"
            )
        return names[reference]

    lines = []
    for line in playlist.splitlines():
        if line.startswith("#"):
            line = _URI_ATTRIBUTE.sub(lambda match: f'URI="{rename(match.group(1))}"', line)
        elif line.strip():
            line = rename(line.strip())
        lines.append(line)
    return ("\n".join(lines) + "\n").encode()
