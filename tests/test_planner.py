"""Plan building rules on synthetic shots and narration timings (no media, no models)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from pipeline.footage.model import Analysis, Crop, ScoreParts, Shot
from pipeline.make.planner import TAIL, build_plan, cut_frames
from pipeline.media import MediaInfo
from pipeline.plan import CaptionCue, CaptionStyle, OutputSpec, Rect, validate_plan
from pipeline.render.renderer import frame_counts
from pipeline.script.model import Script, ScriptLine

FPS = 30.0
OUT = OutputSpec(width=360, height=640, fps=FPS)
PARTS = ScoreParts(1, 1, 1, 1, 1, 0, 0)


@dataclass(frozen=True, slots=True)
class Narr:
    audio_path: str
    duration: float
    line_spans: tuple[tuple[float, float], ...]


def video(path: str, seconds: float) -> MediaInfo:
    return MediaInfo(path, "video", seconds, 1920, 1080, 30.0, 0, False, "h264", 1000)


def photo(path: str) -> MediaInfo:
    return MediaInfo(path, "photo", 0.0, 800, 600, 0.0, 0, False, "mjpeg", 1000)


def shot(src: int, start: float, end: float, score: float, kind: str = "video", text: str = "",
         pan: bool = False) -> Shot:  # fmt: skip
    window = Rect(0.3, 0.0, 0.32, 1.0)
    end_window = Rect(0.5, 0.0, 0.32, 1.0) if pan else None
    return Shot(src, f"f{src}", start, end, (start + end) / 2, score, PARTS,
                (Crop("9:16", window, end_window),), text=text, kind=kind)  # type: ignore[arg-type]  # fmt: skip


def script(n_lines: int) -> Script:
    return Script("t", "hook", tuple(ScriptLine(f"line {i}") for i in range(n_lines)), "cta",
                  (), "en", "knowledge", 10, 10, "test")  # fmt: skip


def spans(lengths: list[float], pause: float = 0.3) -> tuple[tuple[float, float], ...]:
    out, t = [], 0.05
    for n in lengths:
        out.append((t, t + n))
        t += n + pause
    return tuple(out)


def plan_for(shots: list[Shot], sources: list[MediaInfo], lengths: list[float], **kw: object):  # type: ignore[no-untyped-def]
    sp = spans(lengths)
    narr = Narr("n.wav", sp[-1][1] + 0.05, sp)
    cues = tuple(CaptionCue(f"c{i}", a, b) for i, (a, b) in enumerate(sp))
    plan = build_plan(tuple(sources), Analysis(tuple(shots), ()), script(len(lengths) - 2), narr,
                      cues, CaptionStyle(), OUT, **kw)  # type: ignore[arg-type]  # fmt: skip
    validate_plan(plan)
    return plan, narr


def sentence_of(plan, t: float) -> int:  # type: ignore[no-untyped-def]
    for k, seg_end in enumerate(segment_edges(plan)[1:]):
        if t < seg_end:
            return k
    return -1


def segment_edges(plan) -> list[float]:  # type: ignore[no-untyped-def]
    edges, acc = [0.0], 0
    for n in frame_counts(plan):
        acc += n
        edges.append(acc / FPS)
    return edges


CASES = {
    "plenty": ([video("a", 30), video("b", 30)],
               [shot(0, 0, 5, 0.5), shot(0, 5, 10, 0.9), shot(1, 0, 6, 0.7), shot(1, 6, 12, 0.3),
                shot(0, 10, 16, 0.6), shot(1, 12, 18, 0.8)],
               [1.5, 2.0, 2.4, 1.7, 1.2]),
    "short footage": ([video("a", 2)], [shot(0, 0, 1.0, 0.8), shot(0, 1.0, 2.0, 0.6)],
                      [2.5, 3.0, 2.0]),
    "photos": ([photo("p"), photo("q"), video("v", 4)],
               [shot(0, 0, 3, 0.7, "photo"), shot(1, 0, 3, 0.4, "photo"), shot(2, 0, 4, 0.9)],
               [2.0, 3.0, 1.5, 2.2]),
    "long line": ([video("a", 20)], [shot(0, 0, 1.5, 0.9), shot(0, 2, 4, 0.7),
                                     shot(0, 5, 9, 0.5)], [1.0, 5.0, 1.0]),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_cuts_sit_in_the_pauses_and_tile_the_timeline(name: str) -> None:
    sources, shots, lengths = CASES[name]
    plan, narr = plan_for(shots, sources, lengths)
    edges = segment_edges(plan)
    # Output = narration + tail, on the frame grid (within one frame).
    assert abs(edges[-1] - (narr.duration + TAIL)) <= 1 / FPS + 1e-9
    # Every sentence boundary is a cut, at the middle of the pause (within one frame).
    sp = narr.line_spans
    for (_, a_end), (b_start, _) in itertools.pairwise(sp):
        mid = (a_end + b_start) / 2
        assert min(abs(e - mid) for e in edges) <= 1 / FPS + 1e-9
    # Extra cuts (a sentence outlasting its shot) never fall inside a pause's neighbourhood of
    # another sentence: each segment lies within one sentence's slot.
    bounds = [b / FPS for b in cut_frames(sp, narr.duration + TAIL, FPS)]
    for e in edges:
        assert any(abs(e - b) < 1e-6 for b in bounds) or any(
            bounds[k] < e < bounds[k + 1] for k in range(len(bounds) - 1)
        )
    # No frozen picture: a video segment never runs past its source.
    for seg in plan.segments:
        src = plan.sources[seg.source]
        if src.kind == "video":
            assert seg.end <= src.duration + 1e-6
        else:
            assert seg.crop_end is not None and seg.crop_end != seg.crop  # photos move


def test_hook_gets_the_strongest_shot_and_the_cover_is_in_it() -> None:
    sources, shots, lengths = CASES["plenty"]
    plan, _ = plan_for(shots, sources, lengths)
    first = plan.segments[0]
    best = max(shots, key=lambda s: s.score)
    assert (first.source, first.start >= best.start, first.end <= best.end) == (
        best.source,
        True,
        True,
    )
    assert plan.cover_time is not None and plan.cover_time < first.duration


def test_no_shot_twice_while_unused_good_ones_remain() -> None:
    sources, shots, lengths = CASES["plenty"]
    plan, _ = plan_for(shots, sources, lengths)
    used = [(s.source, next(k for k, sh in enumerate(shots) if sh.source == s.source
                            and sh.start - 1e-6 <= s.start and s.end <= sh.end + 1e-6))
            for s in plan.segments]  # fmt: skip
    ids = [k for _, k in used]
    assert len(ids) == len(set(ids))  # 5 sentences, 6 shots: all different


def test_short_footage_fills_with_other_moments_and_crops() -> None:
    sources, shots, lengths = CASES["short footage"]
    plan, narr = plan_for(shots, sources, lengths)
    assert plan.duration == pytest.approx(narr.duration + TAIL, abs=1 / FPS)
    windows = [(s.start, s.end, s.crop) for s in plan.segments]
    assert len(windows) >= 4  # 8 s of narration from 2 s of footage
    for a, b in itertools.pairwise(windows):
        assert a != b  # a re-used shot comes back at another moment or another crop
    assert any(s.crop.w < 0.32 - 1e-6 for s in plan.segments)  # tighter crop on re-use


def test_line_longer_than_its_shot_gets_more_shots() -> None:
    sources, shots, lengths = CASES["long line"]
    plan, narr = plan_for(shots, sources, lengths)
    bounds = [b / FPS for b in cut_frames(narr.line_spans, narr.duration + TAIL, FPS)]
    edges = segment_edges(plan)
    inside = [e for e in edges if bounds[1] + 1e-6 < e < bounds[2] - 1e-6]
    assert inside  # the 5 s line is cut within itself
    for seg in plan.segments:
        assert seg.duration >= 0.8 - 1 / FPS or seg is plan.segments[-1]


def test_pans_are_kept_and_music_is_ducked() -> None:
    sources = [video("a", 10)]
    shots = [shot(0, 0, 5, 0.8, pan=True), shot(0, 5, 10, 0.5)]
    plan, _ = plan_for(shots, sources, [1.0, 1.0], music="m.mp3")
    assert plan.segments[0].crop_end is not None
    music = next(a for a in plan.audio if a.role == "music")
    assert music.loop and music.duck and -20 <= music.gain_db <= -12
    assert [a.role for a in plan.audio] == ["narration", "music"]


def test_captions_are_the_narration_cues() -> None:
    sources, shots, lengths = CASES["plenty"]
    plan, narr = plan_for(shots, sources, lengths)
    assert [(c.start, c.end) for c in plan.captions] == list(narr.line_spans)
    assert plan.output.tail == TAIL


def test_a_line_naming_a_shot_gets_it() -> None:
    sources = [video("a", 30)]
    # The sentences are "hook", "line 0", "line 1", "cta"; only "line 1" names shot 1 ("1").
    shots = [shot(0, 0, 5, 0.9), shot(0, 5, 10, 0.5, text="1"), shot(0, 10, 15, 0.7),
             shot(0, 15, 20, 0.6)]  # fmt: skip
    plan, _ = plan_for(shots, sources, [1.0, 1.0, 1.0, 1.0])
    assert len(plan.segments) == 4  # one shot per sentence: each is long enough
    assert [s.start >= 5 and s.end <= 10 for s in plan.segments] == [False, False, True, False]


def test_a_long_hook_does_not_take_the_shot_a_later_line_names() -> None:
    sources = [video("a", 40)]
    # The hook (4 s) outlasts its 2 s shot. "line 0" names shot 1 and "line 1" names shot 2;
    # by quality they are also the hook's best continuations.
    shots = [shot(0, 0, 2, 0.95), shot(0, 10, 15, 0.9, text="0"), shot(0, 20, 25, 0.85, text="1"),
             shot(0, 30, 35, 0.5), shot(0, 35, 40, 0.45)]  # fmt: skip
    plan, narr = plan_for(shots, sources, [4.0, 1.0, 1.0, 1.0])
    edges = segment_edges(plan)
    starts = [a for a, _ in narr.line_spans]
    under: dict[int, list[int]] = {}
    for seg, a, b in zip(plan.segments, edges, edges[1:], strict=False):
        which = next(k for k, s in enumerate(shots) if s.start <= seg.start < s.end)
        sentence = sum(1 for t in starts if t <= (a + b) / 2) - 1
        under.setdefault(sentence, []).append(which)
    assert 1 not in under[0] and 2 not in under[0], under  # the hook left them alone
    assert under[1] == [1] and under[2] == [2], under


@pytest.mark.parametrize(("size", "aspect"), [((1080, 1920), "9:16"), ((1080, 1080), "1:1"),
                                              ((1920, 1080), "16:9")])  # fmt: skip
def test_output_aspect_picks_the_matching_crop(size: tuple[int, int], aspect: str) -> None:
    from pipeline.make.planner import aspect_of

    assert aspect_of(OutputSpec(width=size[0], height=size[1])) == aspect
