"""The narrator: speaks a script's sentences with edge-tts or, when that fails, an offline voice.

Offline, Chinese is spoken by Kokoro-82M (`narrate.kokoro`) and English by piper where they are
installed; espeak-ng speaks when neither can, and is the last resort for both languages.

Each sentence is synthesised on its own, trimmed of the engine's silence, and laid end to end
with a short natural pause, so every script line gets an exact span. Word timings come from the
engine where it has them (edge-tts boundaries, Kokoro's and piper's phoneme durations, espeak-ng
word events) and otherwise from
aligning the known text to whisper's word timestamps (piper). The WAV is 48 kHz mono, what the
renderer mixes at.
"""

from __future__ import annotations

import logging
import os
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from pipeline.ffmpeg import run_ffmpeg
from pipeline.jsonfiles import atomic_path
from pipeline.narrate.align import (
    align_words,
    audible_bounds,
    normalise,
    tighten_ends,
    tighten_starts,
)
from pipeline.narrate.edge import EdgeEngine
from pipeline.narrate.model import (
    Clip,
    Engine,
    Narration,
    NarrationError,
    TTSFailure,
    write_wav,
)
from pipeline.narrate.offline import EspeakEngine, PiperEngine
from pipeline.narrate.voices import (
    Gender,
    edge_hz,
    edge_percent,
    is_kokoro_voice,
    offline_gender,
    pick_voice,
)
from pipeline.plan import WordTiming
from pipeline.script.model import Script
from pipeline.settings import settings
from pipeline.speech import SpeechModelError, Transcriber, default_transcriber

log = logging.getLogger(__name__)

OUTPUT_RATE = 48000
Timing = Literal["engine", "whisper", "estimated"]


@dataclass(frozen=True, slots=True)
class _Spoken:
    clips: list[Clip]
    engine: Engine
    voice: str


class Narrator:
    """Turns sentences into a `Narration`; engines and the whisper model load once and are reused.

    `offline=True` skips edge-tts (default: REELBOT_TTS_OFFLINE); `edge_endpoint` points edge-tts at
    another websocket URL (or pass a configured `edge` engine); `pause` is the silence between
    sentences in seconds; `prefer_piper=False` makes English fall back to espeak-ng too, and
    `prefer_kokoro=False` Chinese (default for both: REELBOT_OFFLINE_VOICE is not espeak-ng).
    """

    def __init__(
        self,
        *,
        offline: bool | None = None,
        edge_endpoint: str | None = None,
        edge: EdgeEngine | None = None,
        transcriber: Transcriber | None = None,
        pause: float = 0.3,
        prefer_piper: bool | None = None,
        prefer_kokoro: bool | None = None,
    ) -> None:
        self.offline = settings().tts_offline if offline is None else offline
        self.edge = edge or EdgeEngine(edge_endpoint)
        self._transcriber = transcriber
        self.pause = pause
        # Unless told, REELBOT_OFFLINE_VOICE=espeak-ng turns both off.
        best = settings().offline_voice != "espeak-ng"
        self.prefer_piper = best if prefer_piper is None else prefer_piper
        self.prefer_kokoro = best if prefer_kokoro is None else prefer_kokoro

    def narrate(
        self,
        sentences: Sequence[str],
        language: str,
        out_dir: str | os.PathLike[str],
        voice: str | None = None,
        style: str | None = None,
        rate: str = "+0%",
        pitch: str = "+0Hz",
        *,
        filename: str = "narration.wav",
    ) -> Narration:
        """Speak `sentences` in order into `out_dir/filename` (WAV) and time every word.

        `voice` is an edge-tts voice name (else one is picked by language and `style`) or, for
        Chinese, a Kokoro voice (jm_kumo, jf_alpha: offline by choice); `rate` and `pitch` use
        edge-tts's notation ('+10%', '-5Hz') and apply to the fallback too (Kokoro has no pitch).
        The offline fallback speaks with a female voice unless a male one was asked for
        (`voices.offline_gender`).
        """
        texts = tuple(s.strip() for s in sentences)
        if not texts:
            raise NarrationError("there is nothing to narrate", key="narration_empty")
        for i, t in enumerate(texts):
            if not normalise(t):  # nothing a voice could say: empty, only punctuation or emoji
                raise NarrationError(
                    f"sentence {i + 1} has no words to speak: {t!r}",
                    key="narration_empty",
                    index=i,
                )
        rate_frac = edge_percent(rate, "rate")
        pitch_hz = edge_hz(pitch)
        edge_voice = (
            pick_voice(language, style, voice) if voice or language in ("zh", "en") else None
        )
        out = Path(out_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NarrationError(f"cannot write the narration into {out}: {exc}") from exc

        fallback: tuple[str, str] | None = None  # (code, reason)
        spoken: _Spoken | None = None
        if edge_voice is not None and is_kokoro_voice(edge_voice):
            spoken = self._kokoro(texts, edge_voice, rate_frac)  # chosen: no fallback to tell
        elif self.offline:
            fallback = ("offline", "offline mode was requested")
        elif edge_voice is None:
            fallback = ("no_voice", f"no edge-tts voice is chosen for language {language!r}")
        else:
            try:
                clips = self.edge.synthesize(texts, edge_voice, rate, pitch, str(out))
                spoken = _Spoken(clips, "edge-tts", edge_voice)
            except TTSFailure as exc:
                fallback = (exc.code, exc.reason)
                log.warning("edge-tts unavailable (%s); using an offline voice", exc.reason)
        if spoken is None:
            # The best understood offline voice unless the user asked for a male one.
            gender = offline_gender(voice, style)
            spoken = self._offline(texts, language, rate_frac, pitch_hz, gender)
        return self._assemble(texts, language, spoken, out / filename, fallback)

    def narrate_script(
        self,
        script: Script,
        out_dir: str | os.PathLike[str],
        voice: str | None = None,
        rate: str = "+0%",
        pitch: str = "+0Hz",
    ) -> Narration:
        """Narrate a `Script` (hook, lines, call to action) with a voice fitting its style."""
        return self.narrate(
            script.spoken(), script.language, out_dir, voice=voice, style=script.style,
            rate=rate, pitch=pitch,
        )  # fmt: skip

    def _kokoro(self, texts: tuple[str, ...], voice: str, rate: float) -> _Spoken:
        from pipeline.narrate.kokoro import KokoroEngine

        try:
            kokoro = KokoroEngine()
            return _Spoken([kokoro.synthesize(t, voice, rate) for t in texts], "kokoro", voice)
        except TTSFailure as exc:
            raise NarrationError(f"the Kokoro voice failed: {exc.reason}") from exc

    def _offline(
        self, texts: tuple[str, ...], language: str, rate: float, pitch_hz: int, gender: Gender
    ) -> _Spoken:
        if language == "zh" and self.prefer_kokoro:
            from pipeline.narrate.kokoro import KokoroEngine

            try:
                kokoro = KokoroEngine()
                name = kokoro.voice_for(gender)
                clips = [kokoro.synthesize(t, name, rate) for t in texts]
                return _Spoken(clips, "kokoro", name)
            except TTSFailure as exc:
                log.warning("kokoro unavailable (%s); using espeak-ng", exc.reason)
        if language == "en" and self.prefer_piper:
            try:
                piper = PiperEngine()
                clips = [piper.synthesize(t, rate) for t in texts]
                return _Spoken(clips, "piper", piper.voice_name)
            except TTSFailure as exc:
                log.warning("piper unavailable (%s); using espeak-ng", exc.reason)
        try:
            espeak = EspeakEngine()
            name = espeak.voice_for(language, gender)
            clips = [espeak.synthesize(t, language, name, rate, pitch_hz) for t in texts]
        except TTSFailure as exc:
            raise NarrationError(f"no voice could speak the script: {exc.reason}") from exc
        return _Spoken(clips, "espeak-ng", name)

    def _assemble(
        self,
        texts: tuple[str, ...],
        language: str,
        spoken: _Spoken,
        path: Path,
        fallback: tuple[str, str] | None,
    ) -> Narration:
        rate = spoken.clips[0].rate
        pad = int(0.04 * rate)
        gap = np.zeros(int(self.pause * rate), dtype=np.float32)
        parts: list[np.ndarray] = []
        spans: list[tuple[float, float]] = []
        trimmed: list[Clip] = []
        pos = 0
        for clip in spoken.clips:
            if clip.rate != rate:
                raise NarrationError("engine returned clips at different sample rates")
            a, b = audible_bounds(clip.samples, rate)
            a, b = max(a - pad, 0), min(b + pad, len(clip.samples))
            samples = clip.samples[a:b]
            shift, length = a / rate, (b - a) / rate
            words = tuple(
                WordTiming(w.text, min(max(w.start - shift, 0.0), length),
                           min(max(w.end - shift, 0.0), length))
                for w in clip.words
            )  # fmt: skip
            trimmed.append(Clip(samples, rate, words, clip.timed))
            if parts:
                parts.append(gap)
                pos += len(gap)
            spans.append((pos / rate, (pos + len(samples)) / rate))
            parts.append(samples)
            pos += len(samples)
        parts.append(np.zeros(int(0.1 * rate), dtype=np.float32))  # let the last word ring out
        audio = np.concatenate(parts)

        out = path.parent
        fd, native = tempfile.mkstemp(suffix=".wav", dir=out)
        os.close(fd)
        try:
            write_wav(native, audio, rate)
            words, timing = self._time_words(texts, language, spoken.engine, trimmed, spans, native)
            with atomic_path(path, suffix=".wav") as tmp_out:
                args = ["-v", "error", "-i", native, "-ar", str(OUTPUT_RATE), "-ac", "1",
                        "-c:a", "pcm_s16le", str(tmp_out)]  # fmt: skip
                run_ffmpeg(args, what="writing narration")
        finally:
            os.remove(native)
        with wave.open(str(path), "rb") as wav:
            duration = wav.getnframes() / wav.getframerate()
        log.info("narrated %d sentences with %s/%s: %.2fs, timing from %s",
                 len(texts), spoken.engine, spoken.voice, duration, timing)  # fmt: skip
        return Narration(
            audio_path=str(path),
            duration=duration,
            engine=spoken.engine,
            voice=spoken.voice,
            language=language,
            words=words,
            line_spans=tuple(spans),
            sentences=texts,
            sample_rate=OUTPUT_RATE,
            fallback_reason=fallback[1] if fallback else None,
            fallback_code=fallback[0] if fallback else None,
            timing=timing,
        )

    def _time_words(
        self,
        texts: tuple[str, ...],
        language: str,
        engine: Engine,
        clips: list[Clip],
        spans: list[tuple[float, float]],
        wav_path: str,
    ) -> tuple[tuple[WordTiming, ...], Timing]:
        heard: list[list[WordTiming]] = [list(c.words) for c in clips]
        timing: Timing = "engine"
        if not all(c.timed for c in clips):
            timing = "whisper"
            try:
                heard = self._whisper_words(texts, language, wav_path, spans)
            except SpeechModelError as exc:
                log.warning("no whisper model (%s); word times are estimated", exc.message)
                heard = [[] for _ in clips]
                timing = "estimated"
        words: list[WordTiming] = []
        for text, clip, (start, _end), own in zip(texts, clips, spans, heard, strict=True):
            # edge-tts times Chinese by words already; other engines by characters or tokens.
            mode: Literal["engine", "words"] = "engine" if engine == "edge-tts" else "words"
            local = align_words(text, own, clip.duration, chinese=mode)
            local = tighten_ends(
                clip.samples, clip.rate, tighten_starts(clip.samples, clip.rate, local)
            )
            words.extend(WordTiming(w.text, start + w.start, start + w.end) for w in local)
        return tuple(words), timing

    def _whisper_words(
        self, texts: tuple[str, ...], language: str, wav_path: str, spans: list[tuple[float, float]]
    ) -> list[list[WordTiming]]:
        """Whisper's words for the whole narration, given to the sentence they fall in."""
        transcriber = self._transcriber or default_transcriber()
        # No initial_prompt: given the script itself, whisper takes it as already said and
        # invents a continuation; the alignment copes with misheard words instead.
        result = transcriber.transcribe(
            wav_path, language=language, vad=False, retry_temperatures=False
        )
        per: list[list[WordTiming]] = [[] for _ in spans]
        for w in result.words:
            mid = (w.start + w.end) / 2
            i = min(range(len(spans)), key=lambda k: _distance(mid, spans[k]))
            s0, s1 = spans[i]
            per[i].append(WordTiming(w.text, max(w.start, s0) - s0, min(w.end, s1) - s0))
        return per


def _distance(t: float, span: tuple[float, float]) -> float:
    return 0.0 if span[0] <= t <= span[1] else min(abs(t - span[0]), abs(t - span[1]))
