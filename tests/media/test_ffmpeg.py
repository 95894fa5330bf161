"""The hardened FFmpeg runner: forced demuxers, file-only protocols, limits, no references."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import ffmpeg as ffmpeg_python
import pytest

from mediamill.media import ffmpeg, video_samples
from mediamill.media.errors import ValidationError
from mediamill.media.sandbox import MIB

SENTINEL = video_samples.SENTINEL_TEXT


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a clip, a sentinel and the playlists and references that point at it."""
    folder = tmp_path_factory.mktemp("ffmpeg")
    source = video_samples.clip(folder / "clip.mp4", seconds=2)
    target = video_samples.sentinel(folder / "sentinel.txt")
    video_samples.playlist(folder / "playlist.m3u8", target)
    video_samples.playlist(folder / "playlist.mp4", target)
    video_samples.ffconcat(folder / "list.ffconcat", target)
    video_samples.external_reference(source, folder / "reference.mp4", source)
    return folder


def null_command(path: Path, container: str = "mp4") -> list[str]:
    """Decode every stream of ``path`` through the hardened input, writing nothing."""
    return ffmpeg.command(ffmpeg_python.output(ffmpeg.open_input(path, container), "-", f="null"))


def grab_command(path: Path, container: str = "mp4") -> list[str]:
    """Copy the first video stream's packets to stdout, so any bytes read would show."""
    source = ffmpeg.open_input(path, container)
    return ffmpeg.command(ffmpeg_python.output(source["v:0"], "pipe:1", c="copy", f="matroska"))


def test_the_binary_runs_and_names_its_release() -> None:
    assert Path(ffmpeg.binary()).exists()
    assert ffmpeg.version().startswith(("n", "4", "5", "6", "7", "8", "9"))


@pytest.mark.parametrize(
    ("container", "demuxer"),
    [("mp4", "mov"), ("mov", "mov"), ("3gp", "mov"), ("webm", "matroska"), ("mkv", "matroska")],
)
def test_the_demuxer_is_forced_from_the_sniffed_container(container: str, demuxer: str) -> None:
    assert ffmpeg.demuxer_for(container) == demuxer
    options = ffmpeg.demuxer_options(container)
    assert options["protocol_whitelist"] == "file"
    assert options["format_whitelist"] == demuxer
    assert options.get("enable_drefs", "0") == "0"


@pytest.mark.parametrize("container", ["avi", "hls", "m3u8", "concat", "gif", ""])
def test_other_containers_never_reach_ffmpeg(container: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ffmpeg.demuxer_for(container)
    assert caught.value.code == "unsupported_type"


def test_every_built_command_carries_the_hardening(media: Path) -> None:
    args = null_command(media / "clip.mp4")
    before_input = args[: args.index("-i")]
    for flag, value in [
        ("-f", "mov"),
        ("-protocol_whitelist", "file"),
        ("-format_whitelist", "mov"),
        ("-enable_drefs", "0"),
        ("-use_absolute_path", "0"),
    ]:
        assert before_input[before_input.index(flag) + 1] == value
    assert args[args.index("-i") + 1] == f"file:{(media / 'clip.mp4').resolve()}"
    assert {"-nostdin", "-hide_banner", "-xerror"} <= set(args)


@pytest.mark.parametrize(
    "options",
    [
        ["-f", "hls"],
        ["-f", "concat", "-safe", "0"],
        ["-f", "lavfi"],
        [],
        ["-f", "mov", "-protocol_whitelist", "file,http,tcp", "-format_whitelist", "mov"],
        ["-f", "mov", "-format_whitelist", "mov", "-enable_drefs", "0"],
        ["-f", "mov", "-protocol_whitelist", "file", "-enable_drefs", "0"],
        ["-f", "mov", "-protocol_whitelist", "file", "-format_whitelist", "mov,hls"],
        ["-f", "mov", "-protocol_whitelist", "file", "-format_whitelist", "mov"],
        [
            "-f",
            "mov",
            "-protocol_whitelist",
            "file",
            "-format_whitelist",
            "mov",
            "-enable_drefs",
            "1",
        ],
    ],
)
def test_commands_with_unhardened_inputs_are_refused(options: list[str], media: Path) -> None:
    args = [ffmpeg.binary(), *options, "-i", str(media / "playlist.m3u8"), "-f", "null", "-"]
    with pytest.raises(ValueError, match="input"):
        ffmpeg.check_command(args)
    with pytest.raises(ValueError, match="input"):
        ffmpeg.run(args, timeout=10, what="a refused command")


@pytest.mark.parametrize("name", ["playlist.m3u8", "playlist.mp4", "list.ffconcat"])
def test_a_playlist_forced_through_the_mov_demuxer_is_corrupt(media: Path, name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ffmpeg.run(grab_command(media / name), timeout=30, what=name)
    assert caught.value.code == "corrupt"
    assert "Invalid data" in caught.value.message
    with pytest.raises(ValidationError) as probed:
        ffmpeg.read_streams(str(media / name), "mp4", 600)
    assert probed.value.code == "corrupt"


def test_the_playlist_is_corrupt_for_the_matroska_demuxer_too(media: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        ffmpeg.run(grab_command(media / "playlist.m3u8", "mkv"), timeout=30, what="playlist")
    assert caught.value.code == "corrupt"


def test_the_external_reference_sample_really_reads_its_target(media: Path) -> None:
    """Control: with references on, FFmpeg decodes pictures that live only in the target."""
    reference = media / "reference.mp4"
    unhardened = subprocess.run(
        [
            ffmpeg.binary(),
            *("-nostdin", "-hide_banner", "-loglevel", "error"),
            *("-enable_drefs", "1", "-use_absolute_path", "1"),
            *("-i", str(reference), "-map", "0:v", "-f", "framemd5", "-"),
        ],
        capture_output=True,
        check=True,
    )
    assert unhardened.stdout.count(b"\n0,") == 60  # every picture came from the target
    hardened = subprocess.run(null_command(reference), capture_output=True, check=False)
    assert hardened.returncode != 0


def test_an_external_reference_is_never_followed(media: Path) -> None:
    reference = media / "reference.mp4"
    with pytest.raises(ValidationError) as decoded:
        ffmpeg.run(null_command(reference), timeout=30, what="reference")
    assert decoded.value.code == "corrupt"
    copied = ffmpeg.run(grab_command(reference), timeout=30, what="reference")
    assert len(copied) < 1024  # headers only: the track's 200 KB of pictures stayed out
    with pytest.raises(ValidationError) as probed:
        ffmpeg.read_streams(str(reference), "mp4", 600)
    assert probed.value.code == "corrupt"


def test_a_run_returns_stdout(media: Path) -> None:
    data = ffmpeg.run(grab_command(media / "clip.mp4"), timeout=30, what="clip")
    assert data.startswith(b"\x1a\x45\xdf\xa3")  # a Matroska stream of the copied packets
    assert SENTINEL not in data


@pytest.fixture(scope="module")
def slow_encode(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """An encode that takes seconds: a 6 s 640x480 clip at x264's slowest preset."""
    folder = tmp_path_factory.mktemp("slow")
    clip = video_samples.clip(folder / "long.mp4", width=640, height=480, seconds=6)
    source = ffmpeg.open_input(clip, "mp4")
    encode = ffmpeg_python.output(
        source["v:0"], str(folder / "out.mp4"), vcodec="libx264", preset="veryslow"
    )
    return ffmpeg.command(encode.overwrite_output())


def test_a_run_past_its_timeout_is_killed(slow_encode: list[str]) -> None:
    started = time.monotonic()
    with pytest.raises(ValidationError) as caught:
        ffmpeg.run(slow_encode, timeout=0.3, what="the slow encode")
    assert caught.value.code == "timed_out"
    assert time.monotonic() - started < 3
    assert "0.3 s" in caught.value.message


def test_a_run_over_its_memory_cap_is_killed(slow_encode: list[str]) -> None:
    started = time.monotonic()
    with pytest.raises(ValidationError) as caught:
        ffmpeg.run(slow_encode, timeout=60, memory_bytes=8 * MIB, what="the slow encode")
    assert caught.value.code == "out_of_memory"
    assert time.monotonic() - started < 3


def test_failure_reasons_name_no_paths(media: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        ffmpeg.run(null_command(media / "playlist.mp4"), timeout=30, what="playlist")
    assert str(media) not in caught.value.message
    assert "0x" not in caught.value.message
    assert len(caught.value.message) < 400


def test_the_probe_reads_the_first_picture_and_rotation(tmp_path: Path) -> None:
    clip = video_samples.clip(tmp_path / "rotated.mov", container="mov", rotation=90)
    facts = ffmpeg.read_streams(str(clip), "mov", 600)
    assert (facts["width"], facts["height"]) == (320, 240)
    assert facts["display_rotation"] == -90.0  # counter-clockwise, as FFmpeg reports it
    assert facts["video_codec"] == "h264"
    assert facts["audio_codec"] == "aac"
