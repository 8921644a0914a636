"""Edits after delivery: a new version of a job with one change, rendered reusing what did not
change.

A version is a folder inside the job folder (`v2/`, `v3/` ...) that starts as a copy of the
version the edit is based on (brief, stage log, media, shots, script, narration, plan), so the
old video and its files stay as they were. The change is written into the copy (the script, the
brief or the plan), and the usual stages bring it up to date: only the stages whose inputs
changed run again, and the renderer re-encodes only the segments whose pixels changed (the
segment cache is shared by all versions of a job).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import threading
from pathlib import Path

from pipeline.brief import Brief
from pipeline.errors import EditError, EditLimit
from pipeline.footage.model import Analysis
from pipeline.jsonfiles import load_json, save_json, to_dict
from pipeline.make import jobdir
from pipeline.make.editrequest import EditRequest
from pipeline.make.orchestrate import MakeResult, render_job
from pipeline.make.stages import ProgressFn
from pipeline.plan import CaptionPosition, EditPlan, Segment
from pipeline.script.model import Script, ScriptLine
from pipeline.settings import Settings

log = logging.getLogger(__name__)

# What a version copies from the one it is based on (the render's outputs are made anew).
_COPIED = ("brief.json", "stages.json", "media.json", "shots.json", "script.json",
           "narration.wav", "words.json", "plan.json")  # fmt: skip


def versions(job_dir: str | Path) -> list[str]:
    """The job's version folders, oldest first ("v2", "v3", ...)."""
    found = [p.name for p in Path(job_dir).iterdir() if re.fullmatch(r"v[0-9]+", p.name)]
    return sorted(found, key=lambda n: int(n[1:]))


def new_version(job_dir: str | Path, base: str = "") -> Path:
    """A fresh version folder, a copy of `base` ("" is the job folder itself)."""
    root = Path(job_dir)
    src = root / base if base else root
    taken = versions(root)
    number = int(taken[-1][1:]) + 1 if taken else 2
    dest = root / f"v{number}"
    dest.mkdir()
    for name in _COPIED:
        if (src / name).is_file():
            shutil.copy2(src / name, dest / name)
    return dest


def _spoken_lines(script: Script) -> list[str]:
    return list(script.spoken())


def _with_line(script: Script, index: int, text: str) -> Script:
    """Sentence `index` (1-based: the hook, the lines, the call to action) replaced by `text`."""
    count = len(_spoken_lines(script))
    if index == 1:
        return dataclasses.replace(script, hook=text, writer="user")
    if index == count:
        return dataclasses.replace(script, cta=text, writer="user")
    lines = list(script.lines)
    lines[index - 2] = ScriptLine(text=text, visual=lines[index - 2].visual)
    return dataclasses.replace(script, lines=tuple(lines), writer="user")


def _sentence_segments(plan: EditPlan, words_file: Path, index: int) -> list[int]:
    """The segments under sentence `index` (1-based), from the narration's line spans."""
    from pipeline.narrate.model import Narration
    from pipeline.render.renderer import frame_counts

    narration = Narration.load(words_file)
    spans = narration.line_spans
    if not 1 <= index <= len(spans):
        return []
    a, b = spans[index - 1]
    fps = plan.output.fps
    found, t = [], 0.0
    for k, n in enumerate(frame_counts(plan)):
        start, end = t, t + n / fps
        if start < b and end > a and (min(end, b) - max(start, a)) > 0.2:
            found.append(k)
        t = end
    return found


def _swap_shot(version: Path, index: int) -> None:
    """The shot under sentence `index` replaced by the best-scored shot the plan does not use
    that is long enough; the plan's stage entry is re-recorded so the edit is kept."""
    plan = EditPlan.load(version / "plan.json")
    analysis = Analysis.load(version / "shots.json")
    targets = _sentence_segments(plan, version / "words.json", index)
    if not targets:
        raise EditError(f"no shot under sentence {index}")
    k = targets[0]
    seg = plan.segments[k]
    used = {(s.source, round(s.start, 2)) for s in plan.segments}
    by_path = {src.path: i for i, src in enumerate(plan.sources)}
    aspect = _aspect(plan)
    for shot in sorted(analysis.shots, key=lambda s: -s.score):
        src = by_path.get(shot.path)
        if src is None or (src, round(shot.start, 2)) in used:
            continue
        if shot.kind == "video" and shot.duration < seg.duration:
            continue
        try:
            window = shot.crop(aspect)
        except KeyError:
            continue
        start = shot.start if shot.kind == "video" else 0.0
        new = Segment(src, start, start + seg.duration, window, volume=seg.volume)
        segs = list(plan.segments)
        segs[k] = new
        dataclasses.replace(plan, segments=tuple(segs)).save(version / "plan.json")
        log_ = jobdir.StageLog(version)
        entry = log_.entry("plan")
        log_.record("plan", entry.get("key", ""), ["plan.json"], ran=True)
        return
    raise EditError(f"no other footage for the shot under sentence {index}")


# A rate edit moves the voice this many percent; the voice stays within RATE_LIMITS.
RATE_STEP = 15
RATE_LIMITS = (-45, 60)
# A caption size edit scales the preset by this factor; the scale stays within SCALE_LIMITS.
SCALE_STEP = 1.25
SCALE_LIMITS = (0.6, 2.0)
_POSITIONS: dict[str, CaptionPosition] = {"bottom": "bottom", "middle": "middle", "top": "top"}


def _restyled_brief(brief: Brief, script: Script, request: EditRequest) -> Brief:
    """The brief with the voice, its speed or the captions' look changed as asked."""
    from pipeline.narrate.voices import another_voice, pick_voice

    word = request.text
    if request.kind == "rate":
        step = RATE_STEP if word == "faster" else -RATE_STEP
        rate = min(max(brief.rate + step, RATE_LIMITS[0]), RATE_LIMITS[1])
        if rate == brief.rate:
            raise EditLimit(f"the voice is already at its {word} limit ({brief.rate:+d}%)")
        return dataclasses.replace(brief, rate=rate)
    if request.kind == "voice":
        current = pick_voice(brief.language, script.style, brief.voice)
        return dataclasses.replace(brief, voice=another_voice(brief.language, current, word))
    if word in ("bigger", "smaller"):
        factor = SCALE_STEP if word == "bigger" else 1 / SCALE_STEP
        scale = min(max(brief.caption_scale * factor, SCALE_LIMITS[0]), SCALE_LIMITS[1])
        if abs(scale - brief.caption_scale) < 1e-6:
            raise EditLimit(f"the captions are already at their {word} limit")
        return dataclasses.replace(brief, caption_scale=round(scale, 4))
    position = _POSITIONS.get(word)
    if position is None:
        raise EditError(f"no caption change {word!r}")
    return dataclasses.replace(brief, caption_position=position)


def _keep_script(version: Path) -> None:
    """The delivered script stands: a voice or speed change must not have the writer refit it
    to the target length (the narration stage refits only scripts `by` the writer)."""
    log_ = jobdir.StageLog(version)
    entry = log_.entry("script")
    if entry:
        log_.data["stages"]["script"] = {**entry, "by": "user"}
        log_.save()


def _aspect(plan: EditPlan) -> str:
    w, h = plan.output.width, plan.output.height
    return "9:16" if h > w else "16:9" if w > h else "1:1"


def apply_edit(
    job_dir: str,
    request: EditRequest,
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    config: Settings | None = None,
) -> MakeResult:
    """A new version of the job with `request` applied, rendered into it."""
    version = new_version(job_dir, request.base)
    try:
        brief_data = load_json(version / jobdir.BRIEF_FILE)
        brief: Brief = jobdir.brief_from_dict(brief_data)
        script = Script.from_json((version / "script.json").read_text(encoding="utf-8"))
        if request.kind == "line":
            _with_line(script, request.index, request.text).save(version / "script.json")
        elif request.kind == "title":
            dataclasses.replace(script, title=request.text).save(version / "script.json")
        elif request.kind == "shot":
            _swap_shot(version, request.index)
        else:
            if request.kind == "music":
                brief = dataclasses.replace(brief, music=request.text or None)
            elif request.kind == "length":
                brief = dataclasses.replace(brief, seconds=request.seconds)
            elif request.kind == "language":
                brief = dataclasses.replace(brief, language="zh" if request.text == "zh" else "en")
            elif request.kind in ("rate", "voice", "captions"):
                brief = _restyled_brief(brief, script, request)
                if request.kind != "captions":
                    _keep_script(version)
            extra = {k: v for k, v in brief_data.items() if k == "script_model"}
            save_json(version / jobdir.BRIEF_FILE, {**to_dict(brief), **extra})
            if request.kind in ("length", "language"):
                (version / "script.json").unlink()  # written anew for the new request
        log.info("%s: %s edit as %s", job_dir, request.kind, version.name)
        return render_job(str(version), progress, cancel, config=config)
    except BaseException:
        shutil.rmtree(version, ignore_errors=True)  # a failed edit leaves no half version
        raise
