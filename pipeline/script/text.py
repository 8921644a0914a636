"""Cleaning and phrasing user text (topic, notes, footage captions) for scripts and prompts.

User text is data. Whatever it contains (newlines, markup, control characters, emoji, a wall of
text, "ignore previous instructions") it must come out as one plain phrase that cannot break the
structure of a script or of a prompt.
"""

from __future__ import annotations

import re
import unicodedata

from pipeline.cjk import HAN_RE, close_gaps

LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
# Removed whole, before control characters go: a terminal colour code ("\x1b[31m") would
# otherwise leave "31m" in the topic, and a script element its code ("alert(1)").
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")
_SCRIPT = re.compile(r"<(script|style)\b[^>]{0,200}>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_MARKUP = re.compile(r"<[^<>]{0,200}>|```+|[`*_#{}\[\]<>|~\\^]")
_SPACE = re.compile(r"\s+")
_BULLET = re.compile(
    r"^\s*(?:[-–—*•·●▪>]+|\(?\d{1,2}[.)、．:：]|[①-⑳]|第[一二三四五六七八九十\d]+[点条个步]?[，,、：:.]?"
    r"|(?:first|second|third|fourth|fifth|then|next|finally|also)\b[,:]?)\s*",
    re.IGNORECASE,
)
_SENTENCES = re.compile(r"(?<=[。！？!?；;])|(?<=\.)\s+|\n+")
_CLAUSE_MARK = re.compile(r"[，,、；;：:—]")
_TRAILING = re.compile(r"[\s。.!！…,，、；;：:—-]+$")


# Symbols that are read out and belong in a product's or a recipe's facts.
_UNIT_SYMBOLS = frozenset("°℃℉‰№")


def _keep(ch: str) -> bool:
    if ch in _UNIT_SYMBOLS:
        return True
    cat = unicodedata.category(ch)
    if cat in ("Cc", "Cf", "Cs", "Co", "Cn", "So", "Sk", "Mn", "Me"):
        # Control and format characters, emoji and other pictographs, combining marks
        # (zalgo, variation selectors): none of them can be spoken and all can break a layout.
        return ch in "\n\t"
    return True


def clean(text: str, max_chars: int, keep_newlines: bool = False) -> str:
    """One plain phrase: no markup, control characters or emoji; spaces collapsed; capped."""
    text = _SCRIPT.sub(" ", _ESCAPE.sub("", str(text)))
    text = "".join(ch for ch in text if _keep(ch))
    text = _MARKUP.sub(" ", text)
    if keep_newlines:
        lines = [_SPACE.sub(" ", ln).strip() for ln in text.splitlines()]
        text = "\n".join(ln for ln in lines if ln)
    else:
        text = _SPACE.sub(" ", text).strip()
    text = close_gaps(text)
    if len(text) > max_chars:
        text = cut(text, max_chars)
    return text


def cut(text: str, max_chars: int) -> str:
    """Shorten to at most `max_chars`, at a clause or word boundary when there is one."""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    marks = [m.start() for m in _CLAUSE_MARK.finditer(head)]
    if marks and marks[-1] >= max_chars // 2:
        return head[: marks[-1]].strip()
    if not HAN_RE.search(head) and " " in head:
        return head.rsplit(" ", 1)[0].strip()
    return head.strip()


def strip_end(text: str) -> str:
    """Drop trailing punctuation (the writer adds its own), keeping a question mark."""
    question = text.rstrip().endswith(("?", "？"))
    text = _TRAILING.sub("", text.rstrip("?？ "))
    return text + ("?" if question and not HAN_RE.search(text) else "？" if question else "")


def points(text: str, max_chars: int, limit: int = 12) -> list[str]:
    """Split notes into separate points: one per line or sentence, bullets and numbers removed."""
    out: list[str] = []
    for piece in _SENTENCES.split(clean(text, 4000, keep_newlines=True)):
        piece = _BULLET.sub("", piece.strip()).strip()
        piece = strip_end(cut(piece, max_chars))
        if len(piece) >= 2 and piece not in out:
            out.append(piece)
        if len(out) >= limit:
            break
    return out


def is_language(text: str, language: str) -> bool:
    """Whether `text` is written in `language`: mostly CJK for zh, Latin without CJK for en."""
    cjk = len(HAN_RE.findall(text))
    if language == "zh":
        latin = sum(len(w) for w in LATIN_WORD.findall(text))
        return cjk > 0 and cjk >= latin
    return cjk == 0 and bool(LATIN_WORD.search(text))


def foreign_words(text: str, language: str, allowed: str = "") -> list[str]:
    """Words of the other language in `text` that do not come from the user's `allowed` text."""
    if language == "zh":
        words = LATIN_WORD.findall(text)
        allowed_l = allowed.lower()
        return [w for w in words if w.lower() not in allowed_l]
    return [c for c in HAN_RE.findall(text) if c not in allowed]


# Sentence-initial words that are not names, so they are lower-cased inside a sentence.
_COMMON_WORDS = (
    "a an the my our your his her their its this that these those we i'm it it's they he she "
    "you then and so there how what why when where which who to for with without in on at "
    "after before during every each some most all one two three first best worst"
)
_COMMON_START = frozenset(_COMMON_WORDS.split())


def mid_sentence(text: str) -> str:
    """`text` as it reads inside an English sentence ("Morning routines" -> "morning routines").

    Only a capital that is surely not a name is lowered: a common function word, or a gerund
    in a sentence-case phrase ("Waking up early"). "Kyoto trip" and "iPhone tips" stay as typed.
    """
    if not text or HAN_RE.match(text):
        return text
    first, _, rest = text.partition(" ")
    sentence_case = first[:1].isupper() and first[1:].islower() and rest == rest.lower()
    word = first.lower().strip(",.:;!?")
    if first[1:].islower() and (
        word in _COMMON_START or (sentence_case and word.endswith("ing") and len(word) > 4)
    ):
        return first[:1].lower() + first[1:] + (" " + rest if rest else "")
    return text


def capitalise(text: str) -> str:
    """`text` with its first character upper-cased, to open a sentence."""
    return text[:1].upper() + text[1:]


def finish_sentence(text: str, language: str) -> str:
    """End a framed point with the right punctuation, keeping a question a question."""
    text = text.rstrip()
    if text.endswith(("?", "？", "!", "！", "。", ".")):
        return text
    return text + ("。" if language == "zh" else ".")
