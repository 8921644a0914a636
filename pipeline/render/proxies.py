"""Sources far larger than the output are shrunk once, before the main pass.

The main pass opens one decoder per *segment* (input seeking, the cheapest way to start each
segment on time). For 1080p or 4K footage that is cheap; for an 8K clip each decoder holds
dozens of 50 MB frames (its reference frames, one per decoding thread, the queue to the
filters), and a 12000x12000 photo is 430 MB per decoded copy: the issue measured 4.2 GB for a
10.7 MB 8K clip and 1.8 GB for a 419 KB PNG. Here each such file is decoded once, by one ffmpeg
with a bounded number of decoding threads, scaled right after decoding to just what its crop
windows need at the output size, and written as a near-lossless proxy that the main pass reads
instead. Only the time ranges the segments use are kept (`select`), so one pass serves all of a
file's segments.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading

from pipeline.ffmpeg import limits_for, render_nice, run_ffmpeg
from pipeline.media import MediaInfo
from pipeline.plan import EditPlan, OutputSpec, Segment
from pipeline.render.filters import SCALE_FLAGS, fit_aspect, px

log = logging.getLogger(__name__)

# Above 4K UHD a source is shrunk first when the output needs under 3/4 of its pixels per side.
PROXY_ABOVE_PIXELS = 3840 * 2160
PROXY_BELOW_SCALE = 0.75
# Decoding threads for a proxy pass: each frame thread holds a frame of its own (50 MB at 8K).
PROXY_THREADS = "4"
# Keyframes every half second: the main pass seeks into the proxy once per segment and decodes
# from the keyframe before; x264's default (250 frames) made it decode most of the proxy each time.
PROXY_GOP = "15"
HD_PIXELS = 1920 * 1080
_TRC = {"hlg": "arib-std-b67", "pq": "smpte2084"}


def needed_scale(plan: EditPlan, index: int) -> float:
    """The largest scale any crop window of source `index` is shown at (1.0 = source pixels)."""
    src = plan.sources[index]
    out = plan.output
    scale = 0.0
    for seg in plan.segments:
        if seg.source != index:
            continue
        for rect in (seg.crop, seg.crop_end):
            if rect is not None:
                _, _, w, h = px(fit_aspect(rect, src, out), src)
                scale = max(scale, out.width / w, out.height / h)
    return min(scale, 1.0)


def slowness(plan: EditPlan) -> float:
    """How much heavier the largest source is to decode than 1080p (at least 1)."""
    return max([s.width * s.height / HD_PIXELS for s in plan.sources] + [1.0])


def _even(v: float) -> int:
    return max(2, math.ceil(v / 2) * 2)


def shrink_sources(plan: EditPlan, tmp: str, cancel: threading.Event | None) -> EditPlan:
    """`plan` with each oversized source replaced by a shrunk proxy written under `tmp`."""
    sources = list(plan.sources)
    segments = list(plan.segments)
    for i, src in enumerate(plan.sources):
        if src.kind not in ("video", "photo") or src.width * src.height <= PROXY_ABOVE_PIXELS:
            continue
        scale = needed_scale(plan, i)
        if scale == 0.0 or scale > PROXY_BELOW_SCALE:
            continue
        w, h = min(_even(src.width * scale), src.width), min(_even(src.height * scale), src.height)
        mine = [k for k, seg in enumerate(plan.segments) if seg.source == i]
        if src.kind == "photo":
            path = os.path.join(tmp, f"proxy-{i}.png")
            run_ffmpeg(["-threads", PROXY_THREADS, "-i", src.path, "-vf",
                        f"scale={w}:{h}:flags={SCALE_FLAGS}", "-frames:v", "1", path],
                       cancel=cancel, what="shrinking a large photo",
                       nice=render_nice())  # fmt: skip
            sources[i] = dataclasses.replace(src, path=path, width=w, height=h, rotation=0,
                                             size_bytes=os.path.getsize(path))  # fmt: skip
        else:
            sources[i], shifted = _video_proxy(plan, i, mine, w, h, tmp, cancel)
            for k, seg in zip(mine, shifted, strict=True):
                segments[k] = seg
        log.info("source %d (%dx%d) shrunk to %dx%d for the render", i, src.width, src.height,
                 w, h)  # fmt: skip
    return dataclasses.replace(plan, sources=tuple(sources), segments=tuple(segments))


def _video_proxy(
    plan: EditPlan, i: int, mine: list[int], w: int, h: int, tmp: str,
    cancel: threading.Event | None,
) -> tuple[MediaInfo, list[Segment]]:  # fmt: skip
    """One pass over the span the segments of source `i` use, keeping only their frames."""
    src = plan.sources[i]
    out: OutputSpec = plan.output
    margin = 3.0 / out.fps  # the main pass reads up to two frames past a segment's end
    segs = [plan.segments[k] for k in mine]
    lo = max(min(s.start for s in segs) - margin, 0.0)
    hi = min(max(s.end for s in segs) + margin, src.duration) if src.duration else 0.0
    keep = "+".join(
        f"between(t\\,{s.start - lo - margin:.4f}\\,{s.end - lo + margin:.4f})" for s in segs
    )
    path = os.path.join(tmp, f"proxy-{i}.mkv")
    colour: list[str] = ["-pix_fmt", "yuv420p"]
    if src.hdr:  # keep the HDR signal as it is: the main pass tone-maps it
        colour = ["-pix_fmt", "yuv420p10le", "-color_primaries", "bt2020",
                  "-color_trc", _TRC[src.hdr], "-colorspace", "bt2020nc"]  # fmt: skip
    span = hi - lo if hi > lo else src.duration
    stall, limit = limits_for(span, slowness(plan))
    run_ffmpeg(
        ["-threads", PROXY_THREADS, "-ss", f"{lo:.4f}",
         *(["-t", f"{hi - lo:.4f}"] if hi > lo else []), "-i", src.path,
         "-vf", f"select='{keep}',scale={w}:{h}:flags={SCALE_FLAGS}", "-fps_mode", "passthrough",
         "-c:v", "libx264", "-preset", "ultrafast", "-crf", "8", "-g", PROXY_GOP, *colour,
         "-an", path],
        duration=span, cancel=cancel, what="shrinking a large video", stall_after=stall,
        time_limit=limit, nice=render_nice(),
    )  # fmt: skip
    proxy = dataclasses.replace(src, path=path, width=w, height=h, rotation=0, duration=span,
                                has_audio=False, size_bytes=os.path.getsize(path))  # fmt: skip
    shifted = [dataclasses.replace(s, start=s.start - lo, end=s.end - lo) for s in segs]
    return proxy, shifted
