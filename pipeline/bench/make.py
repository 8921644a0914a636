"""`reelbot bench make`: the whole pipeline against the render alone, and caption sync.

A 30 s short from 3 x 20 s of 1080p footage (the render benchmark's clips). The whole
`make_video` is timed with a cold analysis cache, after the models a long-running process keeps
loaded (piper, whisper) were loaded once, as the bot does; then the render of the same plan is
timed alone. edge-tts cannot be reached from this machine, so the offline voice speaks
(REELBOT_TTS_OFFLINE=1); with edge-tts the narration stage is one network round trip instead.

Caption sync: when each cue is first on screen (its ASS start, rounded to the centisecond as
the subtitle file stores it, then to the first video frame at or after it) against its first
word's start, from the voice engine's timings and from whisper re-transcribing the video's audio.
Whisper's word times run end to end (a word after a pause "starts" where the previous one
ended), so its starts are first moved out of silence (`tighten_starts`); the raw figure is
printed too.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import tempfile
import time
from typing import Any

import numpy as np

from pipeline.brief import Brief, Footage
from pipeline.plan import CaptionCue, EditPlan, OutputSpec
from pipeline.settings import settings

CAPTIONS = ("a test card with moving colours", "soft drifting gradients", "a living pattern")
TOPIC = "Why simple routines beat motivation"


def shown_at(cue: CaptionCue, fps: float) -> float:
    """When the cue is first visible: centisecond ASS time, then the next frame boundary."""
    t = round(cue.start, 2)
    return math.ceil(t * fps - 1e-6) / fps


def bench(
    seconds: int = 30, keep: str | None = None, whisper: bool = True, writer: str = ""
) -> int:
    from pipeline.bench.render import make_inputs
    from pipeline.footage.understand import warm as warm_recognisers
    from pipeline.make import orchestrate as make
    from pipeline.make import stages as make_stages
    from pipeline.narrate.model import Narration
    from pipeline.render.renderer import render
    from pipeline.script import warm_writer

    # The offline voice and a cold analysis cache for this run only (the environment stays as is).
    config = dataclasses.replace(settings(), tts_offline=True, analysis_cache=False)
    if writer:
        config = dataclasses.replace(config, script_model=writer)
    clips, _ = make_inputs(30.0)
    work = keep or tempfile.mkdtemp(prefix="reelbot-bench-make-")
    job = os.path.join(work, "job")
    shutil.rmtree(job, ignore_errors=True)
    brief = Brief(
        topic=TOPIC,
        style="knowledge",
        language="en",
        seconds=seconds,
        footage=tuple(Footage(c, t) for c, t in zip(clips, CAPTIONS, strict=False)),
        output=OutputSpec(width=1080, height=1920),
    )
    # What a running bot has loaded already (it warms them as it starts): not timed.
    t0 = time.perf_counter()
    make_stages.narrator(config).narrate(["Warming up."], "en", os.path.join(work, "warm"))
    warm_recognisers()
    writer_name = warm_writer(config)
    print(f"voice: offline (edge-tts is unreachable here); writer: {writer_name}; models loaded in "
          f"{time.perf_counter() - t0:.1f}s, not counted", flush=True)  # fmt: skip

    marks: list[tuple[str, float]] = []

    def progress(stage: str, _fraction: float) -> None:
        if not marks or marks[-1][0] != stage:
            marks.append((stage, time.perf_counter()))

    t0 = time.perf_counter()
    result = make.make_video(brief, job, progress, config=config)
    total = time.perf_counter() - t0
    ends = [t for _, t in marks[1:]] + [t0 + total]
    split: dict[str, float] = {}
    for (stage, began), end in zip(marks, ends, strict=False):
        split[stage] = split.get(stage, 0.0) + end - began
    plan = EditPlan.load(os.path.join(job, "plan.json"))
    t1 = time.perf_counter()
    render(plan, os.path.join(work, "render-alone.mp4"))
    alone = time.perf_counter() - t1
    for stage, took in split.items():
        print(f"stage {stage:8s} {took:6.1f}s")
    before = total - split.get("render", 0.0)
    print(f"make_video {total:.1f}s (before the render {before:.1f}s = "
          f"{before / alone:.2f} x render); render alone {alone:.1f}s; "
          f"video {result.duration:.1f}s {result.width}x{result.height}", flush=True)  # fmt: skip

    narration = Narration.load(os.path.join(job, "words.json"))
    fps = plan.output.fps
    engine = [abs(shown_at(c, fps) - c.words[0].start) for c in plan.captions if c.words]
    p95 = {"engine": _p95(engine)}
    print(f"caption sync vs {narration.engine} word timings: {len(engine)} cues, "
          f"p95 {p95['engine']:.0f} ms, max {max(engine) * 1000:.0f} ms")  # fmt: skip
    onsets: list[float] = []
    if whisper:
        from faster_whisper.audio import decode_audio

        from pipeline.narrate.align import tighten_starts

        audio = decode_audio(result.video)
        onsets = _onset_errors(plan, audio, 16000)
        print(f"caption sync vs the sound itself (cues whose first word follows a pause): "
              f"{len(onsets)} cues, p95 {_p95(onsets):.0f} ms")  # fmt: skip
        heard = _heard(result.video)
        raw = _whisper_errors(plan, heard)
        errors = _whisper_errors(plan, tighten_starts(audio, 16000, heard))
        if errors:
            p95["whisper"] = _p95(errors)
            print(f"caption sync vs whisper on the output audio: {len(errors)} of "
                  f"{len(plan.captions)} cues heard, p95 {p95['whisper']:.0f} ms (whisper's "
                  f"own word starts, before moving them out of silence: "
                  f"p95 {_p95(raw):.0f} ms)")  # fmt: skip
    print(f"job folder: {job}")
    onset = f" onset_sync_ms_p95={_p95(onsets):.0f}" if whisper else ""
    print(f"make_ratio_vs_render={total / alone:.2f} caption_sync_ms_p95={max(p95.values()):.0f}"
          f"{onset}")  # fmt: skip
    return 0


def _p95(errors: list[float]) -> float:
    return float(np.percentile(np.abs(errors), 95)) * 1000 if errors else float("nan")


def _onset_errors(plan: EditPlan, audio: np.ndarray, rate: int) -> list[float]:
    """Shown time minus where the sound starts again, for each cue whose first word follows a
    pause (`pipeline.narrate.sync.onset_errors`): a model-free check of the word timings."""
    from pipeline.narrate.sync import onset_errors

    fps = plan.output.fps
    # Each cue (and its first word, which onset_errors tells apart from other words) as shown.
    shown = []
    for c in plan.captions:
        if c.words:
            at = shown_at(c, fps)
            first = dataclasses.replace(c.words[0], start=at)
            shown.append(dataclasses.replace(c, start=at, words=(first, *c.words[1:])))
    return onset_errors(shown, audio, rate)


def _heard(video: str) -> Any:
    from pipeline.speech import default_transcriber

    return default_transcriber().transcribe(video, language="en", vad=False,
                                            retry_temperatures=False).words  # fmt: skip


def _whisper_errors(plan: EditPlan, heard: Any) -> list[float]:
    """Shown time minus heard start of each cue's first word (cues whisper heard)."""
    from dataclasses import replace

    from pipeline.narrate.sync import caption_sync_errors

    fps = plan.output.fps
    shown = [replace(c, start=shown_at(c, fps)) for c in plan.captions]
    return caption_sync_errors(shown, heard)
