"""What each shot sounds like: the sound tags (`pipeline.see.sound`) of the windows inside it.

A file's audio is decoded and tagged once (one PyAV decode, one YAMNet pass over 0.96 s windows
every 0.48 s), and every shot takes the windows whose middle falls inside it; a shot shorter than
a window takes the nearest one. Listening is bounded: only the first `LISTEN_LIMIT_S` seconds of
a file are tagged (about 8 s of work at the measured speed); shots after that are left unheard
(`heard` None), as are photos, silent-track-less videos, and files whose sound cannot be decoded
or tagged (the picture analysis never fails for want of sound).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Seconds of a file's sound that are tagged. Longer files are rare as footage (the bot caps
# footage length well below this) and the planner only needs the shots it may use.
LISTEN_LIMIT_S = 600.0
# Tags the planner acts on: a tag is present in a shot when a window of it is at least this sure
# (the tagger's own clip threshold, `pipeline.see.sound.DEFAULT_TAG_THRESHOLD`).
TAG_THRESHOLD = 0.3


@dataclass(frozen=True, slots=True)
class HeardTag:
    """A sound tag heard in a shot: its best window's score and the share of windows it fills."""

    tag: str  # speech, singing, music, laughter, applause, cheering, animal, noise, silence
    score: float
    share: float


@dataclass(frozen=True, slots=True)
class Heard:
    """A shot's own sound: the tags (most present first), the dominant one, and how loud it is."""

    tags: tuple[HeardTag, ...] = ()
    dominant: str = ""  # the first tag's name; "" when nothing was heard clearly
    level_db: float = -100.0  # RMS level of the shot's sound, dBFS (power mean of its windows)

    def share(self, tag: str) -> float:
        return next((t.share for t in self.tags if t.tag == tag), 0.0)

    def has(self, tag: str) -> bool:
        return any(t.tag == tag for t in self.tags)


@dataclass(frozen=True, slots=True)
class Window:
    """One tagged window of a file: when, how loud, each tag's score (`names` order)."""

    start: float
    end: float
    level_db: float
    scores: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class FileSound:
    """A file's tagged windows, in file seconds, up to `heard_until`."""

    names: tuple[str, ...]
    windows: tuple[Window, ...]
    heard_until: float


def listen(path: str, duration: float) -> FileSound | None:
    """Decode and tag the first `LISTEN_LIMIT_S` seconds of a file's sound; None when it cannot
    be done (no model, undecodable audio): the shots are then simply unheard."""
    from pipeline.see import sound

    end = min(duration, LISTEN_LIMIT_S) if duration > 0 else LISTEN_LIMIT_S
    try:
        samples = sound.read_audio(path, 0.0, end)
        if len(samples) == 0:
            return None
        clip = sound.sound_of(samples, sound.SAMPLE_RATE, threshold=TAG_THRESHOLD)
    except (ImportError, OSError, ValueError, RuntimeError) as exc:
        # PyAV's errors are OSError/ValueError subclasses; onnxruntime raises RuntimeError.
        log.warning("sound of %s not tagged: %s", path, exc)
        return None
    windows = tuple(Window(w.start, w.end, w.level_db, w.scores) for w in clip.windows)
    return FileSound(clip.tag_names, windows, len(samples) / sound.SAMPLE_RATE)


def heard_between(sound: FileSound, start: float, end: float) -> Heard | None:
    """The tags of the windows whose middle lies in [start, end) (else the nearest window);
    None when the span lies beyond what was listened to."""
    if not sound.windows or start >= sound.heard_until:
        return None
    inside = [w for w in sound.windows if start <= (w.start + w.end) / 2 < end]
    if not inside:
        mid = (start + end) / 2
        inside = [min(sound.windows, key=lambda w: abs((w.start + w.end) / 2 - mid))]
    return summarise(sound.names, inside)


def summarise(names: Sequence[str], windows: Sequence[Window]) -> Heard:
    """Per tag, the best window's score and the share of windows at or above the threshold."""
    tags = []
    for col, name in enumerate(names):
        column = [w.scores[col] for w in windows]
        peak = max(column)
        if peak < TAG_THRESHOLD:
            continue
        share = sum(1 for v in column if v >= TAG_THRESHOLD) / len(column)
        tags.append(HeardTag(name, round(peak, 4), round(share, 4)))
    tags.sort(key=lambda t: (t.share, t.score), reverse=True)
    power = sum(10 ** (w.level_db / 10) for w in windows) / len(windows)
    level = round(10 * math.log10(max(power, 1e-10)), 1)
    return Heard(tuple(tags), tags[0].tag if tags else "", level)


def short_label(heard: Heard | None) -> str:
    """A few words for the contact sheet and the CLI: 'laughter 0.82 · speech' or ''."""
    if heard is None or not heard.tags:
        return ""
    first, *rest = heard.tags
    return " · ".join([f"{first.tag} {first.score:.2f}", *(t.tag for t in rest[:2])])
