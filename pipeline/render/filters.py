"""The main pass's filter graph: per-segment chains, the concatenation, captions, the HDR LUT.

Pure functions from an `EditPlan` to ffmpeg filter text; `pipeline.render.renderer` runs them.
Every file path that goes into a filter option passes through `filter_arg`.
"""

from __future__ import annotations

import math
from fractions import Fraction

from pipeline.media import MediaInfo
from pipeline.plan import EditPlan, OutputSpec, Rect, Segment

# swscale's default. Bilinear was measured too: a little cheaper and softer, but its smoothing
# of sensor grain shrinks files by ~20%, which is quality given away, not speed found.
SCALE_FLAGS = "bicubic"

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

    cube = filter_arg(cube_file(src.hdr))
    return f"lut3d=file={cube}:interp=tetrahedral,scale=out_color_matrix=bt709:out_range=tv,"


def _tonemap(src: MediaInfo) -> str:
    """HDR YUV in, tone-mapped BT.709 YUV out."""
    return "scale=in_color_matrix=bt2020:in_range=tv,format=gbrp16le," + _lut(src)


def tick(fps: float) -> str:
    """One frame's duration as an exact fraction for ffmpeg ("1/30", "1001/30000")."""
    rate = Fraction(fps).limit_denominator(1001)
    return f"{rate.denominator}/{rate.numerator}"


def _colour(src: MediaInfo) -> str:
    """The scaler's colour conversion: to BT.709 tv range, except for HDR (tone-mapped later)."""
    return "" if src.hdr else f":{COLOUR}"


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


def px(rect: Rect, src: MediaInfo) -> tuple[float, float, float, float]:
    return rect.x * src.width, rect.y * src.height, rect.w * src.width, rect.h * src.height


def fit_aspect(rect: Rect, src: MediaInfo, out: OutputSpec) -> Rect:
    """Shrink a window about its centre to the output's aspect if the plan's is off by >1%."""
    want = out.width / out.height
    x, y, w, h = px(rect, src)
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
    a = px(fit_aspect(seg.crop, src, out), src)
    b = px(fit_aspect(seg.crop_end, src, out), src)
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


def segment_input(seg: Segment, src: MediaInfo, n: int, fps: float) -> list[str]:
    """The input options and `-i` for one segment (without `-reinit_filter`, see below)."""
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


def segment_chain(k: int, seg: Segment, src: MediaInfo, out: OutputSpec, n: int) -> str:
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
        loop = f"loop=loop={n - 1}:size=1:start=0,settb={tick(out.fps)},setpts=N"
        if seg.crop_end is None:
            crop = _crop_filter(*px(fit_aspect(seg.crop, src, out), src))
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
        crop = _crop_filter(*px(fit_aspect(seg.crop, src, out), src))
        return f"{head},{crop},{size},{tail}"
    before, after = _motion_filters(seg, src, out, n)
    return f"{head},{before},{after},{tail}"


def _escape(text: str, special: str) -> str:
    return "".join("\\" + c if c in special or c.isspace() else c for c in text)


def filter_arg(value: str) -> str:
    """`value` (a file path) escaped for use as a filter option value inside a filter graph.

    ffmpeg unescapes it twice: the graph parser (special: `\\ ' [ ] , ;`), then the filter's
    option parser (special: `\\ ' :`), and both trim unescaped whitespace at the ends. So it is
    escaped for the option parser first, then that result for the graph parser, each special
    character and each whitespace character with a backslash. (Quoting the value instead, as
    this code once did, turns off the graph level's unescaping inside the quotes, so an
    escaped `:` reached the file system as `\\:`.)
    """
    return _escape(_escape(value, "\\':"), "\\'[],;")


def segments_graph(plan: EditPlan, counts: list[int], ass_path: str | None) -> list[str]:
    """Chains taking inputs 0..len(segments)-1 to `[vout]`: each segment, concat, captions."""
    out = plan.output
    chains = [
        segment_chain(k, seg, plan.sources[seg.source], out, n)
        for k, (seg, n) in enumerate(zip(plan.segments, counts, strict=True))
    ]
    chains.append(join_chain(len(counts), ass_path))
    return chains


def join_chain(n: int, ass_path: str | None) -> str:
    """`[v0]..[v{n-1}]` concatenated, captions burned in, to `[vout]`."""
    inputs = "".join(f"[v{k}]" for k in range(n))
    video = f"{inputs}concat=n={n}:v=1:a=0" if n > 1 else f"{inputs}null"
    if ass_path is not None:
        # No fontsdir: libass would load every font file in it (the CJK collection is ~200 MB
        # of RSS); fontconfig, which found the font, hands libass just the one it needs.
        video += f",ass=filename={filter_arg(ass_path)}:shaping=complex"
    return video + "[vout]"
