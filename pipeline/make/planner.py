"""Plan building: which shot plays under which narrated sentence, cut on the voice.

Pure: shots, narration timings, cues and the output spec in, an `EditPlan` out; no I/O, no
models, so every rule here is tested with synthetic shots.

Timing rules (all on the output frame grid, so the renderer's cumulative rounding in
`render.frame_counts` reproduces every cut exactly):
- the first segment starts at 0 and the segments tile the timeline without gaps;
- the cut between sentence i and i+1 sits at the middle of the pause between them, so the
  picture changes while nobody speaks and never under a word (a cut on the next sentence's first
  syllable reads as late; one on the last syllable of the previous one clips it);
- the video lasts the narration plus `tail` seconds of picture after the last word.

Shot rules: sentences are matched to what the shots show (subjects, screen text, captions,
speech; through the text embedder and image-text scores the caller passes); the hook gets the
strongest shot for it; the other sentences take what
`footage.assign_shots` picks (lines naming a shot get it, no shot twice while unused good ones
remain). A sentence longer than its shot gets more shots; once footage runs out, the best shots
come back at another moment or with another crop rather than freezing or going black.
Photos move (a gentle 10% Ken Burns zoom towards the subject); video windows that pan keep it.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from pipeline.errors import PlanError
from pipeline.footage.match import QUALITY_WEIGHT, Embedder, assign_shots, rank_shots
from pipeline.footage.model import Analysis, Shot
from pipeline.media import MediaInfo
from pipeline.plan import (
    AudioTrack,
    CaptionCue,
    CaptionStyle,
    EditPlan,
    OutputSpec,
    Rect,
    Segment,
)
from pipeline.script.model import Script

TAIL = 0.6  # seconds of picture after the last word
PHOTO_ZOOM = 1.10  # Ken Burns: the window shrinks by this factor over a photo's segment
REUSE_ZOOM = 1.15  # a re-used shot comes back this much tighter, so it does not look repeated
MUSIC_GAIN_DB = -16.0
MIN_PIECE = 0.8  # seconds: a shorter piece of a shot reads as a flash, not a shot
# Text similarity (without the quality part) from which a sentence is taken to name a shot.
NAMED_MATCH = 0.3


class NarrationLike(Protocol):
    """What the planner reads of a narration (`pipeline.narrate.model.Narration` fits)."""

    @property
    def audio_path(self) -> str: ...
    @property
    def duration(self) -> float: ...
    @property
    def line_spans(self) -> tuple[tuple[float, float], ...]: ...


def aspect_of(out: OutputSpec) -> str:
    """The analysis aspect ("9:16", "1:1", "16:9") nearest the output's."""
    ratio = out.width / out.height
    shapes = {"9:16": 9 / 16, "1:1": 1.0, "16:9": 16 / 9}
    return min(shapes, key=lambda name: abs(shapes[name] - ratio))


def cut_frames(spans: Sequence[tuple[float, float]], duration: float, fps: float) -> list[int]:
    """Frame numbers of the sentence boundaries: [0, cut_1, ..., cut_{n-1}, end].

    Each cut is the middle of the pause between two sentences, rounded to the nearest frame;
    the end is `duration` (narration + tail) rounded to a frame.
    """
    if not spans:
        raise PlanError("narration.line_spans", "no narrated sentences to plan")
    edges = [0]
    for (_, end_a), (start_b, _) in itertools.pairwise(spans):
        edges.append(max(round((end_a + start_b) / 2 * fps), edges[-1] + 1))
    edges.append(max(round(duration * fps), edges[-1] + 1))
    return edges


def _zoom(r: Rect, factor: float, cx: float | None = None, cy: float | None = None) -> Rect:
    """`r` shrunk by `factor` towards (cx, cy) (default its centre), kept inside the frame."""
    w, h = r.w / factor, r.h / factor
    cx = r.x + r.w / 2 if cx is None else cx
    cy = r.y + r.h / 2 if cy is None else cy
    x = min(max(cx - w / 2, r.x), r.x + r.w - w)
    y = min(max(cy - h / 2, r.y), r.y + r.h - h)
    return Rect(x, y, w, h)


@dataclasses.dataclass(slots=True)
class _Usage:
    """How often each shot has played and where its last piece ended (for the next moment)."""

    count: Counter[int] = dataclasses.field(default_factory=Counter)
    resume: dict[int, float] = dataclasses.field(default_factory=dict)


def _piece(
    shot: Shot,
    index: int,
    info: MediaInfo,
    seconds: float,
    aspect: str,
    usage: _Usage,
    photo_in: bool,
) -> tuple[Segment, float]:
    """One segment of `shot` lasting up to `seconds`; returns it and the seconds it covers."""
    crop = shot.crop(aspect)
    crop_end = shot.crop_end(aspect)
    reuse = usage.count[index]
    if shot.kind == "photo" or info.is_still:
        # Zoom towards the subject (where the analysis's own move ends), in or out by turns.
        target = crop_end or crop
        tight = _zoom(crop, PHOTO_ZOOM, target.x + target.w / 2, target.y + target.h / 2)
        if reuse:
            crop, tight = tight, _zoom(tight, PHOTO_ZOOM)
        a, b = (crop, tight) if photo_in else (tight, crop)
        return Segment(shot.source, 0.0, seconds, a, b, "smooth"), seconds
    lo, hi = shot.start, min(shot.end, info.duration)
    if reuse:
        # Another moment of the same footage: continue after the last piece played, wrapping
        # round to the start of the shot; and a tighter window, so it reads as a new angle.
        lo = usage.resume.get(index, lo)
        if hi - lo < min(seconds, MIN_PIECE):
            lo = shot.start
        crop = _zoom(crop, REUSE_ZOOM ** min(reuse, 2))
        crop_end = _zoom(crop_end, REUSE_ZOOM ** min(reuse, 2)) if crop_end else None
    length = min(seconds, hi - lo)
    if not reuse and length > seconds - 1e-9:
        # Centre the piece on the keyframe (the moment the analysis judged best).
        lo = min(max(shot.keyframe_time - seconds / 2, lo), hi - seconds)
    seg = Segment(shot.source, lo, lo + length, crop, crop_end, "smooth")
    usage.resume[index] = lo + length
    return seg, length


def _fill(
    first: int,
    ranked: list[tuple[int, float]],
    frames: int,
    fps: float,
    shots: Sequence[Shot],
    sources: Sequence[MediaInfo],
    aspect: str,
    usage: _Usage,
    good: float,
    photo_in: list[bool],
    reserved: frozenset[int] = frozenset(),
) -> list[tuple[Segment, int]]:
    """Segments covering `frames` frames: `first`, then more shots while it runs out; each
    with the index of the shot it plays."""
    out: list[tuple[Segment, int]] = []
    left = frames
    pick = first
    while left > 0:
        shot = shots[pick]
        seconds = left / fps
        seg, got = _piece(shot, pick, sources[shot.source], seconds, aspect, usage, photo_in[0])
        if shot.kind == "photo":
            photo_in[0] = not photo_in[0]
        n = min(left, max(1, int(got * fps + 1e-6)))
        # Leave the next piece long enough to read as a shot, not a flash.
        min_frames = round(MIN_PIECE * fps)
        short = min_frames - (left - n)
        if 0 < left - n < min_frames and n - short >= min_frames:
            n -= short
        # Snap the piece onto whole frames (its source window is at least this long).
        seg = dataclasses.replace(seg, end=seg.start + n / fps)
        out.append((seg, pick))
        usage.count[pick] += 1
        left -= n
        if left > 0:
            pick = _next_pick(pick, ranked, shots, usage, good, left / fps, reserved)
    return out


def _next_pick(
    current: int,
    ranked: list[tuple[int, float]],
    shots: Sequence[Shot],
    usage: _Usage,
    good: float,
    need: float,
    reserved: frozenset[int] = frozenset(),
) -> int:
    """The next shot for a sentence that outlasts its shot: the best unused one for it (good
    ones first) that no later sentence names; else another moment of a shot already played;
    only then a shot a later sentence names. Among played shots, the least played first,
    preferring one long enough for the rest."""
    for accept_weak in (False, True):
        for j, _ in ranked:
            if j == current or usage.count[j] or j in reserved:
                continue
            if accept_weak or shots[j].score >= good:
                return j
    free = [j for j, _ in ranked if j not in reserved and usage.count[j]]
    if free:
        fewest = min(usage.count[j] for j in free)
        pool = [j for j in free if usage.count[j] == fewest]
        long_enough = [j for j in pool if shots[j].kind == "photo" or shots[j].duration >= need]
        return (long_enough or pool)[0]
    for j, _ in ranked:
        if j != current and not usage.count[j]:
            return j
    fewest = min(usage.count[j] for j, _ in ranked)
    pool = [j for j, _ in ranked if usage.count[j] == fewest and j != current] or [
        j for j, _ in ranked
    ]
    long_enough = [j for j in pool if shots[j].kind == "photo" or shots[j].duration >= need]
    return (long_enough or pool)[0]


def build_plan(
    sources: tuple[MediaInfo, ...],
    analysis: Analysis,
    script: Script,
    narration: NarrationLike,
    cues: Sequence[CaptionCue],
    style: CaptionStyle,
    output: OutputSpec,
    music: str | None = None,
    *,
    tail: float = TAIL,
    music_gain_db: float = MUSIC_GAIN_DB,
    embed: Embedder | None = None,
    image_scores: np.ndarray | None = None,
) -> EditPlan:
    """The edit plan for a narrated script over analysed footage (see the module's rules).

    The script's narrated sentences (`Script.spoken()`) match `narration.line_spans` one to
    one; `cues` are the captions (`narrate.cues.build_cues`). Shots are matched to sentences
    by what they show (`Shot.document`), through `embed` (a text embedder, e.g.
    `footage.scorers.text_embedder()`) and `image_scores` (sentences x shots, 0..1, from an
    image-text model) when given. `music_gain_db` is the music's
    gain (`pipeline.music.Music.gain_db`: its measured level brought to one target).
    """
    sentences = script.spoken()
    shots = analysis.shots
    if not shots:
        raise PlanError("shots", "no usable shots in the footage")
    spans = narration.line_spans
    if len(sentences) != len(spans):
        raise PlanError("narration.line_spans", f"{len(spans)} spans for {len(sentences)} lines")
    fps = output.fps
    aspect = aspect_of(output)
    edges = cut_frames(spans, narration.duration + tail, fps)
    if image_scores is not None and image_scores.shape != (len(sentences), len(shots)):
        raise PlanError("image_scores", f"shape {image_scores.shape} for {len(sentences)} lines")
    ranked, picks = shot_picks(sentences, shots, embed=embed, image_scores=image_scores)
    scores = sorted(s.score for s in shots)
    good = scores[len(scores) // 2]
    usage = _Usage()
    photo_in = [True]
    segments: list[Segment] = []
    played: list[int] = []  # the shot each segment plays
    hook_piece: Segment | None = None
    for i, pick in enumerate(picks):
        frames = edges[i + 1] - edges[i]
        # The shots later sentences *name* (their text matches): a sentence that outlasts its
        # own shot must not take them (the hook running long took the clip the next line names).
        reserved = frozenset(
            p for k, p in enumerate(picks[i + 1 :], start=i + 1) if _names(ranked[k], shots, p)
        )
        if usage.count[pick]:
            # Assigned a shot already shown while a fresh one exists: take the fresh one.
            pick = _next_pick(-1, ranked[i], shots, usage, good, frames / fps, reserved)
        pieces = _fill(
            pick, ranked[i], frames, fps, shots, sources, aspect, usage, good, photo_in, reserved
        )
        if i == 0:
            hook_piece = pieces[0][0]
        segments += [seg for seg, _ in pieces]
        played += [j for _, j in pieces]
    assert hook_piece is not None
    segments, music = sound_decisions(segments, [shots[j] for j in played], script, music)
    tracks = [AudioTrack(narration.audio_path, "narration")]
    if music:
        tracks.append(AudioTrack(music, "music", gain_db=music_gain_db, loop=True, duck=True))
    cover = _cover_time(shots[picks[0]], hook_piece)
    named = tuple(dataclasses.replace(c, style=style.name) for c in cues)
    return EditPlan(
        sources=sources,
        segments=tuple(segments),
        output=dataclasses.replace(output, tail=tail),
        captions=named,
        styles=(style,),
        audio=tuple(tracks),
        cover_time=cover,
    )


def shot_picks(
    sentences: Sequence[str],
    shots: Sequence[Shot],
    *,
    embed: Embedder | None = None,
    image_scores: np.ndarray | None = None,
) -> tuple[list[list[tuple[int, float]]], list[int]]:
    """Every sentence's ranking of the shots, and the shot each sentence starts on: the hook
    the best for it, the others `assign_shots`' picks among the remaining shots."""
    ranked = rank_shots(sentences, shots, embed=embed, image_scores=image_scores)
    hook = ranked[0][0][0]
    # The hook's shot is spent; the rest of the lines share the other shots (all, if none left).
    others = [j for j in range(len(shots)) if j != hook] or [hook]
    picks = [hook]
    if len(sentences) > 1:
        sub_scores = None if image_scores is None else image_scores[1:][:, others]
        sub = assign_shots(
            list(sentences[1:]),
            [shots[j] for j in others],
            embed=embed,
            image_scores=sub_scores,
        )
        picks += [others[k] for k in sub]
    return ranked, picks


def _names(ranked: list[tuple[int, float]], shots: Sequence[Shot], j: int) -> bool:
    """Whether a sentence's text matches shot j (not just picked for quality or order)."""
    value = dict(ranked).get(j, 0.0)
    return value - QUALITY_WEIGHT * shots[j].score >= NAMED_MATCH


def _cover_time(shot: Shot, piece: Segment) -> float:
    """The output second of the hook shot's keyframe (or 40% into it if the piece missed it)."""
    if shot.kind != "photo" and piece.start <= shot.keyframe_time <= piece.end:
        return round(shot.keyframe_time - piece.start, 3)
    return round(piece.duration * 0.4, 3)


# --- the footage's own sound ---------------------------------------------------------------------

# Sounds worth hearing under the narration (and at full level in its pauses), when a window of
# the shot is at least KEEP_SCORE sure of them.
KEEP_TAGS = ("laughter", "applause", "cheering", "animal")
KEEP_SCORE = 0.5
# Music (or singing) filling at least this share of a shot's windows: the footage carries music.
MUSIC_SHARE = 0.5
# Footage music on at least this share of the video replaces the background music (one music
# is heard, not two); below it, the background music plays and the footage's music is muted.
FOOTAGE_MUSIC_WINS = 0.5
KEPT_LEVEL_DB = -20.0  # RMS (dBFS) the kept sound is brought to before ducking
FOOTAGE_MUSIC_LEVEL_DB = -30.0  # footage music sits under the voice like background music
MIN_GAIN, MAX_GAIN = 0.1, 4.0
_QUOTES = re.compile(r"“([^”]+)”|\"([^\"]+)\"|「([^」]+)」|『([^』]+)』|‘([^’]+)’")
MIN_QUOTE = 4  # characters (after normalising) a quote needs to be matched against speech


@dataclasses.dataclass(frozen=True, slots=True)
class SoundChoice:
    """What happens to a shot's own sound: its gain in the mix and why (`Segment.sound_reason`)."""

    volume: float
    reason: str


def _gain(level_db: float, target_db: float) -> float:
    return round(min(MAX_GAIN, max(MIN_GAIN, 10 ** ((target_db - level_db) / 20))), 3)


def _plain(text: str) -> str:
    """Lower case letters and digits only, so a quote matches a transcript however punctuated."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def quotes_of(script: Script) -> tuple[str, ...]:
    """What the narrated sentences quote (“...”, "...", 「...」), normalised by `_plain`."""
    found = []
    for sentence in script.spoken():
        for m in _QUOTES.finditer(sentence):
            q = _plain(next(g for g in m.groups() if g))
            if len(q) >= MIN_QUOTE:
                found.append(q)
    return tuple(found)


def sound_choice(shot: Shot, quotes: Sequence[str]) -> SoundChoice:
    """Keep laughter, applause, cheering, animals and a line the script quotes; flag music;
    mute wind/noise and other talk (it would fight the narration)."""
    heard = shot.heard
    if shot.kind != "video" or heard is None:
        return SoundChoice(0.0, "")
    for tag in KEEP_TAGS:
        if any(t.tag == tag and t.score >= KEEP_SCORE for t in heard.tags):
            return SoundChoice(_gain(heard.level_db, KEPT_LEVEL_DB), f"{tag}_kept")
    if heard.has("speech"):
        said = _plain(shot.text)
        if any(q in said for q in quotes):
            return SoundChoice(_gain(heard.level_db, KEPT_LEVEL_DB), "speech_quoted")
    if heard.share("music") >= MUSIC_SHARE or heard.share("singing") >= MUSIC_SHARE:
        return SoundChoice(_gain(heard.level_db, FOOTAGE_MUSIC_LEVEL_DB), "music_in_footage")
    if heard.dominant == "noise":
        return SoundChoice(0.0, "noise_muted")
    if heard.dominant == "speech":
        return SoundChoice(0.0, "speech_muted")
    return SoundChoice(0.0, "")


def sound_decisions(
    segments: Sequence[Segment], shots: Sequence[Shot], script: Script, music: str | None
) -> tuple[list[Segment], str | None]:
    """Each segment's `volume` and `sound_reason` from the shot it plays (`shots[i]` for
    `segments[i]`), and the background music that is left (None when footage music replaces
    it)."""
    quotes = quotes_of(script)
    choices = [sound_choice(shot, quotes) for shot in shots]
    total = sum(seg.duration for seg in segments) or 1.0
    with_music = sum(
        seg.duration
        for seg, c in zip(segments, choices, strict=True)
        if c.reason == "music_in_footage"
    )
    if music and with_music:
        if with_music / total >= FOOTAGE_MUSIC_WINS:
            music = None  # the footage's own music carries the video: no second tune on top
        else:
            choices = [
                SoundChoice(0.0, "footage_music_muted") if c.reason == "music_in_footage" else c
                for c in choices
            ]
    out = [
        dataclasses.replace(seg, volume=c.volume, sound_reason=c.reason)
        for seg, c in zip(segments, choices, strict=True)
    ]
    return out, music


def sound_notes(
    plan: EditPlan, spans: Sequence[tuple[float, float]], music: str | None
) -> tuple[tuple[int, str], ...]:
    """For the storyboard: (sentence number from 1, reason) for each sound decision, in order,
    once per sentence; (0, "music_left_out") first when the footage's music replaced `music`."""
    from pipeline.render.renderer import frame_counts

    edges = cut_frames(spans, plan.duration, plan.output.fps)
    notes: list[tuple[int, str]] = []
    if music and not any(t.role == "music" for t in plan.audio):
        notes.append((0, "music_left_out"))
    at = 0
    for seg, n in zip(plan.segments, frame_counts(plan), strict=True):
        sentence = max(i for i, e in enumerate(edges[:-1]) if e <= at) + 1
        note = (sentence, seg.sound_reason)
        if seg.sound_reason and note not in notes:
            notes.append(note)
        at += n
    return tuple(notes)
