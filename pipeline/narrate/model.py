"""What narration produces: the spoken audio, who spoke it, and when each word and line is heard."""

from __future__ import annotations

import os
import wave
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from pipeline.errors import ReelbotError
from pipeline.jsonfiles import DataError, JsonFileError, from_dict, load_json, save_json, to_dict
from pipeline.plan import WordTiming

Engine = Literal["edge-tts", "kokoro", "piper", "espeak-ng"]
ENGINES: tuple[str, ...] = get_args(Engine)
NarrationLanguage = Literal["zh", "en"]


class NarrationError(ReelbotError):
    """Narration cannot be produced; `key` says why for the user's message.

    Keys: narration_failed (no voice could speak), narration_empty (nothing to say),
    narration_option (bad voice, rate or pitch), narration_saved (unreadable words.json).
    """

    key = "narration_failed"

    def __init__(self, message: str, key: str | None = None, **params: Any) -> None:
        super().__init__(message, **params)
        if key is not None:
            self.key = key


class TTSFailure(ReelbotError):
    """One engine failed: `reason` is a short English phrase, `code` a stable word for it.

    Codes: offline, no_voice, forbidden, http_error, dns, unreachable, timeout, no_audio,
    protocol, error. The bot words its zh/en message from the code.
    """

    key = "tts_failed"

    def __init__(self, engine: str, reason: str, code: str = "error") -> None:
        super().__init__(f"{engine}: {reason}", engine=engine, reason=reason, code=code)
        self.engine = engine
        self.reason = reason
        self.code = code


@dataclass(frozen=True, slots=True)
class Narration:
    """A narrated script: WAV file, duration, engine/voice, word timings, one span per sentence.

    Times are seconds on the output timeline (the WAV starts at 0). `line_spans[i]` is where
    sentence i of the script (`Script.spoken()` order) is audible; spans are ordered and do not
    overlap, the gaps between them are the pauses. `fallback_reason` says why the online voice
    was not used (None when edge-tts spoke) and `fallback_code` is the same as a stable code.
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
    fallback_code: str | None = None  # the reason as a stable code (see TTSFailure)
    timing: str = "engine"  # where word times came from: engine | whisper | estimated

    def line_words(self, index: int) -> tuple[WordTiming, ...]:
        """The words spoken inside sentence `index`'s span."""
        start, end = self.line_spans[index]
        return tuple(w for w in self.words if start - 1e-6 <= w.start and w.end <= end + 1e-6)

    # --- JSON (words.json in the job folder; lets a resumed job reuse the narration) ----------

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @staticmethod
    def from_dict(data: Any) -> Narration:
        """Rebuild a saved narration; a malformed one raises `NarrationError`."""
        try:
            return from_dict(Narration, data, what="narration")
        except DataError as exc:
            raise NarrationError(
                f"saved narration is malformed: {exc.field}: {exc.problem}", key="narration_saved"
            ) from exc

    def save(self, path: str | os.PathLike[str]) -> None:
        save_json(path, self)

    @staticmethod
    def load(path: str | os.PathLike[str]) -> Narration:
        try:
            data = load_json(path)
        except JsonFileError as exc:
            raise NarrationError(
                f"cannot read saved narration {path}: {exc.problem}", key="narration_saved"
            ) from exc
        return Narration.from_dict(data)


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


def write_wav(path: str, samples: np.ndarray, rate: int) -> None:
    """Mono float samples in [-1, 1] -> a 16-bit PCM WAV file."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(path, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())
