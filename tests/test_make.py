"""`make_video` end to end on generated footage, offline, in English and Chinese.

edge-tts is pointed at a closed port on 127.0.0.1, so every run here also walks the failure
path: the real client fails to connect and the offline voice speaks. Outputs are decoded.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import socket
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from pipeline import settings as pipeline_settings
from pipeline.bench.synth import Scene, write_clip
from pipeline.brief import Brief, Footage
from pipeline.cli import main
from pipeline.errors import MediaError
from pipeline.make import orchestrate as make
from pipeline.make import stages as make_stages
from pipeline.make.planner import TAIL, cut_frames
from pipeline.narrate.model import Narration
from pipeline.plan import EditPlan, OutputSpec
from pipeline.render.renderer import frame_counts, render

pytestmark = pytest.mark.slow  # renders or runs models end to end

TOPIC = {"en": "A quiet morning with coffee and my cat", "zh": "和猫咪一起喝咖啡的早晨"}
CAPTIONS = {"en": ("coffee", "my cat", "the moon"), "zh": ("咖啡", "我的猫咪", "月亮")}
OUT = OutputSpec(width=360, height=640, fps=30.0, preset="ultrafast")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from PIL import Image

    from pipeline.bench.synth import load_photo

    d = tmp_path_factory.mktemp("footage")
    coffee = str(d / "coffee.mp4")
    cat = str(d / "cat.mp4")
    write_clip(coffee, [Scene("coffee", 75, 1.0, 1.2, (0.0, 0.0), (0.05, 0.0))], (480, 270))
    write_clip(cat, [Scene("chelsea", 75, 1.2, 1.0, (-0.05, 0.0), (0.05, 0.0))], (480, 270))
    moon = str(d / "moon.jpg")
    Image.fromarray(load_photo("moon")[:, :, ::-1].copy()).resize((400, 400)).save(moon)
    broken = d / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(2000))
    return {"coffee": coffee, "cat": cat, "moon": moon, "broken": str(broken)}


def brief_for(lang: str, footage: dict[str, str]) -> Brief:
    caps = CAPTIONS[lang]
    files = (
        Footage(footage["coffee"], caps[0]),
        Footage(footage["broken"]),
        Footage(footage["cat"], caps[1]),
        Footage(footage["moon"], caps[2]),
    )
    return Brief(topic=TOPIC[lang], style="vlog", language=lang, seconds=10, footage=files,  # type: ignore[arg-type]
                 output=OUT)  # fmt: skip


@pytest.fixture(scope="module")
def made(
    footage: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[make.MakeResult, list[tuple[str, float]]]]:
    """Both languages made once for the module, with edge-tts unreachable."""
    mp = pytest.MonkeyPatch()
    mp.delenv("REELBOT_TTS_OFFLINE", raising=False)
    mp.setenv("REELBOT_EDGE_TTS_URL", f"ws://127.0.0.1:{closed_port()}/tts")
    mp.setenv("REELBOT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    # The footage fixture has already read the settings (ffmpeg's path): read them again.
    pipeline_settings.reset()
    out = {}
    try:
        job = str(tmp_path_factory.mktemp("job-en"))
        seen: list[tuple[str, float]] = []
        result = make.make_video(brief_for("en", footage), job, lambda s, f: seen.append((s, f)))
        out["en"] = (result, seen)
        # Chinese through the command line, as a user runs it.
        job = str(tmp_path_factory.mktemp("job-zh"))
        brief = brief_for("zh", footage)
        args = ["make", "--topic", brief.topic, "--lang", "zh", "--style", "vlog", "--seconds",
                "10", "--size", "360x640", "--job-dir", job, "--footage"]  # fmt: skip
        args += [f.path for f in brief.footage]
        for f in brief.footage:
            args += ["--caption", f.caption]
        assert main(args) == 0
        out["zh"] = (make.render_job(job), [])  # everything is current: nothing is redone
        assert set(make.last_run(job).values()) == {"reused"}
    finally:
        mp.undo()
        pipeline_settings.reset()
    return out


def frames_of(path: str) -> tuple[list[np.ndarray], float]:
    with av.open(path) as c:
        stream = c.streams.video[0]
        frames = [f.to_ndarray(format="gray") for f in c.decode(stream)]
        return frames, float(stream.average_rate or 30)


def sentence_edges(job: str) -> tuple[EditPlan, Narration, list[int], list[int]]:
    plan = EditPlan.load(Path(job) / "plan.json")
    narr = Narration.load(Path(job) / "words.json")
    bounds = cut_frames(narr.line_spans, narr.duration + TAIL, plan.output.fps)
    edges = [0, *np.cumsum(frame_counts(plan)).tolist()]
    return plan, narr, bounds, edges


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_video_lasts_narration_plus_tail_and_cuts_on_sentences(lang: str, made: Any) -> None:
    result, seen = made[lang]
    plan, narr, bounds, edges = sentence_edges(result.job_dir)
    frames, fps = frames_of(result.video)
    assert (result.width, result.height) == (360, 640) and frames[0].shape == (640, 360)
    assert abs(len(frames) / fps - (narr.duration + TAIL)) <= 1 / fps + 1e-6
    assert len(narr.line_spans) == len(result.script.spoken()) >= 3
    # Every sentence boundary is a cut; any other cut falls inside a sentence.
    assert set(bounds[:-1]) <= set(edges)
    assert bounds[-1] == edges[-1] == len(frames)
    # Where a cut changes the source, the decoded picture changes exactly there.
    diffs = [float(np.mean(np.abs(b.astype(int) - a))) for a, b in itertools.pairwise(frames)]
    typical = float(np.median(diffs))
    for k, edge in enumerate(edges[1:-1], start=1):
        a, b = plan.segments[k - 1], plan.segments[k]
        if a.source != b.source:
            jump = diffs[edge - 1]
            assert jump > 4 * typical and jump >= max(
                diffs[edge - 3 : edge - 1] + diffs[edge : edge + 2]
            )
    # Stages were reported in order, with the render last.
    if seen:
        stages = list(dict.fromkeys(s for s, _ in seen))
        assert stages == ["analyze", "script", "narrate", "plan", "render"]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_no_black_or_frozen_frames(lang: str, made: Any) -> None:
    result, _ = made[lang]
    frames, fps = frames_of(result.video)
    assert min(float(f.mean()) for f in frames) > 20  # generated footage is never black
    still = 0
    for a, b in itertools.pairwise(frames):
        still = still + 1 if np.array_equal(a, b) else 0
        assert still < fps / 2, "the picture froze for half a second"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_captions_show_exactly_while_words_are_spoken(lang: str, made: Any, tmp_path: Path) -> None:
    result, _ = made[lang]
    plan = EditPlan.load(Path(result.job_dir) / "plan.json")
    bare = render(dataclasses.replace(plan, captions=()), tmp_path / "bare.mp4")
    with_caps, fps = frames_of(result.video)
    without, _ = frames_of(bare.path)
    h = plan.output.height
    top, bottom = int(h * 0.45), int(h * 0.80)  # where the captions sit (above the app's buttons)
    shown = [float(np.mean(np.abs(a[top:bottom].astype(int) - b[top:bottom]) > 40))
             for a, b in zip(with_caps, without, strict=True)]  # fmt: skip
    below = [float(np.mean(np.abs(a[int(h * 0.82) :].astype(int) - b[int(h * 0.82) :]) > 40))
             for a, b in zip(with_caps, without, strict=True)]  # fmt: skip
    assert max(below) < 0.002  # nothing drawn in the bottom safe area
    wrong = []
    for i, s in enumerate(shown):
        t = (i + 0.5) / fps
        cue = any(c.start <= t < c.end for c in plan.captions)
        near_edge = any(abs(t - e) < 1.5 / fps for c in plan.captions for e in (c.start, c.end))
        if not near_edge and cue != (s > 0.003):
            wrong.append((round(t, 3), cue, s))
    assert not wrong
    # Each cue starts with its first word, as the voice engine timed it.
    for c in plan.captions:
        assert c.words and abs(c.start - c.words[0].start) < 1e-6


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_unreachable_edge_tts_falls_back_and_says_so(lang: str, made: Any) -> None:
    result, _ = made[lang]
    narr = Narration.load(Path(result.job_dir) / "words.json")
    assert narr.engine in ("piper", "espeak-ng") and narr.fallback_code == "unreachable"
    assert result.voice_engine.startswith(narr.engine)
    assert any("edge-tts" in w and narr.engine in w for w in result.warnings)
    assert any("broken.mp4" in w for w in result.warnings)  # the corrupt file, by name
    if lang == "zh":  # the CLI prints them in the video's language
        assert any("已跳过" in w for w in result.warnings)
        assert any("连不上服务" in w for w in result.warnings)
    # The bot words them in the chat's language, whichever the video's is.
    assert any("broken.mp4 skipped" in w for w in result.warnings_in("en"))
    assert any("已跳过" in w for w in result.warnings_in("zh"))
    assert any("连不上服务" in w for w in result.warnings_in("zh"))
    media = json.loads((Path(result.job_dir) / "media.json").read_text())
    assert [Path(m["path"]).name for m in media["media"]] == ["coffee.mp4", "cat.mp4", "moon.jpg"]
    for name in ("brief.json", "shots.json", "script.json", "narration.wav", "words.json",
                 "plan.json", "captions.ass", "contact_sheet.jpg", "out.mp4",
                 "cover.jpg"):  # fmt: skip
        assert (Path(result.job_dir) / name).stat().st_size > 0, name
    # The storyboard keyframes are the bot's preview: a plain make has no use for them.
    assert not list(Path(result.job_dir).glob("key_*.jpg"))
    cover = av.open(result.cover).decode(video=0).__next__()
    assert (cover.width, cover.height) == (360, 640)


def test_resume_after_script_edit_skips_analysis(
    made: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    result, _ = made["en"]
    job = Path(result.job_dir)
    calls: list[int] = []
    real = make_stages.analyze  # type: ignore[attr-defined]

    def counting(*a: Any, **k: Any) -> Any:
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(make_stages, "analyze", counting)
    monkeypatch.setenv("REELBOT_TTS_OFFLINE", "1")
    data = json.loads((job / "script.json").read_text())
    data["lines"][0]["text"] = "Then the cat jumped on the table."
    (job / "script.json").write_text(json.dumps(data))
    before = (job / "shots.json").stat().st_mtime_ns
    assert main(["make", "--resume", str(job)]) == 0
    assert calls == []  # analysis was not run
    assert (job / "shots.json").stat().st_mtime_ns == before
    runs = make.last_run(str(job))
    assert runs["analysis"] == "reused" and runs["media"] == "reused"
    assert runs["narration"] == runs["plan"] == runs["render"] == "ran"
    err = capsys.readouterr()
    assert "analysis reused" in err.err and str(job / "out.mp4") in err.out
    narr = Narration.load(job / "words.json")
    assert narr.sentences[1] == "Then the cat jumped on the table."
    plan = EditPlan.load(job / "plan.json")
    assert "jumped" in " ".join(c.text for c in plan.captions)
    # Nothing changed since: a second resume redoes nothing.
    assert main(["make", "--resume", str(job)]) == 0
    assert set(make.last_run(str(job)).values()) == {"reused"}


def test_revise_another_version_reuses_analysis(made: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    result, _ = made["zh"]
    calls: list[int] = []
    monkeypatch.setattr(make_stages, "analyze", lambda *a, **k: calls.append(1))
    monkeypatch.setenv("REELBOT_TTS_OFFLINE", "1")
    board = make.revise(result.job_dir, another=True)
    assert calls == []
    # Another version: the writer's next seed (the offline writer may keep some sentences).
    assert board.script.seed == result.script.seed + 1 and board.script != result.script
    assert (
        json.loads((Path(result.job_dir) / "script.json").read_text())["seed"] == board.script.seed
    )
    assert len(board.frames) == len(board.script.spoken())
    for text, jpg in board.frames:
        assert text and av.open(jpg).decode(video=0).__next__().height > 100
    assert make.last_run(result.job_dir)["storyboard"] == "ran"
    # Nothing changed since: the storyboard is reused, not drawn again.
    make.revise(result.job_dir)
    assert make.last_run(result.job_dir)["storyboard"] == "reused"


def test_a_new_analysis_version_redoes_the_analysis(
    made: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After an upgrade that changes what analysis finds, an old job folder is not trusted.
    from pipeline.footage import cache

    result, _ = made["en"]
    monkeypatch.setenv("REELBOT_TTS_OFFLINE", "1")
    make.render_job(result.job_dir)
    assert make.last_run(result.job_dir)["analysis"] == "reused"
    monkeypatch.setattr(cache, "CODE_VERSION", "footage-next")
    make.render_job(result.job_dir)
    assert make.last_run(result.job_dir)["analysis"] == "ran"


def test_make_command_needs_topic_and_footage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["make", "--topic", "x"]) == 2
    assert (
        main(["make", "--topic", "x", "--footage", "a.mp4", "--caption", "a", "--caption", "b"])
        == 2
    )
    assert "--caption" in capsys.readouterr().err


def test_no_usable_footage_is_a_media_error(footage: dict[str, str], tmp_path: Path) -> None:
    brief = Brief(topic="x", footage=(Footage(footage["broken"]),), output=OUT)
    with pytest.raises(MediaError) as err:
        make.prepare(brief, str(tmp_path / "job"))
    assert err.value.params["name"] == "broken.mp4"
