"""Probing: facts read once with PyAV, rotation honoured, every bad file a typed error."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.bench import samples
from pipeline.cli import main
from pipeline.errors import MediaError
from pipeline.media import probe


def test_video_facts(media_dir: Path) -> None:
    info = probe(media_dir / "red.mp4")
    assert info.kind == "video"
    assert (info.width, info.height) == (320, 180)
    assert info.duration == pytest.approx(3.0, abs=0.05)
    assert info.fps == pytest.approx(30.0)
    assert info.rotation == 0
    assert info.has_audio
    assert not probe(media_dir / "blue.mp4").has_audio


def test_portrait_phone_video_reports_displayed_size(media_dir: Path) -> None:
    info = probe(media_dir / "portrait.mp4")
    assert info.rotation in (90, 270)
    assert (info.width, info.height) == (180, 320)


def test_photo_and_animation(media_dir: Path) -> None:
    photo = probe(media_dir / "green.jpg")
    assert (photo.kind, photo.width, photo.height, photo.duration) == ("photo", 640, 480, 0.0)
    gif = probe(media_dir / "magenta.gif")
    assert gif.kind == "animation"
    assert gif.duration == pytest.approx(0.5, abs=0.1)


def test_exif_rotated_photo(tmp_path: Path) -> None:
    from PIL import Image

    img = Image.new("RGB", (400, 200), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": a phone photo taken upright
    img.save(tmp_path / "upright.jpg", exif=exif)
    info = probe(tmp_path / "upright.jpg")
    assert (info.width, info.height) == (200, 400)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: None, "missing"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("just some notes, not a video"), "not_media"),
        (lambda p: samples.tone_wav(str(p.with_suffix(".wav")), 1.0), "audio_only"),
    ],
    ids=["missing", "empty", "text", "audio-only"],
)
def test_bad_files_raise_typed_errors(tmp_path: Path, make, reason: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "clip.mp4"
    make(path)
    if reason == "audio_only":
        path = path.with_suffix(".wav")
    with pytest.raises(MediaError) as err:
        probe(path)
    assert err.value.reason == reason
    assert err.value.key == f"media_{reason}"
    assert path.name in str(err.value)


def test_truncated_video_is_corrupt(tmp_path: Path, media_dir: Path) -> None:
    data = (media_dir / "red.mp4").read_bytes()
    broken = tmp_path / "broken.mp4"
    # Keep the header, drop the media data: the container opens but nothing decodes.
    broken.write_bytes(data[:600])
    with pytest.raises(MediaError) as err:
        probe(broken)
    assert err.value.reason in ("corrupt", "not_media")


def test_zero_duration_video(tmp_path: Path) -> None:
    import subprocess

    from pipeline.ffmpeg import ffmpeg_exe

    def make(name: str, frames: int) -> Path:
        path = tmp_path / name
        subprocess.run(
            [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "color=red:s=64x64:r=30",
             "-frames:v", str(frames), "-c:v", "libx264", str(path)], check=True,
        )  # fmt: skip
        return path

    with pytest.raises(MediaError) as err:
        probe(make("one.mp4", 1))  # a single frame: 33 ms, nothing to cut a shot from
    assert err.value.reason == "zero_duration"
    with pytest.raises(MediaError) as err:
        probe(make("none.mp4", 0))  # a container with no stream at all
    assert err.value.reason == "empty"


def test_probe_command_json(media_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    code = main(["probe", str(media_dir / "red.mp4"), str(media_dir / "nope.mp4"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    assert out[0]["kind"] == "video"
    assert out[1]["error"] == "media_missing"
