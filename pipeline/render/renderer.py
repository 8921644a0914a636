"""EditPlan -> MP4 (+ cover JPEG) with ffmpeg, one pass for the picture, no per-frame Python.

The sound is mixed first in a short audio-only pass (narration, music ducked under it by a
sidechain compressor, any source sound) that also measures its loudness, so the main pass can
normalise it linearly to the platforms' -14 LUFS / -1 dBTP (single-pass loudnorm is dynamic and
misses the target by a few LU on short speech). Sources far larger than the output (8K video,
huge photos) are first shrunk into proxies, one pass per file. The main pass decodes each
segment with input seeking, crops before it scales (a 9:16 window of 1080p is a third of the
pixels), concatenates, burns the captions in with libass and encodes H.264 + AAC; the filter
graph is built by `pipeline.render.filters`.

If the main pass fails or stalls (see `pipeline.ffmpeg.run_ffmpeg`'s watchdog) it is retried
once segment by segment: each segment alone into a near-lossless intermediate file, then those
joined, captioned and encoded. Slower, but each ffmpeg then has a single input.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.errors import Cancelled, RenderError, RenderTimeout
from pipeline.ffmpeg import has_encoder, limits_for, render_nice, run_ffmpeg
from pipeline.plan import EditPlan, OutputSpec, validate_plan
from pipeline.render.audiomix import Loudness, mix_audio
from pipeline.render.filters import (
    frame_counts,
    join_chain,
    segment_chain,
    segment_input,
    segments_graph,
)
from pipeline.render.proxies import shrink_sources, slowness
from pipeline.render.segments import (
    CacheStats,
    SegmentCache,
    keyframe_args,
    render_from_cache,
    segment_keys,
)
from pipeline.render.subtitles import build_ass

__all__ = ["RenderResult", "build_command", "extract_frame", "frame_counts", "render"]

log = logging.getLogger(__name__)

ProgressFn = Callable[[float], None]

# x264's veryfast preset with a diamond motion search and the simplest sub-pixel refinement.
# On phone footage the grain defeats the hexagon search and the extra refinement: measured on
# the benchmark's clips, this spends ~20% less encoder CPU for the same SSIM against the
# uncompressed frames and a file within 2% of plain veryfast (README, "Renderer speed").
X264_PARAMS = "me=dia:subme=1"

# The segment-by-segment retry's intermediate files: x264 at a quality the final encode cannot
# tell from the original, at the cheapest preset.
INTERMEDIATE = ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "8", "-pix_fmt", "yuv420p"]


@dataclass(frozen=True, slots=True)
class RenderResult:
    """What was written and how."""

    path: str
    cover: str | None
    duration: float
    width: int
    height: int
    fps: float
    encoder: str
    size_bytes: int
    seconds: float  # wall time of the render
    segments: CacheStats | None = None  # what the segment cache gave, when one was used


def choose_encoder(out: OutputSpec) -> str:
    if out.encoder == "auto":
        return "h264_nvenc" if has_encoder("h264_nvenc") else "libx264"
    return out.encoder


def _video_codec_args(out: OutputSpec, encoder: str) -> list[str]:
    gop = str(max(round(out.fps * 2), 1))
    if encoder == "h264_nvenc":
        return ["-c:v", "h264_nvenc", "-preset", "p5", "-tune", "hq", "-rc", "vbr",
                "-cq", str(out.crf), "-b:v", "0", "-g", gop, "-pix_fmt", "yuv420p"]  # fmt: skip
    return ["-c:v", "libx264", "-preset", out.preset, "-crf", str(out.crf), "-g", gop,
            "-x264-params", X264_PARAMS, "-pix_fmt", "yuv420p", "-profile:v", "high",
            "-color_range", "tv", "-colorspace", "bt709", "-color_primaries", "bt709",
            "-color_trc", "bt709"]  # fmt: skip


def _audio_and_output(
    plan: EditPlan, audio: tuple[str, Loudness] | None, a_in: int, total_frames: int,
    out_path: str, encoder: str, video_chains: list[str], keyframes: list[int] | None = None,
) -> list[str]:  # fmt: skip
    """The sound input and chain, the mapping and encoder options, the output; `keyframes`
    (segment frame counts) forces an IDR frame at each segment start, for the segment cache."""
    out = plan.output
    args: list[str] = []
    chains = list(video_chains)
    if audio is not None:
        wav, ln = audio
        args += ["-i", wav]
        if ln.i > -70.0:
            norm = (
                f"loudnorm=I={out.loudness_lufs}:TP={out.true_peak_db}:LRA=11:"
                f"measured_I={ln.i}:measured_TP={ln.tp}:measured_LRA={ln.lra}:"
                f"measured_thresh={ln.thresh}:offset={ln.offset}:linear=true"
            )
        else:  # silence: nothing to normalise
            norm = "anull"
        chains.append(f"[{a_in}:a]{norm},aresample=48000[aout]")
    else:
        args += ["-f", "lavfi", "-i", "anullsrc=channel_layout=stereo:sample_rate=48000"]
        chains.append(f"[{a_in}:a]anull[aout]")
    duration = total_frames / out.fps
    args += [
        "-filter_complex", ";".join(chains), "-filter_complex_threads", "2",
        "-map", "[vout]", "-map", "[aout]",
        *_video_codec_args(out, encoder), *(keyframe_args(keyframes) if keyframes else []),
        "-r", f"{out.fps}", "-frames:v", str(total_frames),
        "-c:a", "aac", "-b:a", f"{out.audio_bitrate_k}k", "-ar", "48000", "-ac", "2",
        "-t", f"{duration:.4f}", "-movflags", "+faststart",
        "-metadata", "comment=made with reelbot", out_path,
    ]  # fmt: skip
    return args


def build_command(
    plan: EditPlan, ass_path: str | None, audio: tuple[str, Loudness] | None, out_path: str,
    encoder: str, keyframes: bool = False,
) -> list[str]:  # fmt: skip
    """The main pass's ffmpeg arguments (without the binary), for inspection and for running;
    `keyframes` forces an IDR frame at each segment start (for the segment cache).

    Every input gets `-reinit_filter 0`: by default ffmpeg rebuilds the whole filter graph when
    a decoded frame's parameters change mid-stream, which happens at the joins of footage glued
    from separately encoded shots (phone apps: one shot untagged, the next BT.470BG). The
    bundled ffmpeg (n9.0.2) deadlocks when that rebuild happens after another input of the
    graph has already ended (its `-t` reached), concat waiting on a stream that never comes.
    The chains convert every frame to BT.709 explicitly, so a rebuild gains nothing.
    """
    counts = frame_counts(plan)
    args: list[str] = []
    for seg, n in zip(plan.segments, counts, strict=True):
        src = plan.sources[seg.source]
        args += ["-reinit_filter", "0", *segment_input(seg, src, n, plan.output.fps)]
    chains = segments_graph(plan, counts, ass_path)
    return args + _audio_and_output(plan, audio, len(counts), sum(counts), out_path, encoder,
                                    chains, counts if keyframes else None)  # fmt: skip


def _segment_command(plan: EditPlan, k: int, n: int, out_path: str) -> list[str]:
    """One segment alone, picture only, into a near-lossless intermediate file."""
    seg = plan.segments[k]
    src = plan.sources[seg.source]
    chain = segment_chain(0, seg, src, plan.output, n)
    return [*segment_input(seg, src, n, plan.output.fps), "-filter_complex", chain,
            "-map", "[v0]", *INTERMEDIATE, "-r", f"{plan.output.fps}", "-frames:v", str(n),
            "-an", out_path]  # fmt: skip


def _join_command(
    plan: EditPlan, parts: list[str], ass_path: str | None, audio: tuple[str, Loudness] | None,
    out_path: str, encoder: str, keyframes: bool = False,
) -> list[str]:  # fmt: skip
    """The intermediate files concatenated, captioned and encoded with the sound."""
    args: list[str] = []
    chains = []
    for k, part in enumerate(parts):
        args += ["-i", part]
        chains.append(f"[{k}:v]setpts=PTS-STARTPTS[v{k}]")
    chains.append(join_chain(len(parts), ass_path))
    counts = frame_counts(plan)
    return args + _audio_and_output(plan, audio, len(parts), sum(counts), out_path, encoder,
                                    chains, counts if keyframes else None)  # fmt: skip


def _render_by_segments(
    plan: EditPlan, tmp: str, ass_path: str | None, audio: tuple[str, Loudness] | None,
    partial: str, encoder: str, report: ProgressFn, cancel: threading.Event | None,
    slow: float, keyframes: bool = False,
) -> None:  # fmt: skip
    counts = frame_counts(plan)
    total = plan.duration
    parts, done = [], 0.0
    for k, n in enumerate(counts):
        part = os.path.join(tmp, f"segment-{k}.mkv")
        seconds = n / plan.output.fps
        stall, limit = limits_for(seconds, slow)

        def step(f: float, base: float = done, span: float = seconds) -> None:
            report(0.03 + 0.45 * (base + f * span) / total)

        run_ffmpeg(_segment_command(plan, k, n, part), duration=seconds, progress=step,
                   cancel=cancel, what=f"render (segment {k + 1} of {len(counts)})",
                   stall_after=stall, time_limit=limit, nice=render_nice())  # fmt: skip
        parts.append(part)
        done += seconds
    stall, limit = limits_for(total)
    join = _join_command(plan, parts, ass_path, audio, partial, encoder, keyframes)
    run_ffmpeg(join, duration=total,
               progress=lambda f: report(0.48 + 0.5 * f), cancel=cancel,
               what="render (joining the segments)", stall_after=stall,
               time_limit=limit, nice=render_nice())  # fmt: skip


def _partial_path(out_path: str) -> str:
    """A temporary name beside the output that no other render shares, stale ones removed.

    The name carries this process's id and a random part: a render resumed after a crash must
    never write the same file as a leftover ffmpeg of the crashed one (that mix is a corrupt
    MP4). Leftovers of processes that are gone are deleted.
    """
    folder, name = os.path.split(os.path.abspath(out_path))
    for stale in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}.*.part.mp4")):
        pid = os.path.basename(stale)[len(name) + 2 :].split("-", 1)[0]
        if not pid.isdigit() or not _alive(int(pid)):
            with contextlib.suppress(OSError):
                os.remove(stale)
    return os.path.join(folder, f".{name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part.mp4")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def render(
    plan: EditPlan,
    out_path: str | os.PathLike[str],
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    cover_path: str | os.PathLike[str] | None = None,
    captions_path: str | os.PathLike[str] | None = None,
    segments_dir: str | os.PathLike[str] | None = None,
) -> RenderResult:
    """Render `plan` to `out_path` (MP4) and a cover JPEG beside it (or at `cover_path`).

    With `segments_dir`, each segment's encoded picture is kept there (`pipeline.render.segments`)
    and a later plan re-encodes only the segments that changed."""
    validate_plan(plan)
    began = time.monotonic()
    out_path = os.fspath(out_path)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    cover = os.fspath(cover_path) if cover_path else os.path.splitext(out_path)[0] + ".cover.jpg"
    report: ProgressFn = progress or (lambda _f: None)
    encoder = choose_encoder(plan.output)
    with tempfile.TemporaryDirectory(prefix="reelbot-render-") as tmp:
        ass_path, text = None, None
        if plan.captions:
            ass_path = os.path.join(tmp, "captions.ass")
            text = build_ass(plan)
            with open(ass_path, "w", encoding="utf-8") as fh:
                fh.write(text)
            if captions_path is not None:
                with open(captions_path, "w", encoding="utf-8") as fh:
                    fh.write(text)
        audio = mix_audio(plan, tmp, cancel)
        report(0.02)
        work = shrink_sources(plan, tmp, cancel)
        report(0.03)
        partial = _partial_path(out_path)
        slow = slowness(work)
        stall, limit = limits_for(plan.duration, slow)
        # Keyed on the plan as given (the sources' own fingerprints), encoded from `work`.
        cache = SegmentCache(segments_dir) if segments_dir is not None else None
        keys = segment_keys(plan, text, encoder) if cache is not None else []
        known = cache is not None and any(cache.has(k) for k in keys)
        stats = None
        try:
            try:
                if cache is not None and known:
                    stats = render_from_cache(
                        work, cache, keys, ass_path, audio, encoder, partial, tmp,
                        lambda f: report(0.03 + 0.95 * f), cancel,
                    )  # fmt: skip
                else:
                    run_ffmpeg(
                        build_command(work, ass_path, audio, partial, encoder, cache is not None),
                        duration=plan.duration,
                        progress=lambda f: report(0.03 + 0.95 * f),
                        cancel=cancel,
                        what="render",
                        nice=render_nice(),
                        stall_after=stall,
                        time_limit=limit,
                    )
            except Cancelled:
                raise
            except RenderError as first:
                kind = "stalled" if isinstance(first, RenderTimeout) else "failed"
                log.warning("render %s (%s); retrying segment by segment", kind, first.message)
                try:
                    _render_by_segments(work, tmp, ass_path, audio, partial, encoder, report,
                                        cancel, slow, cache is not None)  # fmt: skip
                except Cancelled:
                    raise
                except RenderError as second:
                    timeout = next(
                        (e for e in (second, first) if isinstance(e, RenderTimeout)), None
                    )
                    if timeout is None:
                        raise
                    raise RenderTimeout(
                        f"render {kind}, then failed segment by segment too: {second.message}",
                        timeout.reason,
                        second.log_tail,
                    ) from second
            if cache is not None and stats is None:  # a whole render: cut it into the cache
                cache.store_split(partial, keys, frame_counts(plan), cancel)
                stats = CacheStats(hits=0, misses=len(keys), full=True)
            os.replace(partial, out_path)
        finally:
            if os.path.exists(partial):
                os.remove(partial)
    cover_at = plan.cover_time
    if cover_at is None:
        first_len = plan.segments[0].duration
        cover_at = min(first_len * 0.4, max(plan.duration - 0.05, 0.0))
    extract_frame(out_path, cover_at, cover)
    report(1.0)
    result = RenderResult(
        path=out_path,
        cover=cover,
        duration=sum(frame_counts(plan)) / plan.output.fps,
        width=plan.output.width,
        height=plan.output.height,
        fps=plan.output.fps,
        encoder=encoder,
        size_bytes=os.path.getsize(out_path),
        seconds=time.monotonic() - began,
        segments=stats,
    )
    log.info("rendered %s (%.1fs video in %.1fs, %s)", out_path, result.duration,
             result.seconds, encoder)  # fmt: skip
    return result


def extract_frame(video: str, at: float, jpg: str, width: int | None = None) -> str:
    """Write the frame at `at` seconds of `video` as a JPEG (the cover), optionally scaled."""
    vf = ["-vf", f"scale={width}:-2"] if width else []
    run_ffmpeg(["-ss", f"{max(at, 0.0):.3f}", "-i", video, "-frames:v", "1", *vf,
                "-q:v", "3", jpg], what="cover", stall_after=60, time_limit=120,
               nice=render_nice())  # fmt: skip
    return jpg
