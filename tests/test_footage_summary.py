"""Video summary: moments from different look-clusters, in story order, as a valid EditPlan."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.footage.model import ScoreParts, Shot
from pipeline.footage.reframe import frame_shot
from pipeline.footage.summary import SummaryError, aspect_for, pick_moments, summary_plan
from pipeline.media import MediaInfo
from pipeline.plan import EditPlan

CROPS = frame_shot(1920, 1080, None, (0.3, 0.5), None, (0.6, 0.5))
PARTS = ScoreParts(1.0, 1.0, 1.0, 0.5, 0.5, 0.0, 0.0)


def _info(path: str, duration: float) -> MediaInfo:
    return MediaInfo(path, "video", duration, 1920, 1080, 30.0, 0, True, "h264", 1000)


def _shot(source: int, start: float, end: float, score: float) -> Shot:
    return Shot(source, f"v{source}.mp4", start, end, (start + end) / 2, score, PARTS, CROPS)


def _looks(groups: list[int]) -> np.ndarray:
    """Colour signatures: one clear colour per group, a little noise per moment."""
    rng = np.random.default_rng(3)
    out = np.zeros((len(groups), 12))
    for i, g in enumerate(groups):
        out[i, g * 4 : g * 4 + 4] = 1.0
    return out + rng.normal(0, 0.02, out.shape)


SHOTS = [
    _shot(0, 0.0, 4.0, 0.5),  # beach
    _shot(0, 4.0, 8.0, 0.9),  # beach, better
    _shot(0, 8.0, 12.0, 0.7),  # city
    _shot(1, 0.0, 5.0, 0.6),  # forest
    _shot(1, 5.0, 10.0, 0.4),  # city
    _shot(1, 10.0, 14.0, 0.8),  # forest, better
]
GROUPS = [0, 0, 1, 2, 1, 2]
MEDIA = [_info("v0.mp4", 12.0), _info("v1.mp4", 14.0)]


def test_one_best_moment_per_cluster_in_story_order() -> None:
    picks = pick_moments(SHOTS, _looks(GROUPS), seconds=9.0)
    assert len(picks) == 3
    assert len({p.cluster for p in picks}) == 3
    assert {GROUPS[p.shot] for p in picks} == {0, 1, 2}
    assert [p.shot for p in picks] == [1, 2, 5]  # the best of each, in file/time order
    assert sum(p.end - p.start for p in picks) == pytest.approx(9.0)
    for p in picks:
        s = SHOTS[p.shot]
        assert s.start <= p.start < p.end <= s.end


def test_a_dull_look_is_left_out_when_good_footage_fills_the_reel() -> None:
    shots = [*SHOTS, _shot(1, 14.0, 18.0, 0.2)]  # a fourth look, but a poor moment
    looks = _looks([*GROUPS, 3])
    picks = pick_moments(shots, looks, seconds=12.0)
    assert 6 not in [p.shot for p in picks]
    assert len({GROUPS[p.shot] for p in picks}) == len(picks)  # still one per look
    assert sum(p.end - p.start for p in picks) == pytest.approx(12.0)


def test_summary_plan_is_valid_and_uses_vertical_crops() -> None:
    plan, _ = summary_plan(SHOTS, MEDIA, _looks(GROUPS), 9.0, size=(720, 1280), music=None)
    again = EditPlan.from_dict(plan.to_dict())  # validates ranges and references
    assert again.duration == pytest.approx(9.0)
    assert [seg.source for seg in plan.segments] == [0, 0, 1]
    assert plan.segments[0].crop == SHOTS[1].crop("9:16")
    assert plan.output.width == 720 and plan.output.height == 1280


def test_short_footage_gives_a_shorter_reel_not_an_error() -> None:
    shots = [_shot(0, 0.0, 2.0, 0.8)]
    plan, _ = summary_plan(shots, MEDIA[:1], _looks([0]), 30.0, music="m.wav")
    assert plan.duration == pytest.approx(2.0)
    assert plan.audio[0].role == "music" and plan.audio[0].loop


def test_no_usable_moment_is_a_typed_error() -> None:
    with pytest.raises(SummaryError) as err:
        pick_moments([_shot(0, 0.0, 3.0, 0.0)], _looks([0]), 10.0)
    assert err.value.key == "summary_no_moments"


def test_aspect_for_output_sizes() -> None:
    assert aspect_for(1080, 1920) == "9:16"
    assert aspect_for(1080, 1080) == "1:1"
    assert aspect_for(1920, 1080) == "16:9"


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("pipeline.render.renderer") is None, reason="renderer not merged yet"
)
def test_summarize_cli_renders_a_reel(tmp_path: Path) -> None:
    from pipeline.bench.synth import Scene, write_clip
    from pipeline.cli import main

    clip = tmp_path / "trip.mp4"
    write_clip(str(clip), [Scene("coffee", 75), Scene("astronaut", 75, pan0=(0, -0.2),
               pan1=(0, -0.2)), Scene("rocket", 75)], (320, 180), 30)  # fmt: skip
    out = tmp_path / "reel.mp4"
    code = main(["summarize", str(clip), "--seconds", "4", "-o", str(out), "--size", "180x320",
                 "--cache-dir", str(tmp_path / "cache")])  # fmt: skip
    assert code == 0
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (180, 320)
        frames = sum(1 for _ in c.decode(v))
    assert 3.5 * 30 <= frames <= 4.5 * 30
