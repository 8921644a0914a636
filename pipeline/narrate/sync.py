"""How well captions keep time with the voice: where a listener hears each cue's first word.

Two instruments. The listener is usually whisper transcribing the finished video's sound. Its
words are matched to the script's words by the same character-level alignment the narrator
uses; a cue counts only when whisper heard its first word start at that word's first character
(a word merged into a longer recognised one has no start of its own to compare). Whisper's
word starts inside continuous speech are themselves off by up to ~0.2 s, so for cues whose
first word follows a pause the sound itself is the better reference: the word begins where the
sound comes back (`onset_errors`).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import numpy as np

from pipeline.narrate.align import Timed, normalise
from pipeline.plan import CaptionCue, WordTiming


def heard_starts(words: Sequence[WordTiming], heard: Sequence[Timed]) -> list[float | None]:
    """For each of `words`, when `heard` has it begin; None where it was not recognised."""
    ours: list[tuple[int, int]] = []  # (word index, char index within word) per character
    ours_text = ""
    for i, w in enumerate(words):
        n = normalise(w.text)
        ours_text += n
        ours.extend((i, k) for k in range(len(n)))
    theirs: list[tuple[int, int]] = []
    theirs_text = ""
    for j, h in enumerate(heard):
        n = normalise(h.text)
        theirs_text += n
        theirs.extend((j, k) for k in range(len(n)))
    starts: list[float | None] = [None] * len(words)
    matcher = difflib.SequenceMatcher(None, ours_text, theirs_text, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            (wi, wk), (hj, hk) = ours[block.a + k], theirs[block.b + k]
            if wk == 0 and hk == 0:  # both words begin at this very character
                starts[wi] = heard[hj].start
    return starts


def caption_sync_errors(cues: Sequence[CaptionCue], heard: Sequence[Timed]) -> list[float]:
    """Seconds each cue appears after (+) or before (-) its first word is heard.

    Cues whose first word the listener did not recognise are left out; compare the count with
    `len(cues)` to see how much was measured.
    """
    words = [w for c in cues for w in c.words]
    starts = heard_starts(words, heard)
    errors: list[float] = []
    index = 0
    for cue in cues:
        if cue.words:
            start = starts[index]
            if start is not None:
                errors.append(cue.start - start)
        index += len(cue.words)
    return errors


def onset_errors(
    cues: Sequence[CaptionCue],
    samples: np.ndarray,
    rate: int,
    *,
    floor_db: float = -40.0,
    pause: float = 0.12,
    reach: float = 0.3,
) -> list[float]:
    """Seconds each cue appears after (+) or before (-) the sound of its first word starts.

    Only cues whose first word follows a pause count: at least `pause` seconds of silence
    (`floor_db` under the peak, 5 ms frames) ending within `reach` seconds of the cue's start;
    the nearest such onset is taken, unless another cue word's start is nearer to it (then the
    sound resumes on that word: within 0.3 s of a cue in continuous speech there may be a pause
    before a word of its own). No model is involved, so this checks word timings where
    whisper's own starts are least reliable. Cues inside continuous speech are left out.
    """
    hop = max(rate // 200, 1)
    frames = len(samples) // hop
    if frames == 0:
        return []
    rms = np.sqrt(np.mean(samples[: frames * hop].reshape(frames, hop) ** 2, axis=1) + 1e-12)
    loud = rms > rms.max() * 10 ** (floor_db / 20)
    quiet = max(1, round(pause * 200))
    near = round(reach * 200)
    starts = np.array(sorted(w.start for c in cues for w in c.words))
    errors: list[float] = []
    for cue in cues:
        t = round(cue.start * 200)
        onsets = [k for k in range(max(quiet, t - near), min(frames, t + near + 1))
                  if loud[k] and not loud[k - quiet : k].any()]  # fmt: skip
        best = min(onsets, key=lambda k: abs(k - t), default=None)
        if best is None:
            continue
        mine = abs(cue.start - best / 200)
        if len(starts) and float(np.min(np.abs(starts - best / 200))) < mine - 1e-9:
            continue  # the sound comes back on another word
        errors.append(cue.start - best / 200)
    return errors
