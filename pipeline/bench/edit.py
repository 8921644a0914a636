"""`reelbot bench edit`: what an edit after delivery costs against the full render.

The same 30 s 1080x1920 plan as `reelbot bench render` (6 shots x 5 s from 3 x 20 s 1080p clips,
a caption per shot, a narration) is rendered in full into a segment cache, then twice more:
with one line changed (its shot moves to other footage and its caption's words change: one
segment to encode) and with music added (the picture is all in the cache: only the sound is
mixed and encoded). The full render without a segment cache is timed too, so the cost of the
cache (forced IDR frames at the cuts, the split) shows. The last line has the ratios.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time

from pipeline.bench import samples
from pipeline.bench.render import build_plan, make_inputs
from pipeline.plan import AudioTrack, EditPlan
from pipeline.render.renderer import RenderResult, render

CHANGED = 3  # the line (and shot) the line edit changes


def line_edit(plan: EditPlan) -> EditPlan:
    """Shot CHANGED cut from elsewhere in its footage and its caption reworded."""
    segs = list(plan.segments)
    seg = segs[CHANGED]
    segs[CHANGED] = dataclasses.replace(seg, start=seg.start + 4.0, end=seg.end + 4.0)
    cues = list(plan.captions)
    cues[CHANGED] = dataclasses.replace(cues[CHANGED], text="A better line for shot four")
    return dataclasses.replace(plan, segments=tuple(segs), captions=tuple(cues))


def music_edit(plan: EditPlan, music: str) -> EditPlan:
    """The same picture with a music bed added (looped, ducked under the narration)."""
    track = AudioTrack(music, "music", gain_db=-8.0, loop=True)
    return dataclasses.replace(plan, audio=(*plan.audio, track))


def _timed(plan: EditPlan, out: str, segments: str | None) -> tuple[float, RenderResult]:
    began = time.monotonic()
    result = render(plan, out, segments_dir=segments)
    return time.monotonic() - began, result


def bench(keep: str | None = None) -> int:
    clips, wav = make_inputs(30.0)
    work = keep or tempfile.mkdtemp(prefix="reelbot-bench-edit-")
    os.makedirs(work, exist_ok=True)
    segments = os.path.join(work, "segments")
    shutil.rmtree(segments, ignore_errors=True)
    music = samples.tone_wav(os.path.join(work, "music.wav"), 12.0, freq=220.0, level=0.2)
    plan = build_plan(clips, wav)
    plain, _ = _timed(plan, os.path.join(work, "plain.mp4"), None)
    print(f"full render, no segment cache: {plain:.1f}s", flush=True)
    full, r = _timed(plan, os.path.join(work, "full.mp4"), segments)
    print(f"full render into the segment cache: {full:.1f}s ({r.segments})", flush=True)
    line, r = _timed(line_edit(plan), os.path.join(work, "line.mp4"), segments)
    print(f"line edit (one shot and its caption): {line:.1f}s ({r.segments})", flush=True)
    tune, r = _timed(music_edit(plan, music), os.path.join(work, "music.mp4"), segments)
    print(f"music edit (sound only): {tune:.1f}s ({r.segments})", flush=True)
    print(f"segment cache cost on the full render: {100 * (full / plain - 1):+.0f}%")
    if keep is None:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"edit_line_ratio={line / full:.2f} edit_music_ratio={tune / full:.2f} "
        f"cache_overhead={full / plain:.2f}"
    )
    return 0
