"""What a creator asks to change in a delivered video, understood without a model.

A reply to the video ("第三个镜头换掉", "replace shot 3", "line 2: Cats sleep 16 hours a day",
"title: Boxes!", "shorter", "30秒", "make it in English", "no music") becomes one `EditRequest`;
`parse_edit` returns None for anything it does not understand, and the bot answers with what
can be changed. Pure: no model, no file access.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, TypeAlias

EditKind: TypeAlias = Literal[
    "line", "title", "shot", "music", "length", "language", "rate", "voice", "captions"
]
EDIT_KINDS: tuple[str, ...] = ("line", "title", "shot", "music", "length", "language", "rate",
                               "voice", "captions")  # fmt: skip
# What `text` may be for the kinds that take a word rather than free text.
RATE_WORDS = ("faster", "slower")
VOICE_WORDS = ("male", "female", "other")
CAPTION_WORDS = ("bigger", "smaller", "top", "middle", "bottom")

_ZH_NUM = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
           "九": 9, "十": 10}  # fmt: skip
_ORD = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
        "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "last": -1}  # fmt: skip
_NUM = r"(\d+|[一二两三四五六七八九十]|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last)"  # noqa: E501


@dataclass(frozen=True, slots=True)
class EditRequest:
    """One change to a delivered video.

    kind: `line` (sentence `index`, 1-based over the spoken lines, hook first, gets `text`),
    `title` (`text`), `shot` (the shot under sentence `index` is replaced by other footage),
    `music` (`text` is the new track's path, "" for none), `length` (`seconds`), `language`
    (`text` is zh or en: the script is written again in it), `rate` (`text` is faster or slower:
    the voice speaks a step faster or slower), `voice` (`text` is male, female, or other: another
    voice of the language), `captions` (`text` is bigger, smaller, top, middle or bottom). `base`
    is the version folder the replied video came from ("" for the job folder itself, else "v2",
    ...)."""

    kind: EditKind
    index: int = 0
    text: str = ""
    seconds: int = 0
    base: str = ""


def _number(word: str) -> int:
    w = word.lower()
    if w.isdigit():
        return int(w)
    return _ZH_NUM.get(w) or _ORD.get(w, 0)


_SHOT_EN = r"(?:replace|swap|change|drop|remove)\s+(?:the\s+)?"
_SHOT = (
    rf"{_SHOT_EN}(?:shot|clip|scene)\s*#?{_NUM}"
    rf"|{_SHOT_EN}{_NUM}\s+(?:shot|clip|scene)"
    rf"|第?{_NUM}\s*个?(?:镜头|画面|片段)\s*(?:换掉|换一个|换|删掉|去掉|不要)"
)
_CAP = r"\b(?:caption|subtitle)s?\b"
_MOVE = r".{0,3}?(?:放|移|挪)?到?"
_RULES = [
    (r"^\s*(?:title|标题)\s*[:：]\s*(?P<text>.+)$", "title"),
    (rf"^\s*(?:line|sentence)\s*{_NUM}\s*[:：]\s*(?P<text>.+)$", "line"),
    (rf"^\s*第?{_NUM}\s*(?:句|行)(?:改成|改为|换成)?\s*[:：]?\s*(?P<text>.+)$", "line"),
    (_SHOT, "shot"),
    (r"\b(?:no|without|remove|drop)\s+(?:the\s+)?music\b|不要音乐|去掉音乐|关掉音乐", "music_off"),
    (
        r"\b(?:change|another|different|new)\s+(?:the\s+)?music\b|换(?:个|一下)?音乐|换首歌",
        "music_change",
    ),
    (r"(?:in|to)\s+english|英文|英语", "lang_en"),
    (r"(?:in|to)\s+(?:chinese|mandarin)|中文|汉语|普通话", "lang_zh"),
    # Voice, rate and captions come before the plain "shorter"/"faster" words and the seconds:
    # "字幕大一点" is not a length, "说快点" not a shorter video.
    (
        rf"{_CAP}.*\b(?:bigger|larger)\b|\b(?:bigger|larger)\s+{_CAP}"
        r"|字幕.{0,3}(?:大一点|大一些|大点|放大|加大)|(?:放大|加大)字幕",
        "cap_bigger",
    ),
    (
        rf"{_CAP}.*\bsmaller\b|\bsmaller\s+{_CAP}|字幕.{{0,3}}(?:小一点|小一些|小点|缩小)|缩小字幕",
        "cap_smaller",
    ),
    (rf"{_CAP}.*\b(?:top|up)\b|字幕{_MOVE}(?:上面|上方|顶部|最上)", "cap_top"),
    (rf"{_CAP}.*\b(?:middle|cent(?:er|re))\b|字幕{_MOVE}(?:中间|正中)", "cap_middle"),
    (rf"{_CAP}.*\b(?:bottom|down)\b|字幕{_MOVE}(?:下面|下方|底部|最下)", "cap_bottom"),
    (
        r"\b(?:male|man's|man)\s+voice\b|\bvoice\b.*\bmale\b|男声|男(?:生|的)声音|换成男",
        "voice_male",
    ),
    (
        r"\b(?:female|woman's|woman)\s+voice\b|\bvoice\b.*\bfemale\b|女声|女(?:生|的)声音|换成女",
        "voice_female",
    ),
    (
        r"\b(?:another|different|other|new)\s+voice\b|\bchange\s+the\s+voice\b"
        r"|换(?:个|一个|一下)?(?:声音|配音)",
        "voice_other",
    ),
    (r"\bfaster\b|\bspeed\s+(?:it\s+)?up\b|语速.{0,2}快|(?:说|读|讲|念)得?快一?点", "faster"),
    (r"\bslower\b|\bslow\s+(?:it\s+)?down\b|语速.{0,2}慢|(?:说|读|讲|念)得?慢一?点", "slower"),
    (r"(?P<n>\d{1,3})\s*(?:s|sec|secs|seconds)\b|(?P<m>\d{1,3})\s*秒", "seconds"),
    (r"\bshorter\b|短一点|短一些|缩短|精简", "shorter"),
    (r"\blonger\b|长一点|长一些|加长", "longer"),
]
_PATTERNS = [(re.compile(p, re.I | re.S), what) for p, what in _RULES]


def parse_edit(text: str, lines: int, seconds: int, music: str = "", base: str = "") -> (
    EditRequest | None
):  # fmt: skip
    """The edit `text` asks for, for a video of `lines` spoken sentences and `seconds` long;
    `music` is an audio file sent with the reply. None when it is not understood."""
    if music:
        return EditRequest("music", text=music, base=base)
    for pattern, what in _PATTERNS:
        m = pattern.search(text)
        if m is None:
            continue
        groups = {k: v for k, v in m.groupdict().items() if v}
        numbers = [g for g in m.groups() if g and g not in groups.values()]
        index = _number(numbers[0]) if numbers else 0
        if index == -1:
            index = lines
        if what == "title":
            return EditRequest("title", text=groups["text"].strip(), base=base)
        if what == "line":
            if not 1 <= index <= lines:
                return None
            return EditRequest("line", index=index, text=groups["text"].strip(), base=base)
        if what == "shot":
            return EditRequest("shot", index=index, base=base) if 1 <= index <= lines else None
        if what == "music_off":
            return EditRequest("music", text="", base=base)
        if what == "music_change":
            return None  # a new track has to come with the reply (an audio file)
        if what in ("lang_en", "lang_zh"):
            return EditRequest("language", text=what[-2:], base=base)
        if what == "seconds":
            n = int(groups.get("n") or groups.get("m") or 0)
            return EditRequest("length", seconds=n, base=base) if 5 <= n <= 180 else None
        if what == "shorter":
            return EditRequest("length", seconds=max(5, round(seconds * 0.75)), base=base)
        if what in ("faster", "slower"):
            return EditRequest("rate", text=what, base=base)
        if what.startswith("voice_"):
            return EditRequest("voice", text=what[6:], base=base)
        if what.startswith("cap_"):
            return EditRequest("captions", text=what[4:], base=base)
        if what == "longer":
            return EditRequest("length", seconds=min(180, round(seconds * 1.3)), base=base)
    return None
