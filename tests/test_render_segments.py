"""The segment cache: a changed plan re-encodes only the segments whose pixels changed, and the
joined video equals a full render of the new plan, frame for frame."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.bench import samples
from pipeline.media import probe
from pipeline.plan import AudioTrack, CaptionCue, EditPlan, OutputSpec, Segment, cover_rect
from pipeline.render.renderer import render
from pipeline.render.segments import segment_keys

pytestmark = pytest.mark.slow  # renders or runs models end to end


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> EditPlan:
    d = tmp_path_factory.mktemp("seg")
    a = samples.pattern_clip(str(d / "a.mp4"), 8.0, (640, 360))
    b = samples.colour_clip(str(d / "b.mp4"), "blue", 8.0, (640, 360))
    srcs = (probe(a), probe(b))
    segs, cues, t = [], [], 0.0
    for i in range(4):
        src = srcs[i % 2]
        start = 0.5 + i
        seg = Segment(
            i % 2, start, start + 1.4 + 0.1 * i, cover_rect(src.width, src.height, 180, 320)
        )
        segs.append(seg)
        cues.append(CaptionCue(f"line {i} words", t + 0.1, t + seg.duration - 0.1))
        t += seg.duration
    narration = samples.speech_like_wav(str(d / "narr.wav"), t, seed=2)
    return EditPlan(
        sources=srcs,
        segments=tuple(segs),
        output=OutputSpec(width=180, height=320, preset="veryfast"),
        captions=tuple(cues),
        audio=(AudioTrack(narration, "narration"),),
    )


def _frames(path: Path) -> list[tuple[Fraction, np.ndarray]]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        assert s.time_base is not None
        return [
            (Fraction(f.pts) * s.time_base, f.to_ndarray(format="gray").astype(np.float64))
            for f in c.decode(s)
        ]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return 100.0 if mse < 1e-9 else 10 * np.log10(255.0**2 / mse)


def line_edit(plan: EditPlan, k: int) -> EditPlan:
    """Sentence k's words and its shot changed (other footage, same length)."""
    segs, cues = list(plan.segments), list(plan.captions)
    segs[k] = dataclasses.replace(segs[k], source=1 - segs[k].source)
    cues[k] = dataclasses.replace(cues[k], text="a changed line")
    return dataclasses.replace(plan, segments=tuple(segs), captions=tuple(cues))


def test_one_changed_line_reencodes_one_segment_and_matches_a_full_render(
    plan: EditPlan, tmp_path: Path
) -> None:
    cache = tmp_path / "segments"
    first = render(plan, tmp_path / "v1.mp4", segments_dir=cache)
    assert first.segments is not None and first.segments.full and first.segments.misses == 4
    assert len(list(cache.glob("*.mp4"))) == 4

    new = line_edit(plan, 2)
    keys_old, keys_new = segment_keys(plan, None, "libx264"), segment_keys(new, None, "libx264")
    assert [a == b for a, b in zip(keys_old, keys_new, strict=True)] == [True, True, False, True]

    edited = render(new, tmp_path / "v2.mp4", segments_dir=cache)
    assert edited.segments is not None
    assert (edited.segments.hits, edited.segments.misses) == (3, 1) and not edited.segments.full

    reference = render(new, tmp_path / "ref.mp4", segments_dir=tmp_path / "ref-segments")
    got, want = _frames(tmp_path / "v2.mp4"), _frames(tmp_path / "ref.mp4")
    assert len(got) == len(want) == sum(round(s.duration * 30) for s in plan.segments)
    assert [t for t, _ in got] == [t for t, _ in want]  # every timestamp
    psnr = [_psnr(a, b) for (_, a), (_, b) in zip(got, want, strict=True)]
    assert min(psnr) > 38.0, min(psnr)
    # The changed caption is really in it: the old video differs where the line is shown.
    old = _frames(tmp_path / "v1.mp4")
    k2 = round(sum(s.duration for s in plan.segments[:2]) * 30) + 10
    assert _psnr(old[k2][1], got[k2][1]) < 35.0
    assert edited.duration == reference.duration


def test_music_change_reuses_every_segment(plan: EditPlan, tmp_path: Path) -> None:
    cache = tmp_path / "segments"
    render(plan, tmp_path / "v1.mp4", segments_dir=cache)
    music = samples.tone_wav(str(tmp_path / "music.wav"), 3.0, freq=220.0, level=0.3)
    new = dataclasses.replace(plan, audio=(*plan.audio, AudioTrack(music, "music", loop=True)))
    edited = render(new, tmp_path / "v2.mp4", segments_dir=cache)
    assert edited.segments is not None
    assert (edited.segments.hits, edited.segments.misses) == (4, 0)
    with av.open(str(tmp_path / "v2.mp4")) as c:
        assert c.streams.audio and c.streams.video[0].frames == len(_frames(tmp_path / "v1.mp4"))
