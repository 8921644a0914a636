"""Checks shared by the narration tests: decode the WAV with PyAV and test the timing invariants."""

from __future__ import annotations

import av
import numpy as np

from pipeline.narrate.model import Narration


def decode(path: str) -> tuple[np.ndarray, int, int]:
    """Samples (mono float), sample rate and channel count of an audio file, via PyAV."""
    with av.open(path) as container:
        stream = container.streams.audio[0]
        channels = stream.codec_context.channels
        rate = stream.codec_context.sample_rate
        frames = [f.to_ndarray() for f in container.decode(stream)]
    data = np.concatenate(frames, axis=1).astype(np.float32)
    if data.dtype.kind == "i" or np.abs(data).max() > 1.5:
        data = data / 32768.0
    return data.mean(axis=0), rate, channels


def rms(samples: np.ndarray, rate: int, start: float, end: float) -> float:
    seg = samples[int(start * rate) : int(end * rate)]
    return float(np.sqrt(np.mean(seg**2))) if len(seg) else 0.0


def check_narration(n: Narration, sentences: list[str]) -> np.ndarray:
    """The invariants every narration keeps, checked on the decoded audio; returns the samples."""
    samples, rate, channels = decode(n.audio_path)
    assert (rate, channels) == (48000, 1)
    assert abs(len(samples) / rate - n.duration) < 0.01
    assert len(n.line_spans) == len(sentences)
    prev_end = 0.0
    for start, end in n.line_spans:
        assert prev_end <= start < end <= n.duration + 1e-6
        assert rms(samples, rate, start, end) > 0.02  # the sentence is audible
        prev_end = end
    for (_, gap_start), (gap_end, _) in zip(n.line_spans, n.line_spans[1:], strict=False):
        assert rms(samples, rate, gap_start + 0.02, gap_end - 0.02) < 0.01  # the pause is silent
    prev = 0.0
    for w in n.words:
        assert prev - 1e-6 <= w.start <= w.end <= n.duration + 1e-6
        prev = w.start
    # Every sentence's words lie inside its span and give back its text.
    for i, sentence in enumerate(sentences):
        words = n.line_words(i)
        assert words, f"sentence {i} has no words"
        joined = "".join(w.text for w in words).replace(" ", "")
        assert joined == sentence.replace(" ", "")
    assert sum(len(n.line_words(i)) for i in range(len(sentences))) == len(n.words)
    return samples
