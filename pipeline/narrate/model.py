"""What narration produces: the spoken audio, who spoke it, and when each word and line is heard."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from pipeline.errors import ReelbotError
from pipeline.plan import WordTiming

Engine = Literal["edge-tts", "piper", "espeak-ng"]
NarrationLanguage = Literal["zh", "en"]


class NarrationError(ReelbotError):
    """Narration cannot be produced (no usable voice, empty script, bad option)."""

    key = "narration_failed"


class TTSFailure(ReelbotError):
    """One engine failed; `reason` is a short English phrase the narrator records on fallback."""

    key = "tts_failed"

    def __init__(self, engine: str, reason: str) -> None:
        super().__init__(f"{engine}: {reason}", engine=engine, reason=reason)
        self.engine = engine
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Narration:
    """A narrated script: WAV file, duration, engine/voice, word timings, one span per sentence.

    Times are seconds on the output timeline (the WAV starts at 0). `line_spans[i]` is where
    sentence i of the script (`Script.spoken()` order) is audible; spans are ordered and do not
    overlap, the gaps between them are the pauses. `fallback_reason` says why the online voice
    was not used (None when edge-tts spoke).
    """

    audio_path: str
    duration: float
    engine: Engine
    voice: str
    language: str
    words: tuple[WordTiming, ...]
    line_spans: tuple[tuple[float, float], ...]
    sentences: tuple[str, ...]
    sample_rate: int = 48000
    fallback_reason: str | None = None
    timing: str = "engine"  # where word times came from: engine | whisper | estimated

    def line_words(self, index: int) -> tuple[WordTiming, ...]:
        """The words spoken inside sentence `index`'s span."""
        start, end = self.line_spans[index]
        return tuple(w for w in self.words if start - 1e-6 <= w.start and w.end <= end + 1e-6)


@dataclass(frozen=True, slots=True)
class Clip:
    """One sentence as an engine spoke it: mono float samples and its words (clip seconds).

    `words` may be engine words (edge-tts boundaries, espeak-ng events) not yet mapped onto the
    script's own words; `timed` says whether the engine gave word times at all (piper does not).
    """

    samples: np.ndarray
    rate: int
    words: tuple[WordTiming, ...]
    timed: bool = True

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate
