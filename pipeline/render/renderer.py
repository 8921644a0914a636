"""EditPlan -> MP4 (+ cover JPEG) with ffmpeg, one pass for the picture, no per-frame Python.

The sound is mixed first in a short audio-only pass (narration, music ducked under it by a
sidechain compressor, any source sound) that also measures its loudness, so the main pass can
normalise it linearly to the platforms' -14 LUFS / -1 dBTP (single-pass loudnorm is dynamic and
misses the target by a few LU on short speech). The main pass decodes each segment with input
seeking, crops before it scales (a 9:16 window of 1080p is a third of the pixels), concatenates,
burns the captions in with libass and encodes H.264 + AAC.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from pipeline.ffmpeg import has_encoder, run_ffmpeg
from pipeline.media import MediaInfo
from pipeline.plan import EditPlan, OutputSpec, Rect, Segment, validate_plan
from pipeline.render.audiomix import Loudness, mix_audio
from pipeline.render.segments import (
    CacheStats,
    SegmentCache,
    keyframe_args,
    render_from_cache,
    segment_keys,
)
from pipeline.render.subtitles import build_ass

log = logging.getLogger(__name__)

ProgressFn = Callable[[float], None]

# swscale's default. Bilinear was measured too: a little cheaper and softer, but its smoothing
# of sensor grain shrinks files by ~20%, which is quality given away, not speed found.
SCALE_FLAGS = "bicubic"

# x264's veryfast preset with a diamond motion search and the simplest sub-pixel refinement.
# On phone footage the grain defeats the hexagon search and the extra refinement: measured on
# the benchmark's clips, this spends ~20% less encoder CPU for the same SSIM against the
# uncompressed frames and a file within 2% of plain veryfast (README, "Renderer speed").
X264_PARAMS = "me=dia:subme=1"

# Every frame leaves its segment as BT.709 limited range, what players assume for HD H.264:
# photos (JPEG, full-range BT.601) and clips would otherwise mix ranges in one stream.
COLOUR = "out_color_matrix=bt709:out_range=tv"

# HDR video (HLG from phones, PQ/HDR10) is tone-mapped to SDR BT.709 at the output size (after
# the crop and scale, so on the fewest pixels) through the 3D LUT of `pipeline.hdr`: zimg's
# chain sampled once. SDR colours stored as HLG come back within ~5%, highlights roll off,
# HLG's reference white (75%) lands at ~92%, near what BT.2408 suggests. Without it HLG looks
# grey and flat.


def _lut(src: MediaInfo) -> str:
    """RGB (gbrp16le) in, tone-mapped BT.709 YUV out."""
    from pipeline.hdr import cube_file

    cube = _filter_path(cube_file(src.hdr))
    return f"lut3d=file={cube}:interp=tetrahedral,scale=out_color_matrix=bt709:out_range=tv,"


def _tonemap(src: MediaInfo) -> str:
    """HDR YUV in, tone-mapped BT.709 YUV out."""
    return "scale=in_color_matrix=bt2020:in_range=tv,format=gbrp16le," + _lut(src)


def _tick(fps: float) -> str:
    """One frame's duration as an exact fraction for ffmpeg ("1/30", "1001/30000")."""
    rate = Fraction(fps).limit_denominator(1001)
    return f"{rate.denominator}/{rate.numerator}"


def _colour(src: MediaInfo) -> str:
    """The scaler's colour conversion: to BT.709 tv range, except for HDR (tone-mapped later)."""
    return "" if src.hdr else f":{COLOUR}"


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


def frame_counts(plan: EditPlan) -> list[int]:
    """Frames per segment, rounded on the *cumulative* timeline so cuts land on exact frames.

    Rounding each segment alone would let errors add up: ten 1.017 s segments would drift by
    a frame. Here segment i spans frames round(T_i * fps) .. round(T_{i+1} * fps).
    """
    fps = plan.output.fps
    counts, t, prev = [], 0.0, 0
    for seg in plan.segments:
        t += seg.duration
        edge = round(t * fps)
        counts.append(max(edge - prev, 1))
        prev = edge
    return counts


def _even(v: float) -> int:
    return max(2, round(v / 2) * 2)


def _px(rect: Rect, src: MediaInfo) -> tuple[float, float, float, float]:
    return rect.x * src.width, rect.y * src.height, rect.w * src.width, rect.h * src.height


def _fit_aspect(rect: Rect, src: MediaInfo, out: OutputSpec) -> Rect:
    """Shrink a window about its centre to the output's aspect if the plan's is off by >1%."""
    want = out.width / out.height
    x, y, w, h = _px(rect, src)
    have = w / h
    if abs(have / want - 1) <= 0.01:
        return rect
    if have > want:
        nw = h * want
        x, w = x + (w - nw) / 2, nw
    else:
        nh = w / want
        y, h = y + (h - nh) / 2, nh
    return Rect(x / src.width, y / src.height, w / src.width, h / src.height)


def _crop_filter(x: float, y: float, w: float, h: float) -> str:
    return f"crop={_even(w)}:{_even(h)}:{int(x)}:{int(y)}"


def _motion_filters(seg: Segment, src: MediaInfo, out: OutputSpec, n: int) -> tuple[str, str]:
    """Filters (before, after a photo's frame loop) for a window moving from crop to crop_end.

    The union of both windows is cropped and scaled once; `perspective` then samples the moving
    window with sub-pixel precision each frame (zoompan rounds to whole pixels and judders).
    """
    assert seg.crop_end is not None
    a = _px(_fit_aspect(seg.crop, src, out), src)
    b = _px(_fit_aspect(seg.crop_end, src, out), src)
    ux, uy = min(a[0], b[0]), min(a[1], b[1])
    ux2, uy2 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    ux, uy = math.floor(ux), math.floor(uy)
    uw, uh = min(math.ceil(ux2 - ux), src.width - ux), min(math.ceil(uy2 - uy), src.height - uy)
    # Scale so the smaller window keeps at least the output's resolution, within 2x the output.
    k = out.width / min(a[2], b[2])
    k = min(k, 2.0 * max(out.width, out.height) / max(uw, uh))
    sw, sh = _even(uw * k), _even(uh * k)
    kx, ky = sw / uw, sh / uh
    span = max(n - 1, 1)
    p = f"min(in/{span},1)"
    if seg.ease == "smooth":
        p = f"({p})*({p})*(3-2*({p}))"

    def lerp(v0: float, v1: float) -> str:
        return f"({v0:.3f}+({v1 - v0:.3f})*{p})"

    def corner(
        rect: tuple[float, float, float, float], fx: float, fy: float
    ) -> tuple[float, float]:
        return (rect[0] - ux + fx * rect[2]) * kx, (rect[1] - uy + fy * rect[3]) * ky

    coords = []
    for i, (fx, fy) in enumerate(((0, 0), (1, 0), (0, 1), (1, 1))):
        (x0, y0), (x1, y1) = corner(a, fx, fy), corner(b, fx, fy)
        coords.append(f"x{i}='{lerp(x0, x1)}':y{i}='{lerp(y0, y1)}'")
    before = f"crop={uw}:{uh}:{ux}:{uy},scale={sw}:{sh}:flags=bicubic{_colour(src)}"
    after = f"perspective={':'.join(coords)}:interpolation=linear:sense=source:eval=frame"
    if (sw, sh) != (out.width, out.height):
        after += f",scale={out.width}:{out.height}:flags={SCALE_FLAGS}{_colour(src)}"
    return before, after


def _segment_input(seg: Segment, src: MediaInfo, n: int, fps: float) -> list[str]:
    if src.kind == "photo":
        return ["-i", src.path]
    need = n / fps + 2.0 / fps
    if src.kind == "animation" and src.video_codec == "webp":
        # ffmpeg's WebP demuxer cannot seek back, so -stream_loop never ends (a hung render);
        # a segment stays inside the animation's length anyway, and the chain pads its end.
        return ["-t", f"{seg.start + need:.3f}", "-i", src.path]
    if src.kind == "animation":
        # GIFs are short and loop by nature: loop the input rather than run out.
        return ["-stream_loop", "-1", "-t", f"{seg.start + need:.3f}", "-i", src.path]
    # Input seeking: ffmpeg jumps to the keyframe before `start` and drops frames up to it.
    return ["-ss", f"{seg.start:.3f}", "-t", f"{need:.3f}", "-i", src.path]


def _segment_chain(k: int, seg: Segment, src: MediaInfo, out: OutputSpec, n: int) -> str:
    """The filter chain turning input k into exactly n output frames of the output's size."""
    size = f"scale={out.width}:{out.height}:flags={SCALE_FLAGS}{_colour(src)}"
    tail = f"setsar=1,format=yuv420p,setpts=PTS-STARTPTS[v{k}]"
    if src.hdr and src.kind == "video":
        if seg.crop_end is None:  # one scaler pass both scales and turns BT.2020 YUV into RGB
            size += ":in_color_matrix=bt2020:in_range=tv,format=gbrp16le"
            tail = _lut(src) + tail
        else:
            tail = _tonemap(src) + tail
    if src.kind == "photo":
        # The frames get the output's time base before their timestamps: an image's own time
        # base (1/25 from the image demuxer) would round N/30 s to 1/25 s ticks, and concat
        # would then start every later segment up to a frame early (captions drifting late).
        loop = f"loop=loop={n - 1}:size=1:start=0,settb={_tick(out.fps)},setpts=N"
        if seg.crop_end is None:
            crop = _crop_filter(*_px(_fit_aspect(seg.crop, src, out), src))
            return f"[{k}:v]{crop},{size},format=yuv420p,{loop},{tail}"
        before, after = _motion_filters(seg, src, out, n)
        return f"[{k}:v]{before},format=yuv420p,{loop},{after},{tail}"
    head = f"[{k}:v]fps={out.fps}"
    if src.kind == "animation" and seg.start > 0:
        head += f",trim=start={seg.start:.3f},setpts=PTS-STARTPTS"
    # If the source runs out a frame early (rounding at its very end), repeat its last frame.
    pad = ",tpad=stop=-1:stop_mode=clone" if seg.start + n / out.fps > src.duration - 0.1 else ""
    head += f"{pad},trim=end_frame={n}"
    if seg.crop_end is None:
        crop = _crop_filter(*_px(_fit_aspect(seg.crop, src, out), src))
        return f"{head},{crop},{size},{tail}"
    before, after = _motion_filters(seg, src, out, n)
    return f"{head},{before},{after},{tail}"


def _filter_path(path: str) -> str:
    """Quote a path for use as a filter option value inside -filter_complex."""
    return (
        "'" + path.replace("\\", "\\\\\\\\").replace("'", "'\\\\\\''").replace(":", "\\\\:") + "'"
    )


# --- the main pass ---------------------------------------------------------------------------


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


def build_command(
    plan: EditPlan, ass_path: str | None, audio: tuple[str, Loudness] | None, out_path: str,
    encoder: str, keyframes: bool = False,
) -> list[str]:  # fmt: skip
    """The main pass's ffmpeg arguments (without the binary), for inspection and for running;
    `keyframes` forces an IDR frame at each segment start (for the segment cache)."""
    out = plan.output
    counts = frame_counts(plan)
    args: list[str] = []
    chains: list[str] = []
    for k, (seg, n) in enumerate(zip(plan.segments, counts, strict=True)):
        src = plan.sources[seg.source]
        args += _segment_input(seg, src, n, out.fps)
        chains.append(_segment_chain(k, seg, src, out, n))
    total_frames = sum(counts)
    inputs = "".join(f"[v{k}]" for k in range(len(counts)))
    video = f"{inputs}concat=n={len(counts)}:v=1:a=0" if len(counts) > 1 else f"{inputs}null"
    if ass_path is not None:
        # No fontsdir: libass would load every font file in it (the CJK collection is ~200 MB
        # of RSS); fontconfig, which found the font, hands libass just the one it needs.
        video += f",ass=filename={_filter_path(ass_path)}:shaping=complex"
    chains.append(video + "[vout]")
    a_in = len(counts)
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
        *_video_codec_args(out, encoder), *(keyframe_args(counts) if keyframes else []),
        "-r", f"{out.fps}", "-frames:v", str(total_frames),
        "-c:a", "aac", "-b:a", f"{out.audio_bitrate_k}k", "-ar", "48000", "-ac", "2",
        "-t", f"{duration:.4f}", "-movflags", "+faststart",
        "-metadata", "comment=made with reelbot", out_path,
    ]  # fmt: skip
    return args


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
        report(0.03)
        partial = os.path.join(os.path.dirname(os.path.abspath(out_path)),
                               f".{os.path.basename(out_path)}.part.mp4")  # fmt: skip
        cache = SegmentCache(segments_dir) if segments_dir is not None else None
        keys = segment_keys(plan, text, encoder) if cache else []
        stats = None
        try:
            if cache is not None and any(cache.has(k) for k in keys):
                stats = render_from_cache(
                    plan, cache, keys, ass_path, audio, encoder, partial, tmp,
                    lambda f: report(0.03 + 0.95 * f), cancel,
                )  # fmt: skip
            else:
                args = build_command(plan, ass_path, audio, partial, encoder, cache is not None)
                run_ffmpeg(
                    args,
                    duration=plan.duration,
                    progress=lambda f: report(0.03 + 0.95 * f),
                    cancel=cancel,
                    what="render",
                )
                if cache is not None:
                    cache.store_split(partial, keys, frame_counts(plan), cancel)
                    stats = CacheStats(hits=0, misses=len(keys), full=True)
            os.replace(partial, out_path)
        finally:
            if os.path.exists(partial):
                os.remove(partial)
    cover_at = plan.cover_time
    if cover_at is None:
        first = plan.segments[0].duration
        cover_at = min(first * 0.4, max(plan.duration - 0.05, 0.0))
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
                "-q:v", "3", jpg], what="cover")  # fmt: skip
    return jpg
