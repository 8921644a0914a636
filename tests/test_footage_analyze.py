"""Footage analysis on generated footage with known truth: cuts, blur, black, shake, a face."""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline import settings
from pipeline.bench.samples import colour_clip
from pipeline.bench.synth import Scene, load_photo, match_cuts, view_transform, write_clip
from pipeline.cjk import join_units
from pipeline.footage.analyze import analyze, spoken_between
from pipeline.footage.faces import Box, default_detector
from pipeline.footage.frames import frame_at
from pipeline.footage.model import Analysis, Shot
from pipeline.footage.reframe import contains
from pipeline.media import MediaInfo, probe

SIZE = (320, 180)
FPS = 30
# The astronaut photo's face, in photo pixels (x0, y0, x1, y1), as found on the 512 px original.
FACE = (170, 62, 280, 172)
FACE_PAN = (0.0, -0.2)  # moves the 16:9 window up so the whole face is in the frame

SCENES = [
    Scene("astronaut", 60, 1.0, 1.0, FACE_PAN, FACE_PAN),
    Scene("coffee", 75, 1.0, 1.15, (-0.05, 0.0), (0.05, 0.0)),
    Scene("chelsea", 60, 1.0, 1.1, effect="blur"),
    Scene("rocket", 60, 1.0, 1.1, effect="black"),
    Scene("hubble_deep_field", 75, 1.3, 1.3, effect="shake"),
    Scene("immunohistochemistry", 75, 1.2, 1.0, join="dissolve"),
]


@dataclass
class Footage:
    clip: MediaInfo
    truth_cuts: tuple[int, ...]
    truth_dissolves: tuple[tuple[int, int], ...]
    starts: tuple[int, ...]
    photo: MediaInfo
    portrait: MediaInfo
    cache: Path


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> Footage:
    d = tmp_path_factory.mktemp("footage")
    truth = write_clip(str(d / "clip.mp4"), SCENES, SIZE, FPS)
    Image.fromarray(load_photo("astronaut")[:, :, ::-1]).save(d / "astronaut.jpg")
    colour_clip(str(d / "portrait.mp4"), "teal", 2.0, size=(320, 180), rotate=90, label="x")
    return Footage(
        probe(d / "clip.mp4"),
        truth.cuts,
        truth.dissolves,
        truth.scene_starts,
        probe(d / "astronaut.jpg"),
        probe(d / "portrait.mp4"),
        d / "cache",
    )


@pytest.fixture(scope="module")
def analysis(footage: Footage) -> Analysis:
    return analyze(
        [footage.clip, footage.photo, footage.portrait],
        ["", "宇航员 astronaut portrait", ""],
        cache_dir=footage.cache,
    )


def _shot_at(analysis: Analysis, frame: int) -> Shot:
    t = frame / FPS
    for s in analysis.shots:
        if s.source == 0 and s.start <= t < s.end:
            return s
    raise AssertionError(f"no shot covers frame {frame}")


@pytest.mark.slow
def test_hard_cuts_found_within_two_frames(footage: Footage, analysis: Analysis) -> None:
    found = [round(t * FPS) for t in analysis.files[0].cuts]
    tp, fp = match_cuts(found, footage.truth_cuts, tolerance=2)
    assert tp == len(footage.truth_cuts), (found, footage.truth_cuts)
    assert fp == 0, (found, footage.truth_cuts)


@pytest.mark.slow
def test_dissolve_found_and_not_a_shot(footage: Footage, analysis: Analysis) -> None:
    (a, b), = footage.truth_dissolves  # fmt: skip
    found = [round(t * FPS) for t in analysis.files[0].dissolves]
    assert any(a - FPS // 2 <= f <= b + FPS // 2 for f in found), (found, (a, b))
    after = _shot_at(analysis, b + 10)
    assert after.cut_in == "dissolve"


def test_blurred_and_black_rank_below_sharp(footage: Footage, analysis: Analysis) -> None:
    s = footage.starts
    sharp = [_shot_at(analysis, s[0] + 20), _shot_at(analysis, s[1] + 20)]
    blurred = _shot_at(analysis, s[2] + 20)
    black = _shot_at(analysis, s[3] + 20)
    assert black.parts.exposure < 0.2
    assert blurred.parts.sharpness < min(x.parts.sharpness for x in sharp)
    assert max(blurred.score, black.score) < min(x.score for x in sharp)
    assert black.score < 0.15


def test_shaking_stretch_scores_unstable(footage: Footage, analysis: Analysis) -> None:
    shaky = _shot_at(analysis, footage.starts[4] + 20)
    steady = _shot_at(analysis, footage.starts[1] + 20)
    assert shaky.parts.stability < 0.5 < steady.parts.stability


def _face_in_frame(zoom: float, pan: tuple[float, float]) -> Box:
    ph, pw = load_photo("astronaut").shape[:2]
    scale, tx, ty = view_transform((ph, pw), SIZE, zoom, pan)
    x0, y0, x1, y1 = FACE
    w, h = SIZE
    return Box((scale * x0 + tx) / w, (scale * y0 + ty) / h, scale * (x1 - x0) / w,
               scale * (y1 - y0) / h)  # fmt: skip


def test_vertical_crop_keeps_the_face_in_video(footage: Footage, analysis: Analysis) -> None:
    shot = _shot_at(analysis, footage.starts[0] + 20)
    face = _face_in_frame(1.0, FACE_PAN)
    assert shot.faces >= 1
    crop = shot.crop("9:16")
    assert crop.w < 0.5  # a real vertical window in a landscape frame, not the whole frame
    assert contains(crop, face, slack=0.01), (crop, face)
    # Not merely the centre: the face sits left of the middle in this view.
    assert contains(shot.crop("1:1"), face, slack=0.01)


def test_photo_is_one_shot_with_ken_burns_on_the_face(footage: Footage, analysis: Analysis) -> None:
    photos = [s for s in analysis.shots if s.source == 1]
    assert len(photos) == 1
    shot = photos[0]
    assert shot.kind == "photo" and shot.faces >= 1
    assert shot.text == "宇航员 astronaut portrait"
    x0, y0, x1, y1 = FACE
    face = Box(x0 / 512, y0 / 512, (x1 - x0) / 512, (y1 - y0) / 512)
    start, end = shot.crop("9:16"), shot.crop_end("9:16")
    assert end is not None and end.w < start.w  # zooms in
    assert contains(start, face, 0.01) and contains(end, face, 0.01), (start, end, face)


def test_portrait_rotated_clip_is_framed_upright(footage: Footage, analysis: Analysis) -> None:
    assert (footage.portrait.width, footage.portrait.height) == (180, 320)
    shots = [s for s in analysis.shots if s.source == 2]
    assert shots
    vertical = shots[0].crop("9:16")
    assert vertical.w == pytest.approx(1.0, abs=0.01) and vertical.h == pytest.approx(1.0, abs=0.01)
    wide = shots[0].crop("16:9")
    assert wide.w == pytest.approx(1.0) and wide.h < 0.4


def test_second_analysis_hits_the_cache(footage: Footage, analysis: Analysis) -> None:
    assert not any(f.from_cache for f in analysis.files)
    again = analyze(
        [footage.clip, footage.photo, footage.portrait],
        ["", "宇航员 astronaut portrait", ""],
        cache_dir=footage.cache,
    )
    assert all(f.from_cache for f in again.files)
    assert again.shots == analysis.shots


def test_analysis_json_round_trip(analysis: Analysis, tmp_path: Path) -> None:
    analysis.save(tmp_path / "shots.json")
    assert Analysis.load(tmp_path / "shots.json") == analysis
    text = analysis.to_json()
    assert "宇航员" in text  # Chinese kept readable, not \\u-escaped
    assert Analysis.from_json(text) == analysis
    data = json.loads(text)
    assert {c["aspect"] for c in data["shots"][0]["crops"]} == {"9:16", "1:1", "16:9"}
    assert "keyframes" not in data and data["version"] == 1


class _Word:
    def __init__(self, text: str, start: float, end: float) -> None:
        self.text, self.start, self.end, self.probability = text, start, end, 0.9


class _Transcript:
    def __init__(self, words: list[_Word]) -> None:
        self.language = "zh"
        self.words = tuple(words)
        self.text = join_units([w.text for w in words])


@pytest.mark.slow
def test_speech_inside_a_shot_becomes_its_text(footage: Footage, tmp_path: Path) -> None:
    clip = tmp_path / "talk.mp4"
    write_clip(str(clip), SCENES[:2], SIZE, FPS)
    # The stand-in source has no audio stream, so present it as one that has.
    from dataclasses import replace

    info = replace(probe(clip), has_audio=True)
    calls: list[str] = []

    def transcriber(path: str) -> _Transcript:
        calls.append(path)
        return _Transcript([_Word("你", 0.5, 0.7), _Word("好", 0.7, 0.9), _Word("coffee", 2.6, 3.0),
                            _Word("time", 3.0, 3.3)])  # fmt: skip

    result = analyze([info], ["My trip"], transcriber=transcriber, cache_dir=footage.cache)
    assert calls == [str(clip)]
    first = next(s for s in result.shots if s.start < 0.6)
    second = next(s for s in result.shots if s.start <= 2.8 < s.end)
    assert first.text == "My trip · 你好"
    assert second.text == "My trip · coffee time"


def test_spoken_between_uses_word_middles() -> None:
    words = [_Word("a", 0.0, 0.4), _Word("b", 0.9, 1.3), _Word("c", 1.5, 1.6)]
    assert spoken_between(words, 0.0, 1.0) == "a"
    assert spoken_between(words, 1.0, 2.0) == "b c"
    # The captions' joining rule: no space next to Chinese (pipeline.cjk.join_units).
    chinese = [_Word("我们", 2.0, 2.2), _Word("去", 2.2, 2.3), _Word("Paris", 2.3, 2.7),
               _Word("吧", 2.7, 2.8)]  # fmt: skip
    assert spoken_between(chinese, 2.0, 3.0) == "我们去Paris吧"


def test_face_detector_finds_the_astronaut() -> None:
    img = load_photo("astronaut")
    boxes = default_detector().detect(cv2.resize(img, (256, 256)))
    x0, y0, x1, y1 = (v / 512 for v in FACE)
    centre = [(b.x + b.w / 2, b.y + b.h / 2) for b in boxes]
    assert any(x0 <= cx <= x1 and y0 <= cy <= y1 for cx, cy in centre), boxes
    flat = np.full((144, 256, 3), 128, np.uint8)
    assert default_detector().detect(flat) == []


def test_cli_analyze_json_and_contact_sheet(
    footage: Footage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.cli import main

    sheet = tmp_path / "sheet.jpg"
    code = main(["analyze", footage.clip.path, footage.photo.path, "--caption", "旅行",
                 "--caption", "宇航员", "--json", "--contact-sheet", str(sheet),
                 "--cache-dir", str(footage.cache)])  # fmt: skip
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    shots = data["shots"]
    assert {s["source"] for s in shots} == {0, 1}
    for s in shots:
        assert {"start", "end", "keyframe_time", "score", "parts", "crops", "text"} <= set(s)
        assert os.path.basename(s["path"]) in ("clip.mp4", "astronaut.jpg")
    with Image.open(sheet) as im:
        assert im.format == "JPEG"
        assert im.width >= 4 * 256
        pixels = np.asarray(im.convert("RGB"))
    # Keyframes were drawn (not an empty dark canvas): the sheet has bright, varied content.
    assert pixels.std() > 30


def test_contact_sheet_draws_the_keyframes_analysis_kept(
    footage: Footage, analysis: Analysis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sheet is drawn from the frames analysis already decoded (no second pass over the
    footage), from the cache as well, and each cell shows the right shot's keyframe."""
    from pipeline.footage import contact

    media = [footage.clip, footage.photo, footage.portrait]
    again = analyze(media, ["", "宇航员 astronaut portrait", ""], cache_dir=footage.cache)
    assert all(f.from_cache for f in again.files)
    assert len(again.keyframes) == len(again.shots) and all(again.keyframes)
    truth = []
    for s in analysis.shots:
        img = frame_at(media[s.source], s.keyframe_time, 256)
        scale = min(256 / img.shape[1], 144 / img.shape[0], 1.0)
        size = (round(img.shape[1] * scale), round(img.shape[0] * scale))
        truth.append(cv2.resize(img, size, interpolation=cv2.INTER_AREA))

    def no_decoding(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("the contact sheet decoded the footage again")

    monkeypatch.setattr(contact, "frame_at", no_decoding)
    sheet = contact.contact_sheet(again, media, str(tmp_path / "sheet.jpg"))
    pixels = np.asarray(Image.open(sheet).convert("RGB")).astype(np.float64)
    cell_w, cell_h, th = 256 + 8, 144 + 74 + 8, 144
    for k, want in enumerate(truth):
        x0, y0 = (k % 4) * cell_w + 4, (k // 4) * cell_h + 4
        h, w = want.shape[:2]
        oy, ox = y0 + (th - h) // 2, x0 + (256 - w) // 2
        cell = pixels[oy + 4 : oy + h - 4, ox + 4 : ox + w - 4]
        rgb = want[4:-4, 4:-4, ::-1].astype(np.float64)
        assert np.abs(cell - rgb).mean() < 12, k


def test_cli_analyze_bad_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.cli import main

    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    assert main(["analyze", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "notes.mp4" in err and "Traceback" not in err


@pytest.mark.slow
def test_changed_parameters_miss_the_cache_and_progress_reaches_one(footage: Footage) -> None:
    from pipeline.footage.moments import AnalysisParams

    seen: list[float] = []
    result = analyze(
        [footage.portrait],
        cache_dir=footage.cache,
        params=AnalysisParams(sample_fps=4.0),
        progress=seen.append,
    )
    assert not result.files[0].from_cache
    assert seen and seen[-1] == 1.0
    assert all(b >= a for a, b in itertools.pairwise(seen))


def test_frame_at_returns_the_scene_at_that_time(footage: Footage) -> None:
    from pipeline.footage.frames import frame_at

    # Scene 3 is the blacked-out rocket; scene 1 the coffee photo.
    dark = frame_at(footage.clip, (footage.starts[3] + 30) / FPS, 160)
    bright = frame_at(footage.clip, (footage.starts[1] + 30) / FPS, 160)
    assert dark.shape == (90, 160, 3)
    assert dark.mean() < 15 < bright.mean()


@pytest.mark.slow
def test_short_gif_still_gives_a_shot(tmp_path: Path) -> None:
    from pipeline.bench.samples import animated_gif

    gif = probe(animated_gif(str(tmp_path / "a.gif"), [(200, 30, 30), (30, 200, 30)], 0.6))
    result = analyze([gif], use_cache=False)
    assert len(result.shots) == 1
    shot = result.shots[0]
    assert shot.kind == "animation" and 0 <= shot.start < shot.end <= gif.duration + 0.05


def test_same_footage_sent_twice_is_a_duplicate_and_a_cache_hit(
    footage: Footage, analysis: Analysis, tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "again.mp4"  # a new path, as each Telegram download gets
    shutil.copy(footage.clip.path, copy)
    result = analyze([footage.clip, probe(copy)], cache_dir=footage.cache)
    assert [f.from_cache for f in result.files] == [True, True]  # keyed on content, not path
    first = [s for s in result.shots if s.source == 0]
    second = [s for s in result.shots if s.source == 1]
    assert len(first) == len(second)
    assert {s.path for s in second} == {str(copy)}
    good = [(a, b) for a, b in zip(first, second, strict=True) if max(a.score, b.score) > 0.3]
    assert good
    for a, b in good:
        # One of each pair keeps its score, the other is marked as its duplicate.
        assert min(a.parts.duplicate, b.parts.duplicate) == 0.0
        assert max(a.parts.duplicate, b.parts.duplicate) > 0.5
        assert min(a.score, b.score) < max(a.score, b.score)


def test_cancel_stops_analysis(footage: Footage) -> None:
    import threading

    from pipeline.errors import Cancelled

    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        analyze([footage.clip], use_cache=False, cancel=stop)


@pytest.mark.slow
def test_files_analysed_side_by_side_give_what_one_at_a_time_gives(
    footage: Footage, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.footage.analyze import workers

    media = [footage.clip, footage.portrait, footage.photo]
    monkeypatch.setenv("REELBOT_ANALYSIS_WORKERS", "1")
    assert workers(3) == 1  # the variable, read into the settings
    alone = analyze(media, use_cache=False)
    assert workers(3, 3) == 3
    seen: list[float] = []
    together = analyze(media, use_cache=False, progress=seen.append, max_workers=3)
    assert together.shots == alone.shots and together.keyframes == alone.keyframes
    assert [(f.cuts, f.dissolves) for f in together.files] == [
        (f.cuts, f.dissolves) for f in alone.files
    ]
    assert seen[-1] == 1.0 and all(b >= a for a, b in itertools.pairwise(seen))
    with settings.override(analysis_workers=None):
        assert workers(5) == 3 and workers(1) == 1


@pytest.mark.slow
def test_a_broken_file_among_others_is_left_out_and_the_rest_analysed(
    footage: Footage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from pipeline.footage import moments

    # Probed as a video, but its bytes are garbage from the first frame on (a truncated upload).
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 4096)
    bad = replace(footage.clip, path=str(broken))
    polled: list[str] = []
    real = moments.iter_frames

    def watched(info: MediaInfo, *args: object, **kwargs: object) -> object:
        for frame in real(info, *args, **kwargs):  # type: ignore[arg-type]
            polled.append(info.path)
            yield frame

    monkeypatch.setattr(moments, "iter_frames", watched)
    monkeypatch.setenv("REELBOT_ANALYSIS_WORKERS", "2")
    alone = analyze([footage.clip], use_cache=False)
    whole = len(polled)
    polled.clear()
    both = analyze([bad, footage.clip], use_cache=False)
    assert [(f.failed, f.shots) for f in both.files] == [("corrupt", 0), ("", len(alone.shots))]
    assert "broken.mp4" in both.files[0].message
    assert {s.source for s in both.shots} == {1}
    # The good file was analysed to its end, not stopped because another failed.
    assert polled.count(footage.clip.path) == whole
    # Two broken files and a good one: both left out, each with its own error.
    other = tmp_path / "other.mp4"
    other.write_bytes(b"\x00" * 4096)
    longer = replace(footage.clip, path=str(other), duration=footage.clip.duration * 3)
    three = analyze([footage.clip, bad, longer], use_cache=False)
    assert [f.failed for f in three.files] == ["", "corrupt", "corrupt"]
    assert all(s.source == 0 for s in three.shots)


def test_failed_transcription_keeps_the_footage(footage: Footage) -> None:
    from dataclasses import replace

    from pipeline.errors import ReelbotError

    def broken(path: str) -> _Transcript:
        raise ReelbotError("speech model missing")

    info = replace(footage.portrait, has_audio=True)
    result = analyze([info], ["海边"], transcriber=broken, cache_dir=footage.cache)
    assert result.shots and result.shots[0].text == "海边"


def test_window_pans_after_a_moving_face(tmp_path: Path) -> None:
    # A camera panning across the astronaut: her face moves from right to left in the frame.
    pan0, pan1 = (-0.15, -0.25), (0.15, -0.25)
    clip = tmp_path / "pan.mp4"
    write_clip(str(clip), [Scene("astronaut", 60, 1.6, 1.6, pan0, pan1)], SIZE, FPS)
    result = analyze([probe(clip)], use_cache=False)
    (shot,) = result.shots  # fmt: skip
    start, end = shot.crop("9:16"), shot.crop_end("9:16")
    assert end is not None and end.x < start.x - 0.1
    # Where the face is at the first and last measured samples (0 s and ~1.8 s).
    face0 = _face_in_frame_at(1.6, pan0, pan1, 0.0)
    face1 = _face_in_frame_at(1.6, pan0, pan1, 1.8 / (59 / FPS))
    assert contains(start, face0, slack=0.03), (start, face0)
    assert contains(end, face1, slack=0.03), (end, face1)


def _face_in_frame_at(
    zoom: float, pan0: tuple[float, float], pan1: tuple[float, float], t: float
) -> Box:
    pan = (pan0[0] + (pan1[0] - pan0[0]) * t, pan0[1] + (pan1[1] - pan0[1]) * t)
    return _face_in_frame(zoom, pan)


def test_hdr_footage_is_seen_as_the_video_will_show_it(tmp_path: Path) -> None:
    # Phone HLG footage: storyboard frames and analysis keyframes are tone-mapped like the
    # render, not the grey, flat picture a plain conversion gives.
    from pipeline.bench.samples import HDR_BARS, hdr_clip

    clip = probe(hdr_clip(str(tmp_path / "hlg.mp4"), 1.0, "hlg"))

    def bars(bgr: np.ndarray) -> list[np.ndarray]:
        h, w = bgr.shape[:2]
        return [bgr[h // 3 : 2 * h // 3, (2 * i + 1) * w // 6 - 8 : (2 * i + 1) * w // 6 + 8]
                .reshape(-1, 3).mean(axis=0)[::-1] for i in range(3)]  # fmt: skip

    for got, want in zip(bars(frame_at(clip, 0.5, 384)), HDR_BARS, strict=True):
        assert np.abs(got - want).max() < 12, (got, want)
    result = analyze([clip], use_cache=False)
    key = cv2.imdecode(np.frombuffer(result.keyframes[0], np.uint8), cv2.IMREAD_COLOR)
    for got, want in zip(bars(key), HDR_BARS, strict=True):
        assert np.abs(got - want).max() < 14, (got, want)
