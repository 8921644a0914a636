"""How well captions keep time with the voice: where a listener hears each cue's first word.

The listener is usually whisper transcribing the finished video's sound. Its words are matched
to the script's words by the same character-level alignment the narrator uses; a cue counts
only when whisper heard its first word start at that word's first character (a word merged
into a longer recognised one has no start of its own to compare).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

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
