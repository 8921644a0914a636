"""Caption sync measured against a listener: pure matching, and whisper on a real narration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.narrate.cues import build_cues
from pipeline.narrate.narrator import Narrator
from pipeline.narrate.sync import caption_sync_errors, heard_starts, onset_errors
from pipeline.plan import CaptionCue
from pipeline.plan import WordTiming as W


def test_heard_starts_only_where_a_word_begins() -> None:
    words = [W("Grind", 0.0, 0.3), W("your", 0.3, 0.5), W("beans,", 0.5, 0.9), W("now!", 1.0, 1.3)]
    heard = [W("blind", 0.05, 0.3), W("your", 0.32, 0.5), W("beans", 0.55, 0.9),
             W("now", 1.02, 1.3)]  # fmt: skip
    assert heard_starts(words, heard) == [None, 0.32, 0.55, 1.02]
    zh = [W("喝", 0.0, 0.2), W("咖啡", 0.2, 0.6)]
    assert heard_starts(zh, [W("喝咖啡", 0.1, 0.6)]) == [0.1, None]  # 咖啡 has no own start


def test_caption_sync_errors_per_cue() -> None:
    cues = [
        CaptionCue("a b", 0.0, 1.0, words=(W("a", 0.0, 0.4), W("b", 0.5, 1.0))),
        CaptionCue("c", 1.2, 1.6, words=(W("c", 1.2, 1.6),)),
        CaptionCue("d", 2.0, 2.4, words=(W("d", 2.0, 2.4),)),
    ]
    heard = [W("a", 0.05, 0.4), W("b", 0.5, 1.0), W("c", 1.15, 1.6)]
    errors = caption_sync_errors(cues, heard)
    assert np.allclose(errors, [-0.05, 0.05])  # "d" was not heard: left out


def test_onset_errors_measure_cues_after_pauses_against_the_sound() -> None:
    # Three "words" of noise: 0.5-0.9 s, 1.2-1.6 s (after a 300 ms pause) and 1.65-2.0 s
    # (after a 50 ms gap: continuous speech, no reference there).
    rate = 16000
    rng = np.random.default_rng(1)
    audio = np.zeros(int(2.3 * rate), dtype=np.float32)
    for a, b in ((0.5, 0.9), (1.2, 1.6), (1.65, 2.0)):
        audio[int(a * rate) : int(b * rate)] = rng.uniform(-0.5, 0.5, int(b * rate) - int(a * rate))
    cues = [
        CaptionCue("a", 0.52, 0.9, words=(W("a", 0.52, 0.9),)),  # 20 ms late
        CaptionCue("b", 1.15, 1.6, words=(W("b", 1.15, 1.6),)),  # 50 ms early
        CaptionCue("c", 1.75, 2.0, words=(W("c", 1.75, 2.0),)),  # no pause before it
    ]
    errors = onset_errors(cues, audio, rate)
    assert np.allclose(errors, [0.02, -0.05], atol=0.006), errors
    # A cue inside continuous speech 0.2 s after a pause that another word starts on: that
    # onset is the other word's, not a 0.2 s error of this cue.
    inner = CaptionCue("b2", 1.4, 1.6, words=(W("b2", 1.4, 1.6),))
    errors = onset_errors([cues[0], cues[1], inner], audio, rate)
    assert np.allclose(errors, [0.02, -0.05], atol=0.006), errors


@pytest.mark.slow
def test_espeak_narration_captions_are_in_sync_with_whisper(tmp_path: Path) -> None:
    from pipeline.speech import default_transcriber

    sentences = ["Most people drink coffee every day.", "Few of them grind it fresh.",
                 "Here is why that matters so much."]  # fmt: skip
    n = Narrator(offline=True, prefer_piper=False).narrate(sentences, "en", tmp_path)
    cues = build_cues(n.words, n.line_spans, "en", max_words=3)
    heard = default_transcriber().transcribe(
        n.audio_path, language="en", vad=False, retry_temperatures=False
    )
    errors = np.abs(caption_sync_errors(cues, heard.words))
    assert len(errors) >= 0.6 * len(cues)
    # whisper's own word starts wobble by ~0.1 s and now and then by 0.3 s on a robotic voice
    assert float(np.median(errors)) < 0.15, errors
    assert np.mean(errors < 0.2) >= 0.8, errors
