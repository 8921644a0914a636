"""The stages of `make.orchestrate`, each keyed on its inputs and skipped when they did not change.

media (probe) -> analysis (shots, contact sheet) -> script -> narration (with one refit when the
voice runs >15% off the target) -> plan -> storyboard keyframes (for the bot's preview only).
The render is in `make`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pipeline.brief import Brief
from pipeline.errors import Cancelled, MediaError
from pipeline.footage import Analysis, analyze
from pipeline.footage.model import Seen
from pipeline.jsonfiles import from_dict, load_json, save_json, to_dict
from pipeline.loadonce import Loader
from pipeline.make.jobdir import StageLog, digest, file_hash
from pipeline.make.notices import Notice
from pipeline.media import MediaInfo, probe
from pipeline.plan import CaptionStyle, EditPlan
from pipeline.script.model import Script
from pipeline.settings import Settings, settings

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, float], None]
LENGTH_TOLERANCE = 0.15  # narration this far off the target asks the writer for a refit
CAPTION_PRESET = "bold"


class StageRun:
    """One run over a job folder: the stage log, progress, cancel and collected warnings."""

    def __init__(
        self,
        job_dir: str,
        progress: ProgressFn | None,
        cancel: threading.Event | None,
        config: Settings | None = None,
    ) -> None:
        self.settings = config or settings()  # one snapshot for every stage of this run
        self.dir = Path(job_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = StageLog(self.dir)
        self.log.data["warnings"] = []  # collected afresh: reused stages re-add theirs
        self.log.data["notices"] = []
        self.progress = progress
        self.cancel = cancel

    def report(self, stage: str, fraction: float) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled()
        if self.progress is not None:
            self.progress(stage, min(max(fraction, 0.0), 1.0))

    def path(self, name: str) -> str:
        return str(self.dir / name)

    @property
    def warnings(self) -> list[str]:
        found: list[str] = self.log.data.get("warnings", [])
        return found

    @property
    def notices(self) -> list[Notice]:
        return [Notice(n["code"], dict(n["params"])) for n in self.log.data.get("notices", [])]

    def warn(self, notice: Notice, language: str) -> None:
        """Keep `notice` for the user (and its text in the video's language, for the CLI)."""
        text = notice.text(language)
        if text not in self.warnings:
            self.log.data["warnings"] = [*self.warnings, text]
            entry = {"code": notice.code, "params": notice.params}
            self.log.data["notices"] = [*self.log.data.get("notices", []), entry]
            log.warning("%s: %s", self.dir.name, text)


# --- stages ------------------------------------------------------------------------------------


def media_stage(job: StageRun, brief: Brief) -> tuple[tuple[MediaInfo, ...], tuple[str, ...], str]:
    """Probe the footage; unusable files are skipped with a warning naming them."""
    fingerprints = []
    for f in brief.footage:
        try:
            fingerprints.append(file_hash(f.path))
        except OSError:
            fingerprints.append("missing")
    key = digest("media", [(f.path, f.caption) for f in brief.footage], fingerprints)
    if job.log.fresh("media", key):
        data = load_json(job.dir / "media.json")
        job.log.reused("media")
        return _media_from(data), tuple(data["captions"]), key
    job.report("analyze", 0.0)
    media, captions, skipped = [], [], []
    for f in brief.footage:
        try:
            media.append(probe(f.path))
            captions.append(f.caption)
        except MediaError as exc:
            skipped.append({"path": f.path, "reason": exc.reason, "message": exc.message})
    data = {
        "media": [to_dict(m) for m in media],
        "captions": captions,
        "skipped": skipped,
    }
    save_json(job.dir / "media.json", data)
    job.log.record("media", key, ["media.json"], ran=True)
    return _media_from(data), tuple(captions), key


def _media_from(data: dict[str, Any]) -> tuple[MediaInfo, ...]:
    return from_dict(tuple[MediaInfo, ...], data["media"], what="media.json")


def check_media(job: StageRun, brief: Brief, media: tuple[MediaInfo, ...]) -> None:
    """Warn about each file left out; a `MediaError` when nothing usable remains."""
    data = load_json(job.dir / "media.json")
    for s in data.get("skipped", []):
        name = shown_name(brief, s["path"])
        job.warn(Notice("footage_skipped", {"name": name, "reason": s["reason"]}), brief.language)
    if not media:
        _none_usable(brief, data.get("skipped", []), brief.footage[0].path if brief.footage else "")


def shown_name(brief: Brief, path: str) -> str:
    """The name the user gave a footage file (the bot's `Footage.name`), else its file name."""
    for f in brief.footage:
        if f.path == path and f.name:
            return f.name
    return os.path.basename(path)


def _none_usable(brief: Brief, skipped: list[dict[str, str]], fallback: str) -> None:
    """Raise the error that ends a job with no usable footage, naming every file left out."""
    first = skipped[0] if skipped else {"path": fallback, "reason": "missing"}
    names = ", ".join(f"{shown_name(brief, s['path'])} ({s['reason'].replace('_', ' ')})"
                      for s in skipped)  # fmt: skip
    raise MediaError(first["path"], first["reason"], f"no usable footage left: {names}")


def check_analysis(job: StageRun, brief: Brief, media: tuple[MediaInfo, ...],
                   analysis: Analysis) -> None:  # fmt: skip
    """Warn about each file that probed fine but failed while decoded (left out of the
    analysis); a `MediaError` naming every file left out when no shot remains."""
    failed = [f for f in analysis.files if f.failed]
    for f in failed:
        notice = Notice("footage_skipped", {"name": shown_name(brief, f.path), "reason": f.failed})
        job.warn(notice, brief.language)
    if not analysis.shots:
        data = load_json(job.dir / "media.json")
        skipped = [*data.get("skipped", []), *({"path": f.path, "reason": f.failed or "corrupt"}
                                              for f in analysis.files)]  # fmt: skip
        _none_usable(brief, skipped, media[0].path if media else "")


def analysis_stage(
    job: StageRun, media: tuple[MediaInfo, ...], captions: tuple[str, ...], mkey: str
) -> tuple[Analysis, str]:
    from pipeline.footage.cache import CODE_VERSION

    key = digest("analysis", CODE_VERSION, mkey)
    if job.log.fresh("analysis", key):
        job.log.reused("analysis")
        return Analysis.load(job.dir / "shots.json"), key
    analysis = analyze(
        media,
        captions,
        transcriber=_footage_transcriber(job.settings),
        progress=lambda f: job.report("analyze", 0.05 + 0.9 * f),
        cancel=job.cancel,
        # REELBOT_ANALYSIS_CACHE=0 turns off the cross-job cache (benchmarks, disk limits).
        use_cache=job.settings.analysis_cache,
        cache_dir=job.settings.cache_dir / "analysis",
        max_workers=job.settings.analysis_workers,
    )
    analysis.save(job.dir / "shots.json")
    from pipeline.footage.contact import contact_sheet

    try:
        contact_sheet(analysis, media, job.path("contact_sheet.jpg"), thumb_width=240)
    except (OSError, ValueError) as exc:
        # The sheet is for looking at; the video does not need it.
        log.warning("%s: no contact sheet: %s", job.dir.name, exc)
    job.log.record("analysis", key, ["shots.json"], ran=True)
    job.report("analyze", 1.0)
    return analysis, key


def _footage_transcriber(config: Settings) -> Any:
    """Speech inside the footage, with the process-wide whisper model (loaded on first use),
    through the transcript cache the background analysis fills (`pipeline.footage.warm`)."""
    from pipeline.footage.transcripts import cached_transcriber

    return cached_transcriber(config)


def script_request(brief: Brief, analysis: Analysis) -> Any:
    """The writer's request: the brief, the shots' captions and speech, and what each shot
    shows (in the video's language) with its length and quality, in footage order."""
    from pipeline.script import ScriptRequest, ShotNote

    texts = tuple(dict.fromkeys(s.text for s in analysis.shots if s.text.strip()))
    shots = tuple(
        ShotNote(
            words=s.seen.words(brief.language),
            seconds=round(s.duration, 1),
            score=s.score,
            screen_text=s.seen.text,
            description=s.seen.description,
        )
        for s in analysis.shots
    )
    return ScriptRequest.from_brief(brief, footage_text=texts, shots=shots)


def script_stage(
    job: StageRun,
    brief: Brief,
    model: str | None,
    analysis: Analysis,
    akey: str,
    another: bool = False,
) -> tuple[Script, str]:
    """Write the script, unless the one in script.json is current or was edited by the user."""
    # Only what the writer reads: a new output size or music must not rewrite the script.
    wanted = (brief.topic, brief.style, brief.language, brief.seconds, brief.notes, brief.seed)
    key = digest("script", wanted, model, akey)
    script_json = job.dir / "script.json"
    edited = job.log.edited("script", "script.json")
    if not another and script_json.is_file() and (edited or job.log.fresh("script", key)):
        script = Script.from_json(script_json.read_text(encoding="utf-8"))
        by = "user" if edited else job.log.entry("script").get("by", "writer")
        job.log.record("script", key, ["script.json"], ran=edited, by=by)
        return script, by
    job.report("script", 0.1)
    from pipeline.script import get_writer

    request = script_request(brief, analysis)
    if another:
        seed = int(job.log.entry("script").get("seed", brief.seed)) + 1
        request = dataclasses.replace(request, seed=seed)
    script = get_writer(model, job.settings).write(request)
    save_script(job, script)
    job.log.record("script", key, ["script.json"], ran=True, by="writer", seed=request.seed)
    job.report("script", 1.0)
    return script, "writer"


def save_script(job: StageRun, script: Script) -> None:
    script.save(job.dir / "script.json")


def _make_narrator(conf: tuple[str, ...]) -> Any:
    from pipeline.narrate.narrator import Narrator

    offline, edge_url, offline_voice = conf
    return Narrator(
        offline=offline == "1",
        edge_endpoint=edge_url or None,
        prefer_piper=offline_voice != "espeak-ng",
        prefer_kokoro=offline_voice != "espeak-ng",
    )


# Keyed by the narration settings (`_narrator_conf`): a settings change makes a new narrator.
NARRATORS: Loader[tuple[str, ...], Any] = Loader("narrator", _make_narrator)


def narrator(config: Settings | None = None) -> Any:
    """The narrator for the current settings, made once per process and settings.

    `REELBOT_OFFLINE_VOICE=espeak-ng` makes English fall back to espeak-ng instead of piper, and
    Chinese instead of Kokoro (piper is GPL and optional; espeak-ng loads in milliseconds and its
    own word events time the words).
    """
    return NARRATORS.get(tuple(_narrator_conf(config or settings())))


def narration_stage(
    job: StageRun, brief: Brief, model: str | None, analysis: Analysis, script: Script, by: str
) -> tuple[Any, Script, str]:
    """Speak the script; when it runs >15% off the target, have the writer refit it once."""
    from pipeline.narrate.model import Narration

    def key_for(s: Script) -> str:
        # What is spoken, not the title or hashtags: a new title (an edit after delivery)
        # keeps the voice, the plan and every rendered segment.
        spoken = {k: v for k, v in s.to_dict().items() if k not in ("title", "hashtags")}
        # The rate joins the key only when set, so folders narrated before it existed stay fresh.
        rate = [brief.rate] if brief.rate else []
        return digest("narration", spoken, brief.voice, _narrator_conf(job.settings), *rate)

    key = key_for(script)
    if job.log.fresh("narration", key):
        job.log.reused("narration")
        return Narration.load(job.dir / "words.json"), script, key
    job.report("narrate", 0.05)
    narration = narrator(job.settings).narrate_script(
        script, job.dir, voice=brief.voice, rate=voice_rate(brief)
    )
    off = abs(narration.duration - brief.seconds) / brief.seconds
    if off > LENGTH_TOLERANCE and by == "writer" and not job.log.entry("script").get("refit"):
        log.info(
            "narration %.1fs for a %ds target: asking for a refit",
            narration.duration,
            brief.seconds,
        )
        job.report("script", 0.5)
        from pipeline.script import get_writer

        request = script_request(brief, analysis)
        request = dataclasses.replace(request, seed=job.log.entry("script").get("seed", brief.seed))
        script = get_writer(model, job.settings).write(request.refit(narration.duration))
        save_script(job, script)
        entry = job.log.entry("script")
        job.log.record(
            "script",
            entry["key"],
            ["script.json"],
            ran=True,
            by="writer",
            seed=request.seed,
            refit=True,
        )
        job.report("narrate", 0.5)
        narration = narrator(job.settings).narrate_script(
            script, job.dir, voice=brief.voice, rate=voice_rate(brief)
        )
        key = key_for(script)
    narration.save(job.dir / "words.json")
    job.log.record("narration", key, ["narration.wav", "words.json"], ran=True)
    job.report("narrate", 1.0)
    return narration, script, key


def voice_rate(brief: Brief) -> str:
    """The brief's voice speed in edge-tts's notation ("+15%"), which every engine takes."""
    return f"{brief.rate:+d}%"


def _narrator_conf(config: Settings) -> list[str]:
    """The settings a narration depends on, as the strings earlier job folders were keyed on."""
    return ["1" if config.tts_offline else "", config.edge_tts_url, config.offline_voice]


def plan_stage(
    job: StageRun,
    brief: Brief,
    media: tuple[MediaInfo, ...],
    analysis: Analysis,
    script: Script,
    narration: Any,
    keys: list[str],
) -> EditPlan:
    from pipeline.make.planner import MUSIC_GAIN_DB, build_plan
    from pipeline.music import check_music
    from pipeline.narrate.cues import build_cues, caption_style

    music = brief.music
    music_hash = file_hash(music) if music and os.path.isfile(music) else None
    models = (job.settings.text_embed_model, job.settings.image_text_model)
    key = digest(
        "plan", keys, dataclasses.asdict(brief.output), music, music_hash, CAPTION_PRESET, models
    )
    style = caption_look(caption_style(CAPTION_PRESET), brief)
    if job.log.fresh("plan", key):
        job.log.reused("plan")
        return _restyled(job, EditPlan.load(job.dir / "plan.json"), style, key)
    job.report("plan", 0.1)
    cues = build_cues(narration.words, narration.line_spans, script.language, style=style.name)
    gain = check_music(music).gain_db if music else MUSIC_GAIN_DB
    embed, image_scores = matchers(job.settings, script, analysis, media)
    plan = build_plan(
        media,
        analysis,
        script,
        narration,
        cues,
        style,
        brief.output,
        music,
        music_gain_db=gain,
        embed=embed,
        image_scores=image_scores,
    )
    plan.save(job.dir / "plan.json")
    job.log.record("plan", key, ["plan.json"], ran=True)
    job.report("plan", 1.0)
    return plan


def caption_look(style: CaptionStyle, brief: Brief) -> CaptionStyle:
    """The preset's style at the size and position the brief asks for (edits after delivery:
    "bigger captions", "字幕放上面"); the size stays inside what the plan accepts."""
    size = min(max(style.size * brief.caption_scale, 0.02), 0.12)
    return dataclasses.replace(style, size=round(size, 4), position=brief.caption_position)


def _restyled(job: StageRun, plan: EditPlan, style: CaptionStyle, key: str) -> EditPlan:
    """A current plan with the caption style the brief asks for. The look is not part of the
    plan's key: a caption edit rewrites only the style (the cut, and a shot swapped by an
    earlier edit, stay), and the stage is recorded again with the new plan.json."""
    current = [s for s in plan.styles if s.name == style.name]
    if not current or current[0] == style:
        return plan
    styles = tuple(style if s.name == style.name else s for s in plan.styles)
    plan = dataclasses.replace(plan, styles=styles)
    plan.save(job.dir / "plan.json")
    job.log.record("plan", key, ["plan.json"], ran=True)
    return plan


SHOWN_FILE = "storyboard.json"


def matchers(
    config: Settings, script: Script, analysis: Analysis, media: tuple[MediaInfo, ...]
) -> tuple[Any, Any]:
    """The text embedder (the packaged multilingual-e5 unless `REELBOT_TEXT_EMBED_MODEL` names
    another or `off`) and, when `REELBOT_IMAGE_TEXT_MODEL` is set, the sentences x shots
    image-text scores. A model that fails to load is logged and left out: matching still has
    the shots' words."""
    from pipeline.footage import scorers

    embed: Any = None
    image_scores: Any = None
    try:
        embed = scorers.text_embedder(config.text_embed_model or None)
    except scorers.ModelLoadError as exc:
        log.warning("text embedder not used: %s", exc.message)
    if config.image_text_model:
        try:
            scorer = scorers.image_text_scorer(config.image_text_model)
            if scorer is not None:
                spoken = list(script.spoken())
                image_scores = scorers.keyframe_scores(scorer, spoken, analysis.shots, media)
        except scorers.ModelLoadError as exc:
            log.warning("image-text model not used: %s", exc.message)
    return embed, image_scores


def storyboard_stage(job: StageRun, plan: EditPlan, narration: Any, analysis: Analysis) -> None:
    """key_NN.jpg: one frame per sentence for the storyboard the bot shows before rendering
    (only `prepare` and `revise` ask for it: a plain make has no use for it), and
    storyboard.json: what the shot under each sentence shows, in zh and en."""
    key = digest("storyboard", file_hash(job.dir / "plan.json"), file_hash(job.dir / "shots.json"))
    if job.log.fresh("storyboard", key):
        job.log.reused("storyboard")
        return
    for old in job.dir.glob("key_*.jpg"):  # a shorter script leaves no stale frames behind
        old.unlink()
    names = _keyframes(job, plan, narration)
    shown = [
        {"zh": seen.summary("zh"), "en": seen.summary("en")}
        for seen in shown_per_sentence(plan, narration, analysis)
    ]
    save_json(job.dir / SHOWN_FILE, {"shown": shown})
    job.log.record("storyboard", key, [*names, SHOWN_FILE], ran=True)


def shown_per_sentence(plan: EditPlan, narration: Any, analysis: Analysis) -> list[Seen]:
    """What the first shot under each narrated sentence shows (an empty `Seen` if unknown)."""
    from pipeline.make.planner import cut_frames
    from pipeline.render.renderer import frame_counts

    fps = plan.output.fps
    edges = cut_frames(narration.line_spans, plan.duration, fps)
    starts, acc = [], 0
    for n in frame_counts(plan):
        starts.append(acc)
        acc += n
    out = []
    for edge in edges[:-1]:
        seg = plan.segments[next(j for j, s in enumerate(starts) if s >= edge)]
        mid = (seg.start + seg.end) / 2
        shot = next(
            (
                s
                for s in analysis.shots
                if s.source == seg.source and (s.kind == "photo" or s.start <= mid <= s.end)
            ),
            None,
        )
        out.append(shot.seen if shot is not None else Seen())
    return out


def _keyframes(job: StageRun, plan: EditPlan, narration: Any) -> list[str]:
    """One JPEG per sentence: the middle of its first shot, cropped as the video shows it."""
    from PIL import Image

    from pipeline.make.planner import cut_frames
    from pipeline.render.renderer import frame_counts

    fps = plan.output.fps
    edges = cut_frames(narration.line_spans, plan.duration, fps)
    starts, acc = [], 0
    for n in frame_counts(plan):
        starts.append(acc)
        acc += n

    def one(i: int, edge: int) -> str:
        k = next(j for j, s in enumerate(starts) if s >= edge)
        seg, src = plan.segments[k], plan.sources[plan.segments[k].source]
        bgr = _still(src, seg.start + seg.duration / 2, 480, seg.start)
        h, w = bgr.shape[:2]
        r = seg.crop
        box = (round(r.x * w), round(r.y * h), round((r.x + r.w) * w), round((r.y + r.h) * h))
        img = Image.fromarray(bgr[:, :, ::-1].copy()).crop(box)
        img.thumbnail((360, 640))
        name = f"key_{i:02d}.jpg"
        img.save(job.path(name), "JPEG", quality=85)
        return name

    # Each keyframe is one seek and a few decoded frames: three at a time fill two cores.
    with ThreadPoolExecutor(3, thread_name_prefix="keyframe") as pool:
        return list(pool.map(one, range(len(edges) - 1), edges[:-1]))


def _still(info: MediaInfo, t: float, width: int, lo: float = 0.0) -> Any:
    """A frame of the shot between source seconds `lo` and `t`, cheaply (see `frame_at`)."""
    from pipeline.footage.frames import frame_at

    return frame_at(info, t, width, not_before=lo)
