"""The edit plan: the one piece of plain data between deciding an edit and rendering it.

Everything the renderer needs is in here (the renderer reads nothing else), so a plan can be saved
as JSON in the job folder, diffed, edited by hand and rendered again. Times are float seconds.
Crop windows are fractions of the source's displayed frame, so a plan does not depend on pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from pipeline.errors import PlanError
from pipeline.jsonfiles import Document
from pipeline.media import MediaInfo

PLAN_VERSION = 1

CaptionPosition = Literal["bottom", "middle", "top"]


@dataclass(frozen=True, slots=True)
class Rect:
    """A window inside a source frame, as fractions (0..1) of its displayed width and height."""

    x: float
    y: float
    w: float
    h: float

    @staticmethod
    def full() -> Rect:
        return Rect(0.0, 0.0, 1.0, 1.0)


@dataclass(frozen=True, slots=True)
class Segment:
    """One stretch of the timeline: a part of a source, cropped and scaled to the output.

    `start`/`end` are in the source's own seconds; for a photo only `end - start` matters.
    With `crop_end`, the window moves from `crop` to `crop_end` over the segment (a pan or a
    zoom: Ken Burns motion for photos, subject-following for video).
    """

    source: int  # index into EditPlan.sources
    start: float
    end: float
    crop: Rect
    crop_end: Rect | None = None
    ease: Literal["linear", "smooth"] = "smooth"
    # Gain for the source's own sound (0 = muted; narration carries the video). Kept sound is
    # ducked under the narration by the mixer and plays at this gain in the pauses.
    volume: float = 0.0
    # Why the source sound is kept or muted (a code the storyboard words): laughter_kept,
    # applause_kept, cheering_kept, animal_kept, speech_quoted, music_in_footage,
    # footage_music_muted, noise_muted, speech_muted; "" when there is nothing to say.
    sound_reason: str = ""

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class WordTiming:
    """A spoken word (or CJK character group) and when it is heard, in output seconds."""

    text: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class CaptionCue:
    """A caption shown from `start` to `end` (output seconds); `words` enable karaoke highlight."""

    text: str
    start: float
    end: float
    style: str = "default"
    words: tuple[WordTiming, ...] = ()


@dataclass(frozen=True, slots=True)
class CaptionStyle:
    """How captions look. Sizes are fractions of the output height so they scale with it."""

    name: str = "default"
    font: str = "Noto Sans CJK SC"
    size: float = 0.045
    colour: str = "#FFFFFF"
    highlight: str = "#FFD400"  # the spoken word, when karaoke is on
    outline_colour: str = "#000000"
    outline: float = 0.0035
    shadow: float = 0.0015
    bold: bool = True
    # Distance of the caption's baseline from the bottom, as a fraction of the height. 0.24 keeps
    # it clear of the bottom ~20% where the platforms draw their buttons and descriptions.
    margin_bottom: float = 0.24
    margin_side: float = 0.07
    karaoke: bool = False
    box: bool = False  # an opaque box behind the text instead of an outline
    # Where the captions sit: above the bottom margin, centred, or below the platforms' top bar
    # (`pipeline.render.subtitles.TOP_MARGIN`).
    position: CaptionPosition = "bottom"


@dataclass(frozen=True, slots=True)
class AudioTrack:
    """A sound file laid on the timeline: the narration, or music (looped, ducked under speech)."""

    path: str
    role: Literal["narration", "music"]
    start: float = 0.0  # where it begins on the output timeline
    gain_db: float = 0.0
    loop: bool = False
    duck: bool = True  # music only: lowered while the narration speaks


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """The file to produce."""

    width: int = 1080
    height: int = 1920
    fps: float = 30.0
    crf: int = 23
    preset: str = "veryfast"
    audio_bitrate_k: int = 128
    loudness_lufs: float = -14.0
    true_peak_db: float = -1.0
    encoder: Literal["auto", "libx264", "h264_nvenc"] = "libx264"
    tail: float = 0.0  # informational: seconds of picture kept after the last word


MAX_SIDE = 4096  # output pixels per side
SIZES: dict[str, tuple[int, int]] = {
    "1080x1920": (1080, 1920),
    "720x1280": (720, 1280),
    "1080x1080": (1080, 1080),
    "1920x1080": (1920, 1080),
}


@dataclass(frozen=True, slots=True)
class EditPlan(Document):
    """The whole edit: sources, the timeline of segments, captions, audio and the output."""

    WHAT: ClassVar[str] = "plan"
    ERROR: ClassVar[Callable[[str, str], Exception]] = PlanError
    sources: tuple[MediaInfo, ...]
    segments: tuple[Segment, ...]
    output: OutputSpec = field(default_factory=OutputSpec)
    captions: tuple[CaptionCue, ...] = ()
    styles: tuple[CaptionStyle, ...] = (CaptionStyle(),)
    audio: tuple[AudioTrack, ...] = ()
    cover_time: float | None = None  # output second shown on the cover; None = the hook's shot
    version: int = PLAN_VERSION

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.segments)

    def style(self, name: str) -> CaptionStyle:
        for s in self.styles:
            if s.name == name:
                return s
        raise PlanError("captions.style", f"no style named {name!r}")

    def validate(self) -> None:
        validate_plan(self)


def _finite(value: float, where: str) -> None:
    if not math.isfinite(value):
        raise PlanError(where, "must be a finite number")


def _check_rect(r: Rect, where: str) -> None:
    for name in ("x", "y", "w", "h"):
        _finite(getattr(r, name), f"{where}.{name}")
    eps = 1e-6
    if r.w <= 0 or r.h <= 0:
        raise PlanError(f"{where}.w" if r.w <= 0 else f"{where}.h", "must be positive")
    if r.x < -eps or r.y < -eps:
        raise PlanError(f"{where}.x" if r.x < -eps else f"{where}.y", "must be >= 0")
    if r.x + r.w > 1 + eps:
        raise PlanError(f"{where}.w", "window runs past the right edge (x + w > 1)")
    if r.y + r.h > 1 + eps:
        raise PlanError(f"{where}.h", "window runs past the bottom edge (y + h > 1)")


def validate_plan(plan: EditPlan) -> None:
    """Check what types cannot: ranges, references and ordering. Raises `PlanError`."""
    if plan.version != PLAN_VERSION:
        raise PlanError("version", f"unsupported plan version {plan.version}")
    out = plan.output
    if out.width < 16 or out.height < 16 or out.width % 2 or out.height % 2:
        raise PlanError("output.width", "width and height must be even and at least 16")
    if not 1 <= out.fps <= 120:
        raise PlanError("output.fps", "must be between 1 and 120")
    if not 0 <= out.crf <= 51:
        raise PlanError("output.crf", "must be between 0 and 51")
    if not plan.sources:
        raise PlanError("sources", "at least one source is needed")
    if not plan.segments:
        raise PlanError("segments", "at least one segment is needed")
    for i, seg in enumerate(plan.segments):
        where = f"segments[{i}]"
        if not 0 <= seg.source < len(plan.sources):
            raise PlanError(f"{where}.source", f"no source number {seg.source}")
        _finite(seg.start, f"{where}.start")
        _finite(seg.end, f"{where}.end")
        if seg.start < 0:
            raise PlanError(f"{where}.start", "must be >= 0")
        # A one-frame piece is `start + 1/fps`; the subtraction can lose a few ulps of that.
        if seg.end - seg.start < (1.0 - 1e-6) / out.fps:
            raise PlanError(f"{where}.end", "segment is shorter than one frame")
        src = plan.sources[seg.source]
        if src.kind == "video" and seg.end > src.duration + 0.05:
            raise PlanError(
                f"{where}.end", f"{seg.end:.3f}s is past the source's end ({src.duration:.3f}s)"
            )
        _check_rect(seg.crop, f"{where}.crop")
        if seg.crop_end is not None:
            _check_rect(seg.crop_end, f"{where}.crop_end")
        if seg.volume < 0:
            raise PlanError(f"{where}.volume", "must be >= 0")
    names = [s.name for s in plan.styles]
    if len(set(names)) != len(names):
        raise PlanError("styles", "style names must be unique")
    for i, st in enumerate(plan.styles):
        if not 0 < st.size < 0.5:
            raise PlanError(f"styles[{i}].size", "must be a fraction of the height in (0, 0.5)")
        for attr in ("colour", "highlight", "outline_colour"):
            value = getattr(st, attr)
            if not (
                len(value) == 7
                and value[0] == "#"
                and all(c in "0123456789abcdefABCDEF" for c in value[1:])
            ):
                raise PlanError(f"styles[{i}].{attr}", "must be a #RRGGBB colour")
    total = plan.duration
    for i, cue in enumerate(plan.captions):
        where = f"captions[{i}]"
        if cue.style not in names:
            raise PlanError(f"{where}.style", f"no style named {cue.style!r}")
        if not cue.text.strip():
            raise PlanError(f"{where}.text", "must not be empty")
        if not 0 <= cue.start < cue.end:
            raise PlanError(f"{where}.end", "must come after start, and start must be >= 0")
        if cue.start >= total:
            raise PlanError(f"{where}.start", "starts after the video ends")
        for j, w in enumerate(cue.words):
            if w.end < w.start:
                raise PlanError(f"{where}.words[{j}].end", "must not come before start")
    for i, tr in enumerate(plan.audio):
        if not tr.path:
            raise PlanError(f"audio[{i}].path", "must not be empty")
        if tr.start < 0:
            raise PlanError(f"audio[{i}].start", "must be >= 0")
    if sum(1 for tr in plan.audio if tr.role == "narration") > 1:
        raise PlanError("audio", "at most one narration track")
    if plan.cover_time is not None and not 0 <= plan.cover_time <= total:
        raise PlanError("cover_time", "must lie inside the video")


def output_size(spec: str) -> tuple[int, int]:
    """Parse '1080x1920' style sizes; the four the platforms use are named in `SIZES`."""
    if spec in SIZES:
        return SIZES[spec]
    try:
        w, h = (int(v) for v in spec.lower().split("x"))
    except ValueError as exc:
        raise PlanError("output.width", f"{spec!r} is not WIDTHxHEIGHT") from exc
    # The same bounds `validate_plan` applies, checked here so a bad size is refused before any
    # work (0x0 used to reach a division by zero in the planner); 4096 is what players accept.
    if not (16 <= w <= MAX_SIDE and 16 <= h <= MAX_SIDE and w % 2 == 0 and h % 2 == 0):
        raise PlanError("output.width", f"width and height must be even, 16 to {MAX_SIDE}")
    return w, h


def cover_rect(
    src_w: int, src_h: int, out_w: int, out_h: int, cx: float = 0.5, cy: float = 0.5
) -> Rect:
    """The largest window of the output's aspect inside the source, centred near (cx, cy)."""
    want = out_w / out_h
    have = src_w / src_h
    if have > want:
        w, h = want / have, 1.0
    else:
        w, h = 1.0, have / want
    x = min(max(cx - w / 2, 0.0), 1.0 - w)
    y = min(max(cy - h / 2, 0.0), 1.0 - h)
    return Rect(x, y, w, h)
