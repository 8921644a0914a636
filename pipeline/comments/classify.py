"""Fast, per-comment reading: language, sentiment from lexicons, and the flags (question,
request, complaint about the video, spam, repeat).

Sentiment comes from `snownlp` (Chinese, a naive Bayes model trained on product reviews) and
VADER (`vaderSentiment`, English, rules over a valence lexicon), both MIT, both about a
millisecond or less per comment. Both miss what comment sections are made of: internet slang
(绝绝子, yyds, mid, goated), emoji (VADER knows some; snownlp none) and sarcasm. The words in
`prompts/comment_lexicon.json` fill that in; a comment whose lexicon score is weak, mixed, or
carries a sarcasm cue is marked not `confident`, and those are the ones the language model pass
(when there is one) reads again.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import threading
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.cjk import count_han
from pipeline.comments.model import Aspect, Lang, Sentiment
from pipeline.loadonce import Loader
from pipeline.promptfiles import load_data

log = logging.getLogger(__name__)

# A score at or beyond these is positive / negative; between them neutral.
POSITIVE_AT = 0.15
NEGATIVE_AT = -0.15
# A lexicon score this far from zero, with no sarcasm cue and no mixed signals, is trusted.
CONFIDENT_AT = 0.4
# Identical comments this long (after normalising) are copy-paste, not two people agreeing:
# "666" or "爱了" said twice is two viewers; a 30-character paragraph twice is spam.
DUPLICATE_MIN_CHARS = 8

_NEGATORS = ("不", "没", "别", "非", "无")
_PUNCT_RE = re.compile(r"[\s\W_]+", re.UNICODE)
_ZH_QUESTION_END = re.compile(r"[吗呢么嘛][\s\W]*$")


@dataclass(frozen=True, slots=True)
class Reading:
    """One comment read by the fast path."""

    language: Lang
    sentiment: Sentiment
    score: float
    confident: bool
    sarcasm_cue: bool
    question: bool
    request: bool
    complaint: Aspect
    spam: bool


@functools.cache
def lexicon() -> Mapping[str, Any]:
    """The slang, emoji and cue lists (`prompts/comment_lexicon.json`), read once."""
    data: Mapping[str, Any] = load_data("comment_lexicon")
    return data


def language_of(text: str) -> Lang:
    """zh when a third or more of the letters are Chinese characters, else en."""
    letters = sum(1 for ch in text if ch.isalpha())
    if letters == 0:
        return "en"
    return "zh" if count_han(text) / letters >= 0.3 else "en"


def normalise(text: str) -> str:
    """The text folded for finding repeats: case, width, spaces and punctuation ignored."""
    return _PUNCT_RE.sub("", unicodedata.normalize("NFKC", text).casefold())


def label(score: float) -> Sentiment:
    if score >= POSITIVE_AT:
        return "positive"
    if score <= NEGATIVE_AT:
        return "negative"
    return "neutral"


def squash(total: float, alpha: float = 15.0) -> float:
    """A sum of -4..4 word weights into -1..1, as VADER normalises its sums."""
    return total / math.sqrt(total * total + alpha)


Table = tuple[tuple[str, float], ...]


def _table(entries: Mapping[str, float], pad: bool = False) -> Table:
    """Lexicon entries as (word, weight), longest first, so a longer entry takes its span
    before the words inside it; with `pad`, each word between spaces (whole English words)."""
    words = sorted(entries, key=len, reverse=True)
    return tuple((f" {w} " if pad else w, float(entries[w])) for w in words)


@functools.cache
def _tables() -> Mapping[str, Table]:
    """The lexicon's tables, built once (`read` runs for every comment)."""
    lex = lexicon()
    return {
        "emoji": _table(lex["emoji"]),
        "zh": _table({**lex["zh_positive"], **lex["zh_negative"]}),
        "en": _table({k: v for k, v in lex["en_words"].items() if " " not in k}, pad=True),
    }


def _weights(text: str, table: Table, negate: bool) -> list[float]:
    """The weights of the table's entries found in `text`, longest first, each span used once;
    with `negate`, a Chinese negator just before a word turns it round (不好看, 没用)."""
    found: list[float] = []
    taken = [False] * len(text)
    for word, weight in table:
        start = text.find(word)
        while start != -1:
            end = start + len(word)
            if not any(taken[start:end]):
                if negate and start > 0 and text[start - 1] in _NEGATORS and weight > 0:
                    found.append(-0.8 * weight)
                else:
                    found.append(weight)
                for i in range(start, end):
                    taken[i] = True
            start = text.find(word, end)
    return found


class _Vader:
    """VADER with the slang words added to its lexicon; its `polarity_scores` only reads the
    analyzer, but the lock keeps the (pure Python) analyzer's use simple to reason about."""

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.analyzer: Any = SentimentIntensityAnalyzer()
        single = {w: float(v) for w, v in lexicon()["en_words"].items() if " " not in w}
        self.analyzer.lexicon.update(single)
        self.phrases = {w: float(v) for w, v in lexicon()["en_words"].items() if " " in w}
        self.lock = threading.Lock()

    def compound(self, text: str) -> float:
        with self.lock:
            return float(self.analyzer.polarity_scores(text)["compound"])


_VADER: Loader[str, _Vader] = Loader("VADER", lambda _key: _Vader())


@functools.lru_cache(maxsize=8192)
def snownlp_score(text: str) -> float:
    """snownlp's probability of positive, mapped to -1..1. Its sentiment classifier is called
    directly: `SnowNLP(text).sentiments` also builds a BM25 index of the text's characters
    first, which the sentiment never reads. Cached: comment sections repeat themselves
    ("666", "爱了"), and snownlp's segmenter is pure Python."""
    if not text:  # what SnowNLP("") raises ZeroDivisionError for
        return 0.0
    from snownlp import sentiment

    try:
        return 2.0 * float(sentiment.classify(text)) - 1.0
    except (ZeroDivisionError, ValueError):  # text with no usable characters
        return 0.0


def warm() -> None:
    """Load snownlp (importing it reads all its models, ~4 s), VADER and the lexicon tables."""
    snownlp_score("预热")
    _VADER.get("en")
    _tables()


def _has_any(text: str, cues: list[str]) -> bool:
    return any(cue in text for cue in cues)


def raw_lexicon_score(text: str, language: Lang) -> float:
    """The bare library's score (snownlp or VADER, no added words): the baseline the bench
    compares against."""
    if language == "zh":
        return snownlp_score(text)
    return float(_raw_vader().polarity_scores(text)["compound"])


@functools.cache
def _raw_vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def complaint_of(low: str) -> Aspect:
    """The aspect of the video a comment complains about, "" when none."""
    for aspect, cues in lexicon()["complaint"].items():
        if _has_any(low, cues):
            return aspect  # type: ignore[no-any-return]
    return ""


def read(text: str, language: Lang | None = None) -> Reading:
    """Read one comment the fast way."""
    lex = lexicon()
    lang = language or language_of(text)
    low = unicodedata.normalize("NFKC", text).casefold()
    padded = f" {low} "
    tables = _tables()
    emoji_w = _weights(text, tables["emoji"], negate=False)
    sarcasm = _has_any(low, lex["sarcasm"][lang])
    if lang == "zh":
        words = _weights(text, tables["zh"], negate=True)
        hits = words + emoji_w
        base = snownlp_score(text)
        # snownlp alone is weak on one-line comments (it learned from shop reviews): the
        # slang/emoji words lead when present, snownlp fills in when nothing matched.
        if hits:
            score = 0.7 * squash(sum(hits)) + 0.3 * base
        else:
            # A question judges nothing ("在哪里买？"); snownlp leans negative on them.
            score = (0.2 if is_question(low, lang) else 0.6) * base
    else:
        vader = _VADER.get("en")
        phrase_only = [w for p, w in vader.phrases.items() if p in low]
        hits = phrase_only + _weights(padded, tables["en"], negate=False) + emoji_w
        score = vader.compound(text)
        if phrase_only:
            score = max(-1.0, min(1.0, 0.6 * score + 0.4 * squash(sum(phrase_only))))
    complaint = complaint_of(low)
    mixed = any(w > 0 for w in hits) and any(w < 0 for w in hits)
    if sarcasm and score > 0 and (complaint or any(w < 0 for w in hits) or lang == "zh"):
        # Praise words next to a sarcasm cue and something wrong ("oh great, another ad 🙄",
        # "呵呵，讲得真好"): the praise is the irony.
        score = -max(0.3, score * 0.6)
    elif complaint and score > -0.2 and not any(w > 0 for w in hits):
        # A complaint about the video is criticism even when worded mildly ("声音太小了").
        score = min(score, -0.3)
    score = round(max(-1.0, min(1.0, score)), 3)
    confident = abs(score) >= CONFIDENT_AT and not sarcasm and not mixed
    return Reading(
        language=lang,
        sentiment=label(score),
        score=score,
        confident=confident,
        sarcasm_cue=sarcasm,
        question=is_question(low, lang),
        request=_has_any(padded, lex["request"][lang]) or _has_any(low, lex["request"]["en"]),
        complaint=complaint,
        spam=is_spam(low),
    )


def is_question(low: str, lang: Lang) -> bool:
    """Whether a comment asks something (a question mark, or a question's words)."""
    if "?" in low or "？" in low:
        return True
    cues: list[str] = lexicon()["question"][lang]
    if lang == "zh":
        return bool(_ZH_QUESTION_END.search(low)) or any(
            cue in low for cue in cues if len(cue) >= 2 and cue not in ("什么", "多少")
        )
    start = low.lstrip()
    return any(start.startswith(cue) for cue in cues) or "anyone know" in low


def is_spam(low: str) -> bool:
    """Links, follow-for-follow, contact details, or one character repeated on and on."""
    if _has_any(low, lexicon()["spam"]):
        return True
    folded = normalise(low)
    return len(folded) >= 12 and len(set(folded)) <= 2
