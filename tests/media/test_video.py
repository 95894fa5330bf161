"""Video probe and render: caps, allowlist, poster, web MP4, HLS, and the hostile inputs."""

from __future__ import annotations

import io
import json
import re
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import pyvips

from mediamill.media import video_samples
from mediamill.media.errors import ValidationError
from mediamill.media.ffmpeg import run
from mediamill.media.images import render_image
from mediamill.media.limits import ImageLimits
from mediamill.media.rendition import Rendition
from mediamill.media.sniff import sniff
from mediamill.media.specs import DEFAULT_IMAGE_SPECS, variant_keys
from mediamill.media.video import (
    VideoInfo,
    hls_encodes,
    is_black,
    poster_command,
    poster_size,
    poster_times,
    probe_video,
    relink,
    render_video,
    web_command,
    web_size,
)
from mediamill.media.video_specs import (
    DEFAULT_HLS,
    DEFAULT_WEB_VIDEO,
    HlsRung,
    HlsSpec,
    VideoLimits,
    WebVideoSpec,
    planned_video_variants,
)
from tests.media.helpers import pixels

LIMITS = VideoLimits()
IMAGE_LIMITS = ImageLimits()
SENTINEL = video_samples.SENTINEL_TEXT
QUICK_HLS = HlsSpec(
    rungs=(HlsRung(360, 1000), HlsRung(720, 3500), HlsRung(1080, 7000)),
    segment_seconds=1,
    preset="veryfast",
)


class Clips:
    """Sample uploads, generated on first use and shared by the module's tests."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.made: dict[str, Path] = {}

    def get(self, name: str, make: Callable[[Path], Path]) -> Path:
        if name not in self.made:
            self.made[name] = make(self.folder / name)
        return self.made[name]

    def clip(self, name: str, **options: Any) -> Path:
        return self.get(name, lambda path: video_samples.clip(path, **options))


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return Clips(tmp_path_factory.mktemp("videos"))


@pytest.fixture(scope="module")
def sentinel(clips: Clips) -> Path:
    return clips.get("sentinel.txt", video_samples.sentinel)


def container_of(path: Path) -> str:
    """What the pipeline would pass: the sniffed format, never the name."""
    return sniff(path.read_bytes()[:4096]).format


def render(path: Path, **options: Any) -> Rendition:
    return render_video(
        path, container_of(path), DEFAULT_IMAGE_SPECS, IMAGE_LIMITS, LIMITS, **options
    )


def variant(rendition: Rendition, name: str, fmt: str | None = None) -> Any:
    return next(v for v in rendition.variants if v.name == name and fmt in (None, v.format))


def top_level_boxes(data: bytes) -> list[str]:
    names, offset = [], 0
    while offset + 8 <= len(data):
        size, name = struct.unpack_from(">I4s", data, offset)
        if size == 1:
            size = struct.unpack_from(">Q", data, offset + 8)[0]
        names.append(name.decode("latin-1"))
        offset += size or len(data)
    return names


def streams_of(data: bytes) -> dict[str, Any]:
    """Facts of an encoded output, read back with PyAV."""
    with av.open(io.BytesIO(data)) as media:
        video = media.streams.video[0]
        first = next(media.decode(video))
        return {
            "codec": video.codec_context.name,
            "profile": video.codec_context.profile,
            "pix_fmt": video.codec_context.pix_fmt,
            "size": (first.width, first.height),
            "rotation": first.rotation,
            "audio": [a.codec_context.name for a in media.streams.audio],
            "duration": media.duration / av.time_base if media.duration else 0.0,
            "metadata": dict(media.metadata),
        }


def info(width: int, height: int, rotation: int = 0) -> VideoInfo:
    return VideoInfo("mp4", 2.0, width, height, rotation, 30.0, "h264", None, None, width, height)


# Probe


def test_probe_reads_the_stream_facts(clips: Clips) -> None:
    found = probe_video(clips.clip("plain.mp4"), "mp4", LIMITS)
    assert (found.container, found.width, found.height, found.rotation) == ("mp4", 320, 240, 0)
    assert found.duration == pytest.approx(2.0, abs=0.05)
    assert found.fps == pytest.approx(30.0)
    assert (found.video_codec, found.audio_codec, found.has_audio) == ("h264", "aac", True)
    assert found.bit_rate is not None
    assert found.bit_rate > 0


@pytest.mark.parametrize(
    ("container", "codecs"),
    [("webm", ("vp9", "opus")), ("mkv", ("h264", "aac")), ("mov", ("h264", "aac"))],
)
def test_probe_reads_every_allowed_container(
    clips: Clips, container: str, codecs: tuple[str, str]
) -> None:
    path = clips.clip(f"plain.{container}", container=container)
    assert container_of(path) == container
    found = probe_video(path, container, LIMITS)
    assert (found.video_codec, found.audio_codec) == codecs
    assert (found.width, found.height) == (320, 240)
    assert found.duration == pytest.approx(2.0, abs=0.05)


def test_probe_reports_the_displayed_size_of_a_rotated_clip(clips: Clips) -> None:
    found = probe_video(clips.clip("rotated.mp4", rotation=90), "mp4", LIMITS)
    assert (found.width, found.height, found.rotation) == (240, 320, 90)
    assert (found.coded_width, found.coded_height) == (320, 240)


def test_probe_of_a_clip_without_audio(clips: Clips) -> None:
    found = probe_video(clips.clip("silent.mp4", audio=False), "mp4", LIMITS)
    assert (found.audio_codec, found.has_audio) == (None, False)


@pytest.mark.parametrize(
    ("limits", "code"),
    [
        (VideoLimits(max_seconds=1.5), "too_long"),
        (VideoLimits(max_side=300), "too_many_pixels"),
        (VideoLimits(max_pixels=320 * 240 - 1), "too_many_pixels"),
        (VideoLimits(max_bytes=1000), "too_large"),
    ],
)
def test_probe_refuses_a_clip_over_the_caps(clips: Clips, limits: VideoLimits, code: str) -> None:
    with pytest.raises(ValidationError) as caught:
        probe_video(clips.clip("plain.mp4"), "mp4", limits)
    assert caught.value.code == code


def test_a_header_that_claims_hours_is_too_long(clips: Clips) -> None:
    source = clips.clip("plain.mp4")
    claims = clips.get("claims.mp4", lambda path: video_samples.stretched(source, path))
    assert claims.stat().st_size == source.stat().st_size
    with pytest.raises(ValidationError) as caught:
        render(claims)
    assert caught.value.code == "too_long"
    assert "6000" in caught.value.message


def test_a_side_over_the_default_cap_is_refused(clips: Clips) -> None:
    wide = clips.clip("wide.mp4", width=4112, height=64, seconds=0.2, audio=False)
    with pytest.raises(ValidationError) as caught:
        probe_video(wide, "mp4", LIMITS)
    assert caught.value.code == "too_many_pixels"


def test_the_probe_is_bounded_in_time(clips: Clips) -> None:
    with pytest.raises(ValidationError) as caught:
        probe_video(clips.clip("plain.mp4"), "mp4", VideoLimits(probe_seconds=0.01))
    assert caught.value.code == "timed_out"


# Allowlist and hostile inputs


@pytest.mark.parametrize("container", ["3gp", "avi", "gif", "m3u8"])
def test_only_four_containers_are_accepted(clips: Clips, container: str) -> None:
    with pytest.raises(ValidationError) as caught:
        render_video(clips.clip("plain.mp4"), container, DEFAULT_IMAGE_SPECS, IMAGE_LIMITS, LIMITS)
    assert caught.value.code == "unsupported_type"


def test_an_avi_is_refused_by_content(clips: Clips) -> None:
    avi = clips.get("clip.avi", video_samples.avi)
    assert container_of(avi) == "avi"
    with pytest.raises(ValidationError) as caught:
        render(avi)
    assert caught.value.code == "unsupported_type"


def test_a_container_that_is_not_what_the_caller_said_is_refused(clips: Clips) -> None:
    with pytest.raises(ValidationError) as caught:
        probe_video(clips.clip("plain.mp4"), "webm", LIMITS)
    assert caught.value.code == "unsupported_type"
    assert "mp4" in caught.value.message


def test_a_file_without_a_video_stream_is_refused(clips: Clips) -> None:
    tone = clips.get("tone.m4a", video_samples.audio_only)
    with pytest.raises(ValidationError) as caught:
        render_video(tone, "mp4", DEFAULT_IMAGE_SPECS, IMAGE_LIMITS, LIMITS)
    assert caught.value.code == "unsupported_type"
    assert "no video stream" in caught.value.message


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ValidationError) as caught:
        probe_video(empty, "mp4", LIMITS)
    assert caught.value.code == "empty"


@pytest.mark.parametrize("name", ["playlist.m3u8", "playlist.mp4", "list.ffconcat", "list.mp4"])
@pytest.mark.parametrize("container", ["mp4", "mov", "webm", "mkv"])
def test_a_playlist_under_any_name_fails_and_leaks_nothing(
    clips: Clips, sentinel: Path, name: str, container: str
) -> None:
    make = video_samples.ffconcat if name.startswith("list") else video_samples.playlist
    hostile = clips.get(name, lambda path: make(path, sentinel))
    assert str(sentinel.resolve()) in hostile.read_text()
    with pytest.raises(ValidationError) as caught:
        render_video(hostile, container, DEFAULT_IMAGE_SPECS, IMAGE_LIMITS, LIMITS, hls=QUICK_HLS)
    assert caught.value.code == "unsupported_type"
    assert str(sentinel) not in caught.value.message


def test_a_playlist_that_gets_past_the_sniffer_still_fails_in_ffmpeg(
    clips: Clips, sentinel: Path, tmp_path: Path
) -> None:
    """Defence in depth: the commands themselves refuse a playlist, whatever called them."""
    hostile = clips.get("playlist.mp4", lambda path: video_samples.playlist(path, sentinel))
    fake = info(320, 240)
    for args in (
        poster_command(hostile, fake, 0.0, (320, 240)),
        web_command(hostile, fake, tmp_path / "out.mp4", LIMITS),
    ):
        with pytest.raises(ValidationError) as caught:
            run(args, timeout=30, what="the playlist")
        assert caught.value.code == "corrupt"
    assert not (tmp_path / "out.mp4").exists()


def test_an_mp4_whose_pictures_live_in_another_file_fails(clips: Clips) -> None:
    source = clips.clip("plain.mp4")
    hostile = clips.get(
        "reference.mp4", lambda path: video_samples.external_reference(source, path, source)
    )
    with pytest.raises(ValidationError) as caught:
        render(hostile)
    assert caught.value.code == "corrupt"


@pytest.mark.parametrize("faststart", [False, True])
def test_a_truncated_mp4_is_corrupt(clips: Clips, tmp_path: Path, faststart: bool) -> None:
    source = clips.clip("plain.mp4")
    if faststart:
        source = variant(render(source, only={DEFAULT_WEB_VIDEO.variant_id}), "web").data
        whole = tmp_path / "whole.mp4"
        whole.write_bytes(source)
        source = whole
    cut = video_samples.truncated(source, tmp_path / "cut.mp4", keep=0.6)
    with pytest.raises(ValidationError) as caught:
        render(cut)
    assert caught.value.code == "corrupt"


def test_renders_are_bounded_in_time(clips: Clips) -> None:
    longer = clips.clip("longer.mp4", width=640, height=480, seconds=6)
    with pytest.raises(ValidationError) as caught:
        render_video(
            longer,
            "mp4",
            DEFAULT_IMAGE_SPECS,
            IMAGE_LIMITS,
            VideoLimits(timeout_seconds=0.3),
        )
    assert caught.value.code == "timed_out"


# Poster


def test_poster_variants_carry_the_image_spec_names(clips: Clips) -> None:
    rendition = render(clips.clip("plain.mp4"))
    posters = {v.variant_id for v in rendition.variants if v.name != "web"}
    assert posters == variant_keys(DEFAULT_IMAGE_SPECS, has_alpha=False)
    assert rendition.has_alpha is False
    optimized = variant(rendition, "optimized", "jpeg")
    assert (optimized.width, optimized.height) == (320, 240)
    assert (
        variant(rendition, "thumb", "webp").width,
        variant(rendition, "tiny", "jpeg").width,
    ) == (
        240,
        150,
    )


def test_the_placeholder_is_the_posters_thumbhash(clips: Clips) -> None:
    path = clips.clip("plain.mp4")
    rendition = render(path, only=set())
    found = probe_video(path, "mp4", LIMITS)
    seconds = rendition.metadata["poster_seconds"]
    assert seconds == pytest.approx(0.2)
    png = run(
        poster_command(path, found, seconds, poster_size(found, [])),
        timeout=30,
        what="poster",
    )
    assert rendition.placeholder == render_image(png, [], IMAGE_LIMITS).placeholder
    assert rendition.variants == ()


def test_the_poster_skips_a_black_opening(clips: Clips) -> None:
    rendition = render(clips.clip("fade-in.mp4", seconds=3, black_seconds=1.5))
    assert rendition.metadata["poster_seconds"] >= 1.5
    still = pixels(variant(rendition, "optimized", "jpeg").data)
    assert np.percentile(still, 98) > 100


def test_an_all_black_clip_still_gets_a_poster(clips: Clips) -> None:
    rendition = render(clips.clip("black.mp4", all_black=True))
    assert rendition.metadata["poster_seconds"] == pytest.approx(0.2)
    still = pixels(variant(rendition, "optimized", "jpeg").data)
    assert still.max() < 32
    assert rendition.placeholder


def test_black_frames_are_recognised() -> None:
    black = pyvips.Image.black(64, 48, bands=3).cast("uchar")
    assert is_black(black.pngsave_buffer())
    speck = black.draw_rect([255, 255, 255], 0, 0, 16, 48, fill=True)
    assert not is_black(speck.pngsave_buffer())


def test_poster_times_start_at_ten_percent_and_end_at_the_start() -> None:
    assert poster_times(10.0) == (1.0, 2.5, 4.0, 5.5, 7.0, 8.5, 0.0)
    assert poster_times(0.0) == (0.0,)


def test_the_poster_frame_is_only_as_large_as_the_specs_need() -> None:
    assert poster_size(info(1920, 1080), DEFAULT_IMAGE_SPECS) == (1200, 675)
    assert poster_size(info(320, 240), DEFAULT_IMAGE_SPECS) == (320, 240)
    assert poster_size(info(1920, 1080), []) == (100, 57)


# Web MP4


def test_the_web_mp4_is_h264_high_with_aac_and_moov_first(clips: Clips) -> None:
    rendition = render(clips.clip("plain.mp4", comment="mediamill-private-comment"))
    web = variant(rendition, "web")
    assert (web.format, web.mime, web.extension) == ("mp4", "video/mp4", "mp4")
    assert web.spec_version == DEFAULT_WEB_VIDEO.version
    facts = streams_of(web.data)
    assert (facts["codec"], facts["profile"], facts["pix_fmt"]) == ("h264", "High", "yuv420p")
    assert facts["audio"] == ["aac"]
    assert facts["duration"] == pytest.approx(2.0, abs=0.1)
    boxes = top_level_boxes(web.data)
    assert boxes.index("moov") < boxes.index("mdat")
    assert b"mediamill-private-comment" not in web.data
    assert (rendition.metadata["web_width"], rendition.metadata["web_height"]) == (320, 240)


def test_a_clip_without_audio_gets_a_web_mp4_without_audio(clips: Clips) -> None:
    web = variant(render(clips.clip("silent.mp4", audio=False)), "web")
    assert streams_of(web.data)["audio"] == []


def test_the_web_mp4_is_turned_upright(clips: Clips) -> None:
    rendition = render(clips.clip("rotated.mp4", rotation=90))
    web = variant(rendition, "web")
    facts = streams_of(web.data)
    assert facts["size"] == (web.width, web.height) == (240, 320)
    assert facts["rotation"] == 0
    assert variant(rendition, "optimized", "jpeg").width == 240
    assert rendition.metadata["rotation"] == 90


@pytest.mark.parametrize("container", ["webm", "mkv", "mov"])
def test_every_container_renders(clips: Clips, container: str) -> None:
    path = clips.clip(f"plain.{container}", container=container)
    rendition = render(path)
    assert rendition.format == container
    facts = streams_of(variant(rendition, "web").data)
    assert (facts["codec"], facts["audio"]) == ("h264", ["aac"])


def test_a_large_clip_is_brought_to_1080p(clips: Clips) -> None:
    big = clips.clip("big.mp4", width=2560, height=1440, seconds=0.5, fps=10, audio=False)
    rendition = render(big, only={DEFAULT_WEB_VIDEO.variant_id})
    web = variant(rendition, "web")
    assert (web.width, web.height) == streams_of(web.data)["size"] == (1920, 1080)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ((3840, 2160), (1920, 1080)),
        ((2160, 3840), (1080, 1920)),
        ((1280, 720), (1280, 720)),
        ((320, 240), (320, 240)),
        ((321, 241), (320, 240)),
        ((4096, 1024), (1920, 480)),
        ((1440, 1440), (1080, 1080)),
        ((1080, 2400), (864, 1920)),
    ],
)
def test_web_size_fits_1080p_keeps_aspect_never_upscales(
    source: tuple[int, int], expected: tuple[int, int]
) -> None:
    width, height = web_size(info(*source))
    assert (width, height) == expected
    assert width % 2 == 0
    assert height % 2 == 0
    assert width / height == pytest.approx(source[0] / source[1], rel=0.01)


def test_the_web_spec_is_data_with_a_version() -> None:
    assert DEFAULT_WEB_VIDEO.version == WebVideoSpec().version
    assert re.fullmatch(r"[0-9a-f]{12}", DEFAULT_WEB_VIDEO.version)
    assert WebVideoSpec(crf=20).version != DEFAULT_WEB_VIDEO.version
    assert DEFAULT_WEB_VIDEO.variant_id == ("web", "mp4", DEFAULT_WEB_VIDEO.version)
    for bad, message in [
        ({"crf": 60}, "crf"),
        ({"preset": "warp"}, "preset"),
        ({"max_width": 1919}, "even"),
        ({"name": "Web!"}, "name"),
    ]:
        with pytest.raises(ValueError, match=message):
            WebVideoSpec(**bad)


def test_limits_are_validated() -> None:
    assert (LIMITS.max_seconds, LIMITS.max_side, LIMITS.max_pixels) == (600, 4096, 4096 * 2304)
    assert LIMITS.timeout_seconds == 300
    for bad in ({"max_seconds": 0}, {"timeout_seconds": -1}, {"max_bytes": True}):
        with pytest.raises(ValueError, match=f"VideoLimits.{next(iter(bad))}"):
            VideoLimits(**bad)


# HLS


def test_the_hls_ladder_plays_from_the_callers_file_names(clips: Clips, tmp_path: Path) -> None:
    path = clips.clip("hd.mp4", width=1280, height=720, seconds=2)
    rendition = render(path, hls=QUICK_HLS, filename_for=lambda name, ext: f"f00d-{name}.{ext}")
    ladder = {v.name: v for v in rendition.variants if v.name.startswith("hls")}
    assert {v.variant_id for v in ladder.values()} == QUICK_HLS.variant_ids
    for item in ladder.values():
        (tmp_path / f"f00d-{item.name}.{item.extension}").write_bytes(item.data)
        assert item.mime == (
            "video/mp4" if item.format == "mp4" else "application/vnd.apple.mpegurl"
        )
    sizes = {name: (v.width, v.height) for name, v in ladder.items() if v.format == "mp4"}
    assert sizes == {
        "hls-360-media": (640, 360),
        "hls-720-media": (1280, 720),
        "hls-1080-media": (1280, 720),  # never upscaled
    }
    for item in ladder.values():
        if item.format != "m3u8":
            continue
        text = item.data.decode()
        references = [line for line in text.splitlines() if line and not line.startswith("#")]
        references += re.findall(r'URI="([^"]+)"', text)
        assert references
        assert all((tmp_path / ref).exists() for ref in references)
        assert all(ref.startswith("f00d-hls") for ref in references)
        if item.name != "hls":
            assert set(references) == {f"f00d-{item.name}-media.mp4"}
            media = ladder[f"{item.name}-media"].data
            for length, start in re.findall(r"BYTERANGE[:=]\"?(\d+)@(\d+)", text):
                assert int(start) + int(length) <= len(media)
    with av.open(str(tmp_path / "f00d-hls.m3u8")) as master:
        assert sorted(s.height for s in master.streams.video) == [360, 720]
        frames = sum(1 for _ in master.decode(video=0))
    assert frames == 60
    with av.open(str(tmp_path / "f00d-hls-1080.m3u8")) as rung:
        assert (rung.streams.video[0].width, sum(1 for _ in rung.decode(video=0))) == (1280, 60)
    assert rendition.metadata["hls_rungs"] == [
        {"name": "hls-360", "width": 640, "height": 360},
        {"name": "hls-720", "width": 1280, "height": 720},
        {"name": "hls-1080", "width": 1280, "height": 720},
    ]


def test_a_rung_taller_than_the_source_reuses_the_encode_below() -> None:
    assert [(w, h) for _, w, h in hls_encodes(info(1920, 1080), DEFAULT_HLS)] == [
        (640, 360),
        (1280, 720),
        (1920, 1080),
    ]
    assert [(w, h) for _, w, h in hls_encodes(info(1280, 720), DEFAULT_HLS)] == [
        (640, 360),
        (1280, 720),
    ]
    assert DEFAULT_HLS.sizes(720, 1280) == ((360, 640), (720, 1280), (720, 1280))
    assert DEFAULT_HLS.sizes(320, 240) == ((320, 240),) * 3


def test_hls_specs_are_validated_and_versioned() -> None:
    assert DEFAULT_HLS.version == HlsSpec().version != QUICK_HLS.version
    with pytest.raises(ValueError, match="at least one rung"):
        HlsSpec(rungs=())
    with pytest.raises(ValueError, match="increasing"):
        HlsSpec(rungs=(HlsRung(720, 3000), HlsRung(360, 800)))
    with pytest.raises(ValueError, match="even"):
        HlsRung(361, 800)


def test_playlists_may_only_reference_what_the_render_made() -> None:
    assert relink('#EXT-X-MAP:URI="a.mp4"\na.mp4\n', {"a.mp4": "x.mp4"}) == (
        b'#EXT-X-MAP:URI="x.mp4"\nx.mp4\n'
    )
    with pytest.raises(ValueError, match="did not make"):
        relink("#EXTM3U\nfile:///etc/passwd\n", {"a.mp4": "x.mp4"})


def test_file_names_for_playlists_must_be_plain(clips: Clips) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        render(
            clips.clip("plain.mp4"),
            hls=QUICK_HLS,
            filename_for=lambda name, ext: f"../{name}.{ext}",
        )


# Planning and `only`


def test_planned_variants_are_exactly_what_a_full_render_makes(clips: Clips) -> None:
    for name, size in (("hd.mp4", (1280, 720)), ("plain.mp4", (320, 240))):
        path = clips.clip(name, width=size[0], height=size[1], seconds=2)
        rendition = render(path, hls=QUICK_HLS)
        planned = planned_video_variants(DEFAULT_IMAGE_SPECS, DEFAULT_WEB_VIDEO, QUICK_HLS)
        assert {v.variant_id for v in rendition.variants} == planned
    assert planned_video_variants(DEFAULT_IMAGE_SPECS) == variant_keys(
        DEFAULT_IMAGE_SPECS, has_alpha=False
    ) | {DEFAULT_WEB_VIDEO.variant_id}


def test_only_limits_the_render(clips: Clips) -> None:
    path = clips.clip("hd.mp4", width=1280, height=720, seconds=2)
    thumb = next(s for s in DEFAULT_IMAGE_SPECS if s.name == "thumb")
    rung = ("hls-360-media", "mp4", QUICK_HLS.version)
    rendition = render(path, hls=QUICK_HLS, only={("thumb", "webp", thumb.version), rung})
    assert {v.variant_id for v in rendition.variants} == {("thumb", "webp", thumb.version), rung}
    assert "web_width" not in rendition.metadata
    assert rendition.placeholder


def test_metadata_is_json_ready(clips: Clips) -> None:
    rendition = render(clips.clip("plain.mp4"), only=set())
    assert rendition.kind == "video"
    assert json.loads(json.dumps(rendition.metadata)) == rendition.metadata
    assert set(rendition.metadata) == {
        "duration",
        "fps",
        "video_codec",
        "audio_codec",
        "has_audio",
        "rotation",
        "bit_rate",
        "poster_seconds",
    }


def test_planning_loads_no_video_or_image_library() -> None:
    """The orchestrator imports video_specs; PyAV, FFmpeg and libvips stay in the workers."""
    code = (
        "import sys, mediamill.media.video_specs; "
        "print(sorted({'av', 'pyvips', 'ffmpeg', 'numpy'} & set(sys.modules)))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"
