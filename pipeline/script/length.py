"""How long a script takes to say: speaking rates per language, read from the prompts folder.

Chinese is counted in characters, English in words (`prompts/speaking_rates.json`), plus the
pauses a voice leaves at punctuation. The narration stage measures real voices and may tune the
numbers in that file; nothing here hard-codes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.cjk import count_han
from pipeline.promptfiles import load_data

_LATIN_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*%?")
_SENTENCE_END = re.compile(r"[。！？!?…]+|\.(?=\s|$)")
_CLAUSE = re.compile(r"[，,、；;：:—]")


@dataclass(frozen=True, slots=True)
class SpeakingRate:
    """Units per second for one language, and the pauses at punctuation."""

    language: str
    unit: str  # "chars" (zh) or "words" (en)
    rate: float
    sentence_pause: float
    clause_pause: float
    latin_word_units: float = 1.5  # zh only: an English word inside Chinese costs this many chars


def speaking_rate(language: str) -> SpeakingRate:
    """The rate for `language` from `prompts/speaking_rates.json`."""
    raw = load_data("speaking_rates")[language]
    return SpeakingRate(
        language=language,
        unit=raw["unit"],
        rate=float(raw["rate"]),
        sentence_pause=float(raw["pause_s"]["sentence"]),
        clause_pause=float(raw["pause_s"]["clause"]),
        latin_word_units=float(raw.get("latin_word_units", 1.5)),
    )


def speech_units(text: str, language: str) -> float:
    """Characters (zh) or words (en) a voice has to say for `text`."""
    if language == "zh":
        rate = speaking_rate("zh")
        cjk = count_han(text)  # a Chinese voice reads Han; kana or Hangul it cannot
        latin = len(_LATIN_WORD.findall(text))
        # Digits are read out: "30" is 三十, about one character per digit.
        digits = sum(len(re.sub(r"\D", "", n)) for n in _NUMBER.findall(text))
        return cjk + latin * rate.latin_word_units + digits
    words = len(_LATIN_WORD.findall(text)) + len(_NUMBER.findall(text))
    # Chinese inside English text (a name from the user) still takes time to say.
    return words + count_han(text) / 1.6


def estimate_seconds(text: str, language: str) -> float:
    """Seconds a narration voice takes to say `text` in `language` ("zh" or "en")."""
    rate = speaking_rate(language)
    sentences = len(_SENTENCE_END.findall(text.strip()))
    clauses = len(_CLAUSE.findall(text))
    spoken = speech_units(text, language) / rate.rate
    return spoken + sentences * rate.sentence_pause + clauses * rate.clause_pause
