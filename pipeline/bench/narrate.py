"""`reelbot bench narrate`: the offline voices' speaking rates, speed and caption sync."""

from __future__ import annotations

from pathlib import Path
from typing import Any

_BENCH_TEXT = {
    "zh": [
        "你知道为什么咖啡一定要现磨吗？",
        "咖啡豆磨成粉以后，香气在几分钟之内就会大量散失。",
        "所以最好的办法，是在冲煮之前再研磨。",
        "关注我，下次教你挑选新鲜的豆子。",
    ],
    "en": [
        "Do you know why coffee should be ground fresh?",
        "Once beans are ground, most of the aroma escapes within minutes.",
        "So the best habit is to grind right before you brew.",
        "Follow for more, and next time I will show you how to pick fresh beans.",
    ],
}


def bench(workdir: str | None) -> int:
    """Speak the bench text with each offline voice; print rates, real-time factors and sync."""
    import tempfile
    import time

    from pipeline.cjk import is_cjk_char
    from pipeline.narrate.narrator import Narrator

    runs = [("zh", True), ("en", False), ("en", True)]  # (language, prefer_piper)
    summary: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(workdir or tmp)
        for lang, piper in runs:
            text = _BENCH_TEXT[lang]
            narrator = Narrator(offline=True, prefer_piper=piper)
            narrator.narrate(text[:1], lang, work / "warm")  # load voices outside the timing
            t0 = time.perf_counter()
            n = narrator.narrate(text, lang, work / f"{lang}-{n_engine(piper)}")
            took = time.perf_counter() - t0
            speaking = sum(b - a for a, b in n.line_spans)
            if lang == "zh":
                units = sum(1 for s in text for ch in s if is_cjk_char(ch))
                unit = "chars"
            else:
                units = sum(len(s.split()) for s in text)
                unit = "words"
            key = f"{n.engine.replace('-', '')}_{lang}"
            print(
                f"{n.engine:9s} {n.voice:16s} {lang}: {units / speaking:.2f} {unit}/s speaking, "
                f"{units / n.duration:.2f} {unit}/s with pauses, audio {n.duration:.2f}s, "
                f"synthesis+timing {took:.2f}s (real-time factor {took / n.duration:.2f}, "
                f"timing from {n.timing})"
            )
            summary.append(f"{key}_{unit}_per_s={units / speaking:.2f}")
            summary.append(f"{key}_rtf={took / n.duration:.2f}")
            sync = _sync_p95_ms(n)
            if sync is not None:
                print(f"{'':9s} caption sync against whisper: p95 {sync:.0f} ms")
                summary.append(f"{key}_caption_sync_ms_p95={sync:.0f}")
    print(" ".join(summary))
    return 0


def _sync_p95_ms(n: Any) -> float | None:
    """p95 of |cue start - where whisper hears its first word|, in ms (None without whisper)."""
    import numpy as np

    from pipeline.narrate.cues import build_cues
    from pipeline.narrate.sync import caption_sync_errors
    from pipeline.speech import SpeechModelError, default_transcriber

    cues = build_cues(n.words, n.line_spans, n.language)
    try:
        heard = default_transcriber().transcribe(
            n.audio_path, language=n.language, vad=False, retry_temperatures=False
        )
    except SpeechModelError:
        return None
    errors = caption_sync_errors(cues, heard.words)
    return float(np.percentile(np.abs(errors), 95)) * 1000 if errors else None


def n_engine(piper: bool) -> str:
    return "piper" if piper else "espeak"
