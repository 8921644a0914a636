"""Which voice speaks: edge-tts neural voices by language and style, and offline fallbacks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pipeline.narrate.model import NarrationError

Gender = Literal["female", "male"]


@dataclass(frozen=True, slots=True)
class Voice:
    """An edge-tts neural voice and what it suits."""

    name: str
    language: str  # "zh" | "en"
    gender: Gender
    character: str  # what it sounds like, for help texts


VOICES: tuple[Voice, ...] = (
    Voice("zh-CN-XiaoxiaoNeural", "zh", "female", "warm, clear"),
    Voice("zh-CN-XiaoyiNeural", "zh", "female", "lively, young"),
    Voice("zh-CN-YunxiNeural", "zh", "male", "lively, storyteller"),
    Voice("zh-CN-YunjianNeural", "zh", "male", "energetic, sports"),
    Voice("zh-CN-YunyangNeural", "zh", "male", "professional, news"),
    Voice("en-US-JennyNeural", "en", "female", "friendly, considerate"),
    Voice("en-US-AriaNeural", "en", "female", "confident, news"),
    Voice("en-US-AvaNeural", "en", "female", "expressive, caring"),
    Voice("en-US-GuyNeural", "en", "male", "passionate"),
    Voice("en-US-AndrewNeural", "en", "male", "warm, confident"),
    Voice("en-US-ChristopherNeural", "en", "male", "reliable, authority"),
)

# Style (as the script writer names it) -> preferred voice per language. Unknown styles get the
# first entry of their language; "female"/"male" may be given as the style to pick by gender.
STYLE_VOICES: dict[str, dict[str, str]] = {
    "knowledge": {"zh": "zh-CN-YunxiNeural", "en": "en-US-AndrewNeural"},
    "tutorial": {"zh": "zh-CN-XiaoxiaoNeural", "en": "en-US-JennyNeural"},
    "story": {"zh": "zh-CN-YunxiNeural", "en": "en-US-AvaNeural"},
    "vlog": {"zh": "zh-CN-XiaoyiNeural", "en": "en-US-JennyNeural"},
    "funny": {"zh": "zh-CN-XiaoyiNeural", "en": "en-US-GuyNeural"},
    "promo": {"zh": "zh-CN-YunjianNeural", "en": "en-US-GuyNeural"},
    "sports": {"zh": "zh-CN-YunjianNeural", "en": "en-US-GuyNeural"},
    "motivation": {"zh": "zh-CN-YunjianNeural", "en": "en-US-ChristopherNeural"},
    "news": {"zh": "zh-CN-YunyangNeural", "en": "en-US-AriaNeural"},
    "review": {"zh": "zh-CN-XiaoxiaoNeural", "en": "en-US-AriaNeural"},
    "female": {"zh": "zh-CN-XiaoxiaoNeural", "en": "en-US-JennyNeural"},
    "male": {"zh": "zh-CN-YunxiNeural", "en": "en-US-AndrewNeural"},
}

# Kokoro-82M's voice packs that speak Mandarin best (offline; `pipeline.narrate.kokoro`), by
# gender. Either name may be given as the voice to skip edge-tts and speak with Kokoro. The
# packs hold one male voice only (jm_kumo); whisper base understands the female jf_alpha better
# (`reelbot bench narrate`: CER 0.08 against 0.13), so she is the default (`offline_gender`).
KOKORO_VOICES: dict[Gender, str] = {"male": "jm_kumo", "female": "jf_alpha"}

_EDGE_NAME = re.compile(r"^[a-z]{2,3}-[A-Z][A-Za-z]+-[A-Za-z]+Neural$")


def voice_info(name: str) -> Voice | None:
    """The table entry for an edge-tts voice name, if it is one we know."""
    return next((v for v in VOICES if v.name == name), None)


def pick_voice(language: str, style: str | None = None, voice: str | None = None) -> str:
    """The edge-tts voice for a language and style, or the user's own choice when valid.

    Any well-formed edge-tts voice name is accepted (the service has hundreds), and for Chinese
    a Kokoro voice name (`KOKORO_VOICES`); a name that cannot be one raises `NarrationError`
    instead of failing later at the service.
    """
    if voice and is_kokoro_voice(voice):
        if language != "zh":
            raise NarrationError(
                f"the Kokoro voice {voice!r} speaks Chinese only",
                key="narration_option",
                voice=voice,
            )
        return voice
    if voice:
        if not _EDGE_NAME.match(voice):
            raise NarrationError(
                f"{voice!r} is not an edge-tts voice name (like zh-CN-XiaoxiaoNeural)",
                key="narration_option",
                voice=voice,
            )
        return voice
    if language not in ("zh", "en"):
        raise NarrationError(
            f"no voices for language {language!r}", key="narration_option", language=language
        )
    key = (style or "").strip().lower()
    if key in STYLE_VOICES:
        return STYLE_VOICES[key][language]
    return next(v.name for v in VOICES if v.language == language)


def is_kokoro_voice(name: str) -> bool:
    """Whether `name` is one of the offline Kokoro voices rather than an edge-tts voice."""
    return name in KOKORO_VOICES.values()


def voice_gender(name: str) -> Gender:
    """Female or male, for picking a matching offline voice; unknown names count as female."""
    info = voice_info(name)
    return info.gender if info else "female"


def offline_gender(voice: str | None, style: str | None) -> Gender:
    """The gender of the offline voice that speaks when edge-tts cannot.

    Male only when the user asked for a male voice: a male edge-tts voice (or jm_kumo) by name,
    or the style "male". A voice merely picked for the script's style (knowledge: Yunxi) does
    not count: the default offline voices are the female ones, which listeners (whisper)
    understand best: Kokoro jf_alpha and espeak-ng's +f3 variant.
    """
    if voice:
        return "male" if voice == KOKORO_VOICES["male"] else voice_gender(voice)
    return "male" if (style or "").strip().lower() == "male" else "female"


def edge_percent(value: str, what: str) -> float:
    """Parse edge-tts's '+10%' rate into a fraction (0.10); bad values raise NarrationError."""
    m = re.fullmatch(r"([+-])(\d{1,3})%", value)
    if not m:
        raise NarrationError(
            f"{what} must look like +10% or -5%, not {value!r}", key="narration_option", value=value
        )
    frac = int(m.group(2)) / 100
    return frac if m.group(1) == "+" else -frac


def edge_hz(value: str) -> int:
    """Parse edge-tts's '+2Hz' pitch; bad values raise NarrationError."""
    m = re.fullmatch(r"([+-])(\d{1,3})Hz", value)
    if not m:
        raise NarrationError(
            f"pitch must look like +5Hz or -3Hz, not {value!r}", key="narration_option", value=value
        )
    hz = int(m.group(2))
    return hz if m.group(1) == "+" else -hz


def another_voice(language: str, current: str, want: str) -> str:
    """The voice an edit asks for instead of `current` (the voice that spoke, by `pick_voice`).

    `want` is "male" or "female": that gender's voice for the language (the next one of that
    gender when `current` is already one of them); or "other": the other gender's voice, since
    the offline voices differ only by gender and a same-gender swap could sound the same."""
    kokoro = is_kokoro_voice(current)
    have: Gender = (
        next(g for g, v in KOKORO_VOICES.items() if v == current) if kokoro
        else voice_gender(current)
    )  # fmt: skip
    gender: Gender
    if want == "other":
        gender = "female" if have == "male" else "male"
    elif want in ("male", "female"):
        gender = "male" if want == "male" else "female"
    else:
        raise NarrationError(f"no {want!r} voice", key="narration_option", voice=want)
    if kokoro:
        return KOKORO_VOICES[gender]
    pool = [v.name for v in VOICES if v.language == language and v.gender == gender]
    if not pool:
        raise NarrationError(
            f"no voices for language {language!r}", key="narration_option", language=language
        )
    if current in pool:  # already that gender: the next of them
        return pool[(pool.index(current) + 1) % len(pool)]
    return STYLE_VOICES[gender][language]
