"""`make_video`: a Brief in, a narrated, captioned short out, through a job folder.

Stages, each keyed on its inputs (see `pipeline.make.jobdir`) and skipped when they did not change:
media (probe) -> analysis (shots) -> script -> narration -> plan -> render. The bot calls
`prepare` (everything but the render, plus the storyboard keyframes), `revise` (an edited script
or another version) and `render_job`; the CLI calls `make_video` (all but the storyboard). A job
folder holds brief.json, media.json, shots.json, contact_sheet.jpg, script.json, narration.wav,
words.json, plan.json, key_NN.jpg (storyboard keyframes, bot only), captions.ass, out.mp4,
cover.jpg and stages.json.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.brief import Brief
from pipeline.jsonfiles import load_json, save_json, to_dict
from pipeline.make import jobdir
from pipeline.make.jobdir import StageLog, digest, file_hash
from pipeline.make.notices import Notice
from pipeline.make.stages import (
    SHOWN_FILE,
    ProgressFn,
    StageRun,
    analysis_stage,
    check_analysis,
    check_media,
    media_stage,
    narration_stage,
    plan_stage,
    save_script,
    script_stage,
    storyboard_stage,
)
from pipeline.plan import EditPlan
from pipeline.script.model import Script
from pipeline.settings import Settings

log = logging.getLogger(__name__)


class _Noticed:
    """The warnings of a job worded for any reader (`notices` is each subclass's field)."""

    __slots__ = ()
    notices: tuple[Notice, ...]

    def warnings_in(self, language: str) -> tuple[str, ...]:
        """The warnings worded for a reader of `language` ("zh" or "en")."""
        return tuple(n.text(language) for n in self.notices)


@dataclass(frozen=True, slots=True)
class Storyboard(_Noticed):
    """The script and one keyframe per narrated sentence, before the render (the bot shows it)."""

    job_dir: str
    script: Script
    frames: tuple[tuple[str, str], ...]  # (sentence, keyframe JPEG)
    warnings: tuple[str, ...]  # in the video's language
    notices: tuple[Notice, ...] = ()
    # What happens to the footage's own sound: (sentence number from 1, reason code), e.g.
    # (2, "laughter_kept"); (0, "music_left_out") when footage music replaced the brief's music.
    sounds: tuple[tuple[int, str], ...] = ()
    # Per frame, what its shot shows as {"zh": ..., "en": ...} (storyboard.json); may be empty.
    shown: tuple[dict[str, str], ...] = ()

    def shown_in(self, language: str) -> tuple[str, ...]:
        """What each frame's shot shows, worded for a reader of `language` ("" when unknown)."""
        return tuple(s.get(language, "") for s in self.shown)


@dataclass(frozen=True, slots=True)
class MakeResult(_Noticed):
    """The finished video and what sending it needs."""

    job_dir: str
    video: str
    cover: str
    script: Script
    duration: float
    width: int
    height: int
    voice_engine: str
    warnings: tuple[str, ...]  # in the video's language
    notices: tuple[Notice, ...] = ()


def _board(
    job: StageRun, script: Script, plan: EditPlan, narration: Any, brief: Brief
) -> Storyboard:
    from pipeline.make.planner import sound_notes

    frames = tuple((text, job.path(f"key_{i:02d}.jpg")) for i, text in enumerate(script.spoken()))
    sounds = sound_notes(plan, narration.line_spans, brief.music)
    shown: tuple[dict[str, str], ...] = ()
    if (job.dir / SHOWN_FILE).is_file():
        saved = load_json(job.dir / SHOWN_FILE).get("shown", [])
        shown = tuple({k: str(v) for k, v in dict(s).items()} for s in saved)
    return Storyboard(
        str(job.dir), script, frames, tuple(job.warnings), tuple(job.notices), sounds, shown
    )


def _prepared(
    job: StageRun, brief: Brief, model: str | None, another: bool = False, storyboard: bool = False
) -> tuple[EditPlan, Script, Any]:
    """Every stage but the render (the storyboard only when asked), each redone only when its
    inputs changed."""
    media, captions, mkey = media_stage(job, brief)
    check_media(job, brief, media)
    analysis, akey = analysis_stage(job, media, captions, mkey)
    check_analysis(job, brief, media, analysis)
    script, by = script_stage(job, brief, model, analysis, akey, another)
    narration, script, nkey = narration_stage(job, brief, model, analysis, script, by)
    if narration.fallback_reason:
        facts = {
            "engine": narration.engine,
            "voice": narration.voice,
            "reason": narration.fallback_reason,
            "code": narration.fallback_code or "",
        }
        job.warn(Notice("voice_fallback", facts), brief.language)
    plan = plan_stage(job, brief, media, analysis, script, narration, [akey, nkey])
    if storyboard:
        storyboard_stage(job, plan, narration, analysis)
    job.log.save()
    return plan, script, narration


def _load_brief(job: StageRun) -> tuple[Brief, str | None]:
    path = job.dir / jobdir.BRIEF_FILE
    if not path.is_file():
        raise jobdir.JobError(f"{job.dir} is not a job folder (no brief.json)", path=str(job.dir))
    data = load_json(path)
    return jobdir.brief_from_dict(data), data.get("script_model")


def _save_brief(job: StageRun, brief: Brief, model: str | None) -> None:
    save_json(job.dir / jobdir.BRIEF_FILE, {**to_dict(brief), "script_model": model})


# --- the calls ---------------------------------------------------------------------------------


def prepare(
    brief: Brief,
    job_dir: str,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    *,
    model: str | None = None,
    config: Settings | None = None,
) -> Storyboard:
    """Analysis, script, narration and plan into `job_dir`: everything but the render.

    `config` replaces the process's settings (`pipeline.settings.settings()`) for this run."""
    job = StageRun(job_dir, progress, cancel, config)
    _save_brief(job, brief, model)
    plan, script, narration = _prepared(job, brief, model, storyboard=True)
    return _board(job, script, plan, narration, brief)


def revise(
    job_dir: str,
    script: Script | None = None,
    *,
    another: bool = False,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    config: Settings | None = None,
) -> Storyboard:
    """The user's edited script (or, with `another`, a new version) narrated and planned again;
    the footage analysis is reused."""
    job = StageRun(job_dir, progress, cancel, config)
    brief, model = _load_brief(job)
    if script is not None:
        save_script(job, script)
    plan, final, narration = _prepared(
        job, brief, model, another=another and script is None, storyboard=True
    )
    return _board(job, final, plan, narration, brief)


def render_job(
    job_dir: str,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    *,
    config: Settings | None = None,
) -> MakeResult:
    """The job folder's plan rendered to out.mp4 and cover.jpg (stages before it redone only
    if their inputs changed, e.g. after an edit of script.json)."""
    job = StageRun(job_dir, progress, cancel, config)
    brief, model = _load_brief(job)
    return _render(job, brief, model)


# Each segment's encoded picture, shared by a job and its edited versions (v2/, v3/ ...), so
# a version re-encodes only the segments that changed (`pipeline.render.segments`).
SEGMENTS_DIR = "segments"


def job_root(folder: Path) -> Path:
    """The job folder a version folder (`<job>/v2`) belongs to; the folder itself otherwise."""
    parent = folder.parent
    if re.fullmatch(r"v[0-9]+", folder.name) and (parent / jobdir.BRIEF_FILE).is_file():
        return parent
    return folder


def _render(job: StageRun, brief: Brief, model: str | None) -> MakeResult:
    from pipeline.render.renderer import frame_counts, render

    plan, script, narration = _prepared(job, brief, model)
    key = digest("render", file_hash(job.dir / "plan.json"))
    outputs = ["out.mp4", "cover.jpg", "captions.ass"]
    if job.log.fresh("render", key):
        job.log.reused("render")
    else:
        job.report("render", 0.0)
        render(
            plan,
            job.path("out.mp4"),
            progress=lambda f: job.report("render", f),
            cancel=job.cancel,
            cover_path=job.path("cover.jpg"),
            captions_path=job.path("captions.ass"),
            segments_dir=job_root(job.dir) / SEGMENTS_DIR,
        )
        job.log.record("render", key, outputs, ran=True)
    return MakeResult(
        job_dir=str(job.dir),
        video=job.path("out.mp4"),
        cover=job.path("cover.jpg"),
        script=script,
        duration=sum(frame_counts(plan)) / plan.output.fps,
        width=plan.output.width,
        height=plan.output.height,
        voice_engine=f"{narration.engine}:{narration.voice}",
        warnings=tuple(job.warnings),
        notices=tuple(job.notices),
    )


def make_video(
    brief: Brief,
    job_dir: str,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    *,
    model: str | None = None,
    config: Settings | None = None,
) -> MakeResult:
    """The whole pipeline: footage, script, voice, plan and the rendered MP4, in `job_dir`."""
    job = StageRun(job_dir, progress, cancel, config)
    _save_brief(job, brief, model)
    return _render(job, brief, model)


def resume(
    job_dir: str,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    *,
    config: Settings | None = None,
) -> MakeResult:
    """Bring a job folder up to date after edits (script.json, brief.json) and render it."""
    return render_job(job_dir, progress, cancel, config=config)


def last_run(job_dir: str) -> dict[str, str]:
    """What the last run did with each stage: {"analysis": "reused", "narration": "ran", ...}."""
    value = StageLog(job_dir).data
    path = Path(job_dir) / jobdir.STAGES_FILE
    if path.is_file():
        value = load_json(path)
    runs: dict[str, str] = value.get("last_run", {})
    return runs


def warm_models(config: Settings | None = None) -> str:
    """Load the models a job uses before the first job needs them: the footage recognisers
    (each run once), the planner's sentence encoder and the script writer's language model.

    A long-running process (the bot, an engine worker) calls this as it starts, in the
    background; without it the first video paid every load (~10 s here, the language model's
    ~2 s among them). A model that cannot load is logged and left to the stage that uses it,
    which falls back as it always does. Returns the writer's name.
    """
    from pipeline.footage import scorers
    from pipeline.footage.understand import warm
    from pipeline.script import warm_writer

    try:
        warm()
    except (ImportError, OSError, RuntimeError) as exc:
        log.warning("footage recognisers did not load: %s", exc)
    try:
        scorers.text_embedder()
    except (ImportError, OSError, RuntimeError) as exc:
        log.warning("the sentence encoder did not load: %s", exc)
    return warm_writer(config)
