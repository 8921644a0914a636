"""`reelbot bench narrate`: how intelligible, fast and well captioned each offline voice is.

Each offline voice speaks a fixed set of 20 Chinese or 20 English sentences (numbers, dates,
English brand names inside Chinese, questions, exclamations) as one narration, exactly as the
narrator does for a video. Whisper (the packaged base model) transcribes the narration back:

- intelligibility: the character error rate (Chinese) or word error rate (English) of the whole
  transcript against the whole script (jiwer). Both sides are normalised the same way first, so
  that only what was heard differently counts. Chinese: NFKC, traditional characters to
  simplified (OpenCC t2s; whisper often writes traditional), Arabic numerals to Chinese numerals
  read in context (cn2an, so "35%" and "百分之三十五" agree), Latin letters lower-cased, and
  everything but letters, digits and Hanzi dropped (punctuation and spaces are not speech).
  English: whisper's own English normaliser (transformers' `EnglishTextNormalizer`: lower case,
  no punctuation, spelled-out numbers as digits, "mister" = "mr").
- speed: synthesis plus word timing over the audio's length (real-time factor, after a warm-up
  sentence has loaded the voice).
- caption sync: each caption cue's start against where the sound of its first word starts
  (`pipeline.narrate.sync`), p95 of the absolute difference. Whisper finds the word; its start
  is then moved out of any silence it includes (`align.tighten_starts`: whisper's words run end
  to end, so after a pause its next word "starts" when the previous one ended). Inside
  continuous speech whisper base's starts are themselves 100-640 ms early now and then, so
  sync is also measured against the sound: for cues whose first word follows a pause, where
  the sound comes back (`sync.onset_errors`, no model).

The last line: `kokoro_zh_cer=… espeak_zh_cer=… piper_en_wer=… espeak_en_wer=… kokoro_zh_rtf=…
sync_p95_ms=… onset_sync_p95_ms=… kokoro_male_zh_cer=…` (sync: the worst voice's p95, against
whisper and against the sound); kokoro_zh is the default
offline Mandarin voice (jf_alpha), kokoro_male_zh the one a user asking for a male voice gets
(jm_kumo, the voice packs' only male voice).
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import time
import unicodedata
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SENTENCES: dict[str, tuple[str, ...]] = {
    "zh": (
        "你知道为什么咖啡一定要现磨吗？",
        "咖啡豆磨成粉以后，香气在几分钟之内就会大量散失。",
        "今天是2024年5月20日，天气晴朗。",
        "这台iPhone的电池能用一整天。",
        "我每天早上七点起床，先跑步三公里。",
        "这个周末，我们一起去看电影吧！",
        "他在星巴克买了一杯拿铁，花了三十二块钱。",
        "你觉得这道菜好吃吗？",
        "太棒了，我们终于赢了比赛！",
        "请把窗户打开，房间里太热了。",
        "这本书一共有三百五十六页。",
        "新款特斯拉的续航提高了百分之十五。",
        "明天下午三点半在会议室开会。",
        "小猫躺在沙发上睡得很香。",
        "为什么天空是蓝色的？",
        "我用微信给妈妈发了一张照片。",
        "这家餐厅的火锅非常有名。",
        "周末的地铁比平时空很多。",
        "别忘了带伞，今天可能会下雨！",
        "学习一门新语言需要耐心和时间。",
    ),
    "en": (
        "Do you know why coffee should be ground fresh?",
        "Once beans are ground, most of the aroma escapes within minutes.",
        "The meeting starts at three thirty on Monday, May twentieth.",
        "My new iPhone battery lasts the whole day.",
        "We drove two hundred miles to see the ocean.",
        "What a fantastic game that was!",
        "She bought a latte at Starbucks for five dollars.",
        "Can you pass me the salt, please?",
        "The book has three hundred and fifty six pages.",
        "Tesla raised its range by fifteen percent this year.",
        "Open the window, it is far too warm in here.",
        "Why is the sky blue during the day?",
        "The cat fell asleep on the soft green sofa.",
        "I sent my mother a photo on WhatsApp.",
        "Don't forget your umbrella, it might rain today!",
        "Learning a new language takes patience and time.",
        "The train leaves at seven fifteen in the morning.",
        "He scored twenty four points in the final game.",
        "Is this the fastest way to the airport?",
        "Follow for more, and next time I will show you how to pick fresh beans.",
    ),
}


@dataclass(frozen=True, slots=True)
class Run:
    """One offline voice to measure: its key on the last line and how to ask the narrator."""

    key: str
    language: str
    voice: str | None  # a voice name, or None for the narrator's own offline choice
    prefer_kokoro: bool = True
    prefer_piper: bool = True


RUNS = (
    Run("kokoro_zh", "zh", None),  # the default offline Mandarin voice (jf_alpha)
    Run("kokoro_male_zh", "zh", "jm_kumo"),  # what a user asking for a male voice gets
    Run("espeak_zh", "zh", None, prefer_kokoro=False),
    Run("piper_en", "en", None),
    Run("espeak_en", "en", None, prefer_piper=False),
)


def zh_normaliser() -> Callable[[str], str]:
    """Chinese text as compared for CER (see the module docstring)."""
    import cn2an
    import opencc

    t2s = opencc.OpenCC("t2s")

    def norm(text: str) -> str:
        text = t2s.convert(unicodedata.normalize("NFKC", text))
        # cn2an raises plain ValueErrors on odd input; compare such text as it is.
        with contextlib.suppress(Exception):
            text = str(cn2an.transform(text, "an2cn"))
        return "".join(ch for ch in text.lower() if unicodedata.category(ch)[0] in "LN")

    return norm


def en_normaliser() -> Callable[[str], str]:
    """English text as compared for WER: whisper's normaliser (digits, no punctuation)."""
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    norm = EnglishTextNormalizer({})  # type: ignore[no-untyped-call]
    return lambda text: re.sub(r"\s+", " ", str(norm(text))).strip()


def error_rate(language: str, reference: str, heard: str) -> float:
    """CER (zh) or WER (en) of `heard` against `reference`, both normalised."""
    import jiwer

    if language == "zh":
        norm = zh_normaliser()
        return float(jiwer.cer(norm(reference), norm(heard) or " "))
    norm = en_normaliser()
    return float(jiwer.wer(norm(reference), norm(heard) or "-"))


def bench(workdir: str | None) -> int:
    """Speak the sentences with each offline voice and print intelligibility, speed and sync."""
    from pipeline.cjk import is_cjk_char
    from pipeline.narrate.narrator import Narrator
    from pipeline.narrate.voices import KOKORO_VOICES

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(workdir or tmp)
        for run in RUNS:
            text = SENTENCES[run.language]
            narrator = Narrator(
                offline=True, prefer_kokoro=run.prefer_kokoro, prefer_piper=run.prefer_piper
            )
            # The warm-up loads the voice (and joins the Kokoro model) outside the timing.
            narrator.narrate(text[:1], run.language, work / "warm", voice=run.voice)
            t0 = time.perf_counter()
            n = narrator.narrate(text, run.language, work / run.key, voice=run.voice)
            took = time.perf_counter() - t0
            expected = "kokoro" if run.voice in KOKORO_VOICES.values() else run.key.split("_")[0]
            if not n.engine.replace("-ng", "").startswith(expected):
                print(f"{run.key}: {expected} is not available, {n.engine} spoke; skipped")
                continue
            speaking = sum(b - a for a, b in n.line_spans)
            if run.language == "zh":
                units, unit = sum(1 for s in text for ch in s if is_cjk_char(ch)), "Hanzi"
            else:
                units, unit = sum(len(s.split()) for s in text), "words"
            n.save(work / run.key / "words.json")
            heard, sync, onset, n_sync, n_onset = _listen(n)
            sep = "" if run.language == "zh" else " "
            rate = error_rate(run.language, sep.join(text), heard)
            results[run.key] = {
                "error": rate, "rtf": took / n.duration, "sync": sync, "onset": onset,
            }  # fmt: skip
            what = "CER" if run.language == "zh" else "WER"
            print(
                f"{n.engine:9s} {n.voice:16s} {run.language}: {what} {rate:.3f}, "
                f"{units / speaking:.2f} {unit}/s speaking, audio {n.duration:.1f} s, "
                f"real-time factor {took / n.duration:.2f} (timing from {n.timing}), "
                f"caption sync p95 {sync:.0f} ms against whisper ({n_sync} cues), "
                f"{onset:.0f} ms against the sound after pauses ({n_onset} cues)"
            )
            print(f"{'':9s} heard: {heard[:160]}")
    print(_summary(results))
    return 0


def _summary(results: dict[str, dict[str, float]]) -> str:
    def get(key: str, field: str, fmt: str = "{:.3f}") -> str:
        return fmt.format(results[key][field]) if key in results else "n/a"

    parts = [
        f"kokoro_zh_cer={get('kokoro_zh', 'error')}",
        f"espeak_zh_cer={get('espeak_zh', 'error')}",
        f"piper_en_wer={get('piper_en', 'error')}",
        f"espeak_en_wer={get('espeak_en', 'error')}",
        f"kokoro_zh_rtf={get('kokoro_zh', 'rtf', '{:.2f}')}",
        f"sync_p95_ms={max(r['sync'] for r in results.values()):.0f}" if results else "",
        f"onset_sync_p95_ms={max(r['onset'] for r in results.values()):.0f}" if results else "",
        f"kokoro_male_zh_cer={get('kokoro_male_zh', 'error')}",
    ]
    return " ".join(p for p in parts if p)


def _listen(n: Any) -> tuple[str, float, float, int, int]:
    """Whisper's transcript of the narration; the p95 caption sync error in ms against whisper
    and against the sound's onsets after pauses; how many cues each of the two measured."""
    import numpy as np

    from pipeline.narrate.align import tighten_starts
    from pipeline.narrate.cues import build_cues
    from pipeline.narrate.sync import caption_sync_errors, onset_errors
    from pipeline.speech import default_transcriber

    heard = default_transcriber().transcribe(
        n.audio_path, language=n.language, vad=False, retry_temperatures=False
    )
    with wave.open(n.audio_path, "rb") as wav:
        rate = wav.getframerate()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    samples = pcm.astype(np.float32) / 32768.0
    sounded = tighten_starts(samples, rate, heard.words)
    cues = build_cues(n.words, n.line_spans, n.language)
    errors = caption_sync_errors(cues, sounded)
    onsets = onset_errors(cues, samples, rate)
    return heard.text, _p95_ms(errors), _p95_ms(onsets), len(errors), len(onsets)


def _p95_ms(errors: list[float]) -> float:
    import numpy as np

    return float(np.percentile(np.abs(errors), 95)) * 1000 if errors else float("nan")
