"""The renderer, checked by decoding what it writes."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.errors import Cancelled, RenderError
from pipeline.media import probe
from pipeline.plan import (
    AudioTrack,
    CaptionCue,
    CaptionStyle,
    EditPlan,
    OutputSpec,
    Rect,
    Segment,
    WordTiming,
    cover_rect,
)
from pipeline.render.renderer import frame_counts, render
from pipeline.render.subtitles import wrap
from tests.conftest import closest_colour, frame_at, loudness

W, H = 360, 640


def _plan(media_dir: Path, **kw: object) -> EditPlan:
    names = ["red.mp4", "blue.mp4", "green.jpg", "magenta.gif"]
    sources = tuple(probe(media_dir / n) for n in names)
    segs = (
        Segment(0, 0.5, 1.5, cover_rect(320, 180, W, H)),
        Segment(1, 1.0, 2.2, cover_rect(320, 180, W, H)),
        Segment(2, 0.0, 1.0, cover_rect(640, 480, W, H), crop_end=Rect(0.2, 0.1, 0.3, 0.8)),
        Segment(3, 0.0, 0.8, cover_rect(160, 120, W, H)),  # loops the 0.5 s GIF
    )
    cues = (
        CaptionCue("你好，这是中文字幕", 0.1, 0.9),
        CaptionCue("Hello, English caption", 1.1, 2.1),
    )
    args: dict[str, object] = {
        "sources": sources,
        "segments": segs,
        "output": OutputSpec(width=W, height=H),
        "captions": cues,
        "audio": (AudioTrack(str(media_dir / "narration.wav"), "narration"),),
    }
    args.update(kw)
    return EditPlan(**args)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def rendered(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[EditPlan, Path]:
    out = tmp_path_factory.mktemp("render") / "out.mp4"
    plan = _plan(media_dir)
    fractions: list[float] = []
    result = render(plan, out, progress=fractions.append)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert result.encoder == "libx264"
    return plan, out


@pytest.mark.slow
def test_streams_size_fps_and_duration(rendered: tuple[EditPlan, Path]) -> None:
    plan, out = rendered
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert (v.codec_context.name, v.width, v.height) == ("h264", W, H)
        assert v.codec_context.pix_fmt == "yuv420p"
        assert float(v.average_rate) == pytest.approx(30.0)
        assert a.codec_context.name == "aac"
        frames = sum(1 for _ in c.decode(video=0))
    assert frames == sum(frame_counts(plan))
    assert abs(frames / 30.0 - plan.duration) <= 1 / 30.0
    # +faststart: the index (moov) comes before the media data (mdat).
    head = out.read_bytes()[:200_000]
    assert head.find(b"moov") < head.find(b"mdat")


def test_each_segment_shows_its_source(rendered: tuple[EditPlan, Path]) -> None:
    plan, out = rendered
    expected = ["red", "blue", "green", "magenta"]
    t = 0.0
    for seg, name in zip(plan.segments, expected, strict=True):
        mid = t + seg.duration / 2
        frame = frame_at(out, mid)
        # Look at the middle band: captions sit low, the photo's white square sits top-left.
        band = frame[H // 3 : H // 2, W // 2 :]
        assert closest_colour(band) == name, f"segment at {mid:.2f}s"
        t += seg.duration


def test_cuts_fall_on_exact_frames(media_dir: Path) -> None:
    plan = _plan(media_dir)
    counts = frame_counts(plan)
    edges = np.cumsum(counts)
    bounds = np.cumsum([s.duration for s in plan.segments])
    assert np.all(np.abs(edges - np.round(bounds * 30)) == 0)


def _caption_area(frame: np.ndarray) -> np.ndarray:
    # Captions sit above the bottom 20% (platform buttons): look at 55%..80% of the height.
    return frame[int(H * 0.55) : int(H * 0.80)].astype(np.int16)


@pytest.mark.parametrize(("t_on", "t_off"), [(0.5, 0.98), (1.6, 2.15)], ids=["zh", "en"])
def test_captions_are_burned_in(rendered: tuple[EditPlan, Path], t_on: float, t_off: float) -> None:
    _, out = rendered
    # Same segment, cue shown vs not shown: the difference is the caption and nothing else.
    on, off = _caption_area(frame_at(out, t_on)), _caption_area(frame_at(out, t_off))
    changed = np.abs(on - off).max(axis=2) > 60
    assert changed.mean() > 0.01, "no caption pixels"
    white = (on.min(axis=2) > 200) & changed
    assert white.sum() > 150, "caption glyphs are not white"
    # And nothing is drawn in the bottom 20% (platform safe area).
    bottom_on = frame_at(out, t_on)[int(H * 0.8) :].astype(np.int16)
    bottom_off = frame_at(out, t_off)[int(H * 0.8) :].astype(np.int16)
    assert (np.abs(bottom_on - bottom_off).max(axis=2) > 60).mean() < 0.001


def test_loudness_normalised(rendered: tuple[EditPlan, Path]) -> None:
    _, out = rendered
    integrated, peak = loudness(out)
    assert integrated == pytest.approx(-14.0, abs=1.0)
    assert peak <= -0.5  # -1 dBTP target; AAC decoding may add a few tenths


def test_cover_is_a_frame_of_the_video(rendered: tuple[EditPlan, Path]) -> None:
    _, out = rendered
    cover = out.with_suffix(".cover.jpg")
    with av.open(str(cover)) as c:
        img = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert img.shape[:2] == (H, W)
    assert closest_colour(img[H // 3 : H // 2]) == "red"


def test_no_temporary_files_left(rendered: tuple[EditPlan, Path]) -> None:
    _, out = rendered
    assert sorted(os.listdir(out.parent)) == ["out.cover.jpg", "out.mp4"]


def test_portrait_rotation_honoured(media_dir: Path, tmp_path: Path) -> None:
    src = probe(media_dir / "portrait.mp4")
    plan = EditPlan(
        sources=(src,),
        segments=(Segment(0, 0.0, 1.0, cover_rect(src.width, src.height, W, H)),),
        output=OutputSpec(width=W, height=H),
    )
    render(plan, tmp_path / "p.mp4")
    frame = frame_at(tmp_path / "p.mp4", 0.5)
    # Stored 320x180 with a white box top-left, shown turned a quarter clockwise: the box is
    # now top-right, and the picture fills the portrait frame without bars.
    top_left, top_right = frame[:40, :40], frame[:40, -40:]
    assert top_right.mean() > 220 and top_left.mean() < 160
    assert closest_colour(frame[H // 2 :, : W // 2]) == "red"


@pytest.mark.parametrize(("w", "h"), [(720, 720), (640, 360)])
def test_other_output_sizes(media_dir: Path, tmp_path: Path, w: int, h: int) -> None:
    red = probe(media_dir / "red.mp4")
    plan = EditPlan(
        sources=(red,),
        segments=(Segment(0, 0.0, 0.5, cover_rect(320, 180, w, h)),),
        output=OutputSpec(width=w, height=h),
        captions=(CaptionCue("方形 and wide", 0.0, 0.5),),
    )
    result = render(plan, tmp_path / "o.mp4")
    with av.open(result.path) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (w, h)


@pytest.mark.slow
def test_music_is_ducked_under_speech(media_dir: Path, tmp_path: Path) -> None:
    plan = _plan(
        media_dir,
        captions=(),
        audio=(
            AudioTrack(str(media_dir / "narration.wav"), "narration", start=1.0),
            AudioTrack(str(media_dir / "music.wav"), "music", gain_db=-6, loop=True),
        ),
    )
    render(plan, tmp_path / "m.mp4")
    with av.open(str(tmp_path / "m.mp4")) as c:
        pcm = np.concatenate([f.to_ndarray().mean(axis=0) for f in c.decode(audio=0)])
    rate = 48000
    # Music alone before the narration starts at 1 s; music under speech after it.
    alone = pcm[int(0.2 * rate) : int(0.9 * rate)]

    # Loudness of the 220 Hz music: isolate it with a narrow FFT band.
    def band(x: np.ndarray) -> float:
        spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        freqs = np.fft.rfftfreq(len(x), 1 / rate)
        return float(spec[(freqs > 210) & (freqs < 230)].max() / len(x))

    under = pcm[int(1.6 * rate) : int(2.3 * rate)]
    assert band(under) < band(alone) * 0.6, "music is not lowered under the narration"
    # Music loops past its 2 s length to the end of the video.
    tail = pcm[-int(0.3 * rate) :]
    assert np.abs(tail).max() > 0.01


def test_silent_plan_still_has_an_audio_track(media_dir: Path, tmp_path: Path) -> None:
    plan = _plan(media_dir, audio=(), captions=())
    render(plan, tmp_path / "s.mp4")
    with av.open(str(tmp_path / "s.mp4")) as c:
        assert len(c.streams.audio) == 1


def test_source_sound_kept_when_asked(media_dir: Path, tmp_path: Path) -> None:
    red = probe(media_dir / "red.mp4")
    plan = EditPlan(
        sources=(red,),
        segments=(Segment(0, 0.0, 1.0, cover_rect(320, 180, W, H), volume=1.0),),
        output=OutputSpec(width=W, height=H),
    )
    render(plan, tmp_path / "v.mp4")
    integrated, _ = loudness(tmp_path / "v.mp4")
    assert integrated == pytest.approx(-14.0, abs=1.0)


@pytest.mark.slow
def test_failed_ffmpeg_raises_with_log(media_dir: Path, tmp_path: Path) -> None:
    plan = _plan(media_dir, captions=())
    broken = tmp_path / "gone.mp4"
    broken.write_bytes((media_dir / "blue.mp4").read_bytes()[:2000])
    sources = list(plan.sources)
    sources[1] = plan.sources[1].__class__(**{**_as_dict(plan.sources[1]), "path": str(broken)})
    bad = _plan(media_dir, captions=(), sources=tuple(sources))
    with pytest.raises(RenderError) as err:
        render(bad, tmp_path / "x.mp4")
    assert err.value.log_tail
    assert not (tmp_path / "x.mp4").exists()
    assert not any(p.name.endswith(".part.mp4") for p in tmp_path.iterdir())


def _as_dict(obj: object) -> dict[str, object]:
    from dataclasses import asdict

    return asdict(obj)  # type: ignore[call-overload, no-any-return]


@pytest.mark.slow
def test_cancel_stops_ffmpeg(media_dir: Path, tmp_path: Path) -> None:
    cancel = threading.Event()

    def progress(f: float) -> None:
        if f > 0.05:
            cancel.set()

    with pytest.raises(Cancelled):
        render(_plan(media_dir), tmp_path / "c.mp4", progress=progress, cancel=cancel)
    assert not (tmp_path / "c.mp4").exists()


def test_karaoke_highlights_the_spoken_word(media_dir: Path, tmp_path: Path) -> None:
    words = (WordTiming("Look", 0.1, 0.45), WordTiming("here", 0.55, 0.95))
    plan = _plan(
        media_dir,
        segments=(Segment(1, 0.0, 1.0, cover_rect(320, 180, W, H)),),
        captions=(CaptionCue("Look here", 0.1, 0.95, style="k", words=words),),
        styles=(CaptionStyle(name="k", karaoke=True, highlight="#FFD400"),),
        audio=(),
    )
    render(plan, tmp_path / "k.mp4")

    def yellow_columns(t: float) -> np.ndarray:
        area = _caption_area(frame_at(tmp_path / "k.mp4", t))
        yellow = (area[..., 0] > 200) & (area[..., 1] > 170) & (area[..., 2] < 90)
        return np.nonzero(yellow.any(axis=0))[0]

    first, second = yellow_columns(0.3), yellow_columns(0.75)
    assert len(first) and len(second)
    assert first.mean() < second.mean()  # the highlight moved right, to the second word


def test_chinese_wraps_without_spaces() -> None:
    lines = wrap("今天教你三个拍视频的小技巧，第一个最重要", 9.0)
    assert len(lines) >= 2
    assert "".join(lines) == "今天教你三个拍视频的小技巧，第一个最重要"
    assert all(len(line) <= 9 for line in lines)
    en = wrap("Three tiny camera tricks that change everything", 12.0)
    assert all(" " not in (w.strip()) or True for w in en)
    assert " ".join(en) == "Three tiny camera tricks that change everything"


@pytest.mark.slow
@pytest.mark.parametrize("transfer", ["hlg", "pq"])
def test_hdr_video_is_tone_mapped_to_its_sdr_colours(tmp_path: Path, transfer: str) -> None:
    from pipeline.bench.samples import HDR_BARS, hdr_clip

    src = probe(hdr_clip(str(tmp_path / f"{transfer}.mp4"), 1.0, transfer))
    assert src.hdr == transfer
    with av.open(src.path) as c:  # what a conversion that ignores HDR shows: grey, washed out
        naive = next(c.decode(video=0)).to_ndarray(format="rgb24")
    # A still window over the whole picture, and a moving one (the perspective path).
    whole = Rect(0.0, 0.0, 1.0, 1.0)
    plan = EditPlan(
        sources=(src,),
        segments=(
            Segment(0, 0.0, 0.5, whole),
            Segment(0, 0.5, 1.0, whole, crop_end=Rect(0.02, 0.02, 0.96, 0.96)),
        ),
        output=OutputSpec(width=384, height=216),
    )
    render(plan, tmp_path / "out.mp4")
    for t in (0.25, 0.75):
        frame = frame_at(tmp_path / "out.mp4", t)
        for i, want in enumerate(HDR_BARS):
            x = (2 * i + 1) * 384 // 6
            got = frame[80:136, x - 20 : x + 20].reshape(-1, 3).mean(axis=0)
            seen = naive[80:136, x - 20 : x + 20].reshape(-1, 3).mean(axis=0)
            # Within ~5% (the tone curve rolls off the top, the table is sampled, 4:2:0 blurs
            # the saturated green's chroma); a conversion that ignores HDR is 30-90 levels off.
            assert np.abs(got - want).max() < 14, (t, i, got, want)
            assert np.abs(seen - want).max() > 30  # the test would catch a naive conversion


@pytest.mark.slow
def test_captions_keep_frame_time_after_photo_segments(media_dir: Path, tmp_path: Path) -> None:
    # Photos (still and moving) before a clip: a caption must appear on the very frame its
    # time falls on and end on time, however many segments came before it.
    photo, red = probe(media_dir / "green.jpg"), probe(media_dir / "red.mp4")
    plan = EditPlan(
        sources=(photo, red),
        segments=(
            Segment(0, 0.0, 0.7, cover_rect(640, 480, W, H)),
            Segment(0, 0.0, 0.9, cover_rect(640, 480, W, H), crop_end=Rect(0.2, 0.1, 0.3, 0.8)),
            Segment(1, 0.0, 1.2, cover_rect(320, 180, W, H)),
        ),
        output=OutputSpec(width=W, height=H),
        captions=(CaptionCue("on time", 2.0, 2.5),),
    )
    render(plan, tmp_path / "c.mp4")
    with av.open(str(tmp_path / "c.mp4")) as c:
        frames = [f.to_ndarray(format="gray") for f in c.decode(video=0)]
    band = [float((f[int(H * 0.45) : int(H * 0.8)] > 235).mean()) for f in frames]
    shown = [i for i, v in enumerate(band) if v > 0.002]
    assert (shown[0], shown[-1]) == (60, 74), shown  # 2.0 s to 2.5 s at 30 fps
