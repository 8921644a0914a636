"""Voice, speed and caption edits after delivery (`pipeline.make.edits.apply_edit`) on a small
generated job, checked by decoding what comes out: a faster voice makes a shorter video, another
voice re-narrates with it, captions move or grow in the ASS and in the frames, and a caption
change leaves the narration alone."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline import settings as pipeline_settings
from pipeline.bench.synth import Scene, write_clip
from pipeline.brief import Brief, Footage
from pipeline.errors import EditLimit
from pipeline.make import orchestrate as make
from pipeline.make.editrequest import EditRequest
from pipeline.make.edits import apply_edit
from pipeline.narrate.voices import another_voice
from pipeline.plan import CaptionCue, CaptionStyle, EditPlan, OutputSpec
from pipeline.render.subtitles import TOP_MARGIN, build_ass
from pipeline.settings import Settings

OUT = OutputSpec(width=360, height=640, fps=30.0, preset="ultrafast")


def _style_fields(ass: str) -> dict[str, str]:
    """The first caption style of an ASS script, by field name."""
    names = next(r for r in ass.splitlines() if r.startswith("Format: Name"))[8:].split(", ")
    values = next(r for r in ass.splitlines() if r.startswith("Style: "))[7:].split(",")
    return dict(zip(names, values, strict=True))


# --- units -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("position", "align", "margin"),
    [("bottom", "2", 0.24), ("middle", "5", 0.0), ("top", "8", TOP_MARGIN)],
)
def test_caption_position_is_the_ass_alignment_and_margin(
    position: str, align: str, margin: float
) -> None:
    # Only the output, the cues and the styles matter to the ASS writer.
    style = CaptionStyle(position=position)  # type: ignore[arg-type]
    plan = EditPlan((), (), OUT, (CaptionCue("hello", 0.0, 1.0),), (style,))
    fields = _style_fields(build_ass(plan))
    assert fields["Alignment"] == align and fields["MarginV"] == str(round(margin * 640))


def test_another_voice_by_gender_and_language() -> None:
    assert another_voice("en", "en-US-JennyNeural", "male") == "en-US-AndrewNeural"
    assert another_voice("en", "en-US-JennyNeural", "other") == "en-US-AndrewNeural"
    assert another_voice("zh", "zh-CN-YunxiNeural", "female") == "zh-CN-XiaoxiaoNeural"
    # Already that gender: the next voice of it, never the same one.
    assert another_voice("en", "en-US-AndrewNeural", "male") == "en-US-ChristopherNeural"
    assert another_voice("zh", "jm_kumo", "other") == "jf_alpha"


def test_an_edit_past_its_limit_is_refused_and_leaves_no_version(tmp_path: Path) -> None:
    from pipeline.script.model import Script, ScriptLine

    job = tmp_path / "job"
    job.mkdir()
    brief = Brief(topic="cats", rate=60, caption_scale=2.0)
    (job / "brief.json").write_text(json.dumps(dataclasses.asdict(brief)))
    script = Script(
        title="t", hook="Cats?", lines=(ScriptLine("Boxes."),), cta="Follow.", hashtags=(),
        language="en", style="vlog", target_seconds=10, estimated_seconds=3, writer="test",
    )  # fmt: skip
    script.save(job / "script.json")
    for request in (EditRequest("rate", text="faster"), EditRequest("captions", text="bigger")):
        with pytest.raises(EditLimit):
            apply_edit(str(job), request)
        assert not (job / "v2").exists()


# --- on a made job ---------------------------------------------------------------------------


def _config() -> Settings:
    return dataclasses.replace(Settings.from_env({}), tts_offline=True, offline_voice="espeak-ng")


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10 s English video from two generated clips, espeak-ng's voice; made once."""
    d = tmp_path_factory.mktemp("edit-footage")
    coffee, cat = str(d / "coffee.mp4"), str(d / "cat.mp4")
    write_clip(coffee, [Scene("coffee", 150, 1.0, 1.2, (0.0, 0.0), (0.05, 0.0))], (480, 270))
    write_clip(cat, [Scene("chelsea", 150, 1.2, 1.0, (-0.05, 0.0), (0.05, 0.0))], (480, 270))
    mp = pytest.MonkeyPatch()
    mp.setenv("REELBOT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    pipeline_settings.reset()
    folder = tmp_path_factory.mktemp("job")
    brief = Brief(topic="A quiet morning with coffee and my cat", style="vlog", language="en",
                  seconds=10, footage=(Footage(coffee, "coffee"), Footage(cat, "my cat")),
                  output=OUT)  # fmt: skip
    try:
        make.make_video(brief, str(folder), config=_config())
    finally:
        mp.undo()
        pipeline_settings.reset()
    return folder


def _duration(path: Path) -> float:
    with av.open(str(path)) as c:
        return float(c.duration or 0) / av.time_base


def _frame(path: Path, t: float) -> np.ndarray:
    """The grey frame shown at `t` seconds."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        for f in c.decode(stream):
            if f.time is not None and f.time >= t:
                return f.to_ndarray(format="gray").astype(np.int16)
    raise AssertionError(f"no frame at {t}")


def _segments(job: Path) -> set[str]:
    return {p.name for p in (job / "segments").glob("*.mp4")}


@pytest.mark.slow
def test_faster_voice_renarrates_and_the_video_gets_shorter(job: Path) -> None:
    before = _duration(job / "out.mp4")
    result = apply_edit(str(job), EditRequest("rate", text="faster"), config=_config())
    v = Path(result.job_dir)
    assert json.loads((v / "brief.json").read_text())["rate"] == 15
    assert (v / "script.json").read_text() == (job / "script.json").read_text()  # no refit
    runs = make.last_run(str(v))
    assert runs["analysis"] == "reused" and runs["narration"] == "ran"
    after = _duration(v / "out.mp4")
    print(f"\nfaster voice: {before:.2f} s -> {after:.2f} s")
    assert after < before * 0.93
    # A slower voice from the faster one: longer again.
    slower = apply_edit(str(job), EditRequest("rate", text="slower", base=v.name),
                        config=_config())  # fmt: skip
    assert json.loads((Path(slower.job_dir) / "brief.json").read_text())["rate"] == 0
    assert _duration(Path(slower.job_dir) / "out.mp4") > after * 1.05


@pytest.mark.slow
def test_male_voice_speaks_with_another_voice(job: Path) -> None:
    old = json.loads((job / "words.json").read_text())["voice"]
    result = apply_edit(str(job), EditRequest("voice", text="male"), config=_config())
    v = Path(result.job_dir)
    assert json.loads((v / "brief.json").read_text())["voice"] == "en-US-AndrewNeural"
    new = json.loads((v / "words.json").read_text())["voice"]
    assert old.endswith("+f3") and new != old and not new.endswith("+f3")  # espeak-ng's female
    assert result.voice_engine == f"espeak-ng:{new}"


@pytest.mark.slow
def test_captions_at_the_top_and_bigger_without_renarrating(job: Path) -> None:
    before_segments = _segments(job)
    top = apply_edit(str(job), EditRequest("captions", text="top"), config=_config())
    v = Path(top.job_dir)
    runs = make.last_run(str(v))
    assert runs["narration"] == "reused" and runs["plan"] == "ran" and runs["render"] == "ran"
    assert (v / "words.json").read_bytes() == (job / "words.json").read_bytes()
    fields = _style_fields((v / "captions.ass").read_text())
    assert fields["Alignment"] == "8" and _style_fields((job / "captions.ass").read_text())[
        "Alignment"] == "2"  # fmt: skip
    # The frames: the same picture, the captions now drawn in the top part instead of low.
    plan = EditPlan.load(v / "plan.json")
    cue = plan.captions[len(plan.captions) // 2]
    t = (cue.start + cue.end) / 2
    diff = np.abs(_frame(v / "out.mp4", t) - _frame(job / "out.mp4", t)) > 60
    rows = np.flatnonzero(diff.sum(axis=1) > 3) / diff.shape[0]
    assert rows.size and rows.min() < 0.3  # new captions near the top
    assert (rows > 0.5).any()  # the old ones, low in the frame, are gone
    # Every segment carries captions: all encoded anew, the old ones kept for the old video.
    assert before_segments < _segments(job)

    bigger = apply_edit(str(job), EditRequest("captions", text="bigger", base=v.name),
                        config=_config())  # fmt: skip
    w = Path(bigger.job_dir)
    old_size = int(fields["Fontsize"])
    new = _style_fields((w / "captions.ass").read_text())
    assert new["Alignment"] == "8" and int(new["Fontsize"]) == round(old_size * 1.25)
    assert make.last_run(str(w))["narration"] == "reused"
