"""Word timings on the script's own words, from whatever timing an engine or whisper gives.

Engines time their own idea of a word (edge-tts: Microsoft's segmentation, espeak-ng: one event
per Hanzi, whisper: recognised tokens that may be misheard). Captions need the script's text, so
every source is mapped onto the script's *units*: English words with their punctuation, and for
Chinese single Hanzi (punctuation attached to the one before) which are merged back into words
wherever the engine timed several of them as one word. The mapping is a character-level
sequence alignment (difflib) over normalised text; units nothing matched are interpolated
between their timed neighbours by length, so every unit gets a time and times never go back.
"""

from __future__ import annotations

import difflib
import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from pipeline.cjk import OPENING, is_spaceless
from pipeline.loadonce import Loader
from pipeline.plan import WordTiming

log = logging.getLogger(__name__)


class Timed(Protocol):
    """Anything with text and times: `WordTiming`, `pipeline.speech.SpokenWord`."""

    @property
    def text(self) -> str: ...
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...


def _is_word_char(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LN"


def normalise(text: str) -> str:
    """Lower-case letters and digits only: what two spellings of the same speech share."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).lower() if _is_word_char(ch))


def _load_jieba(_: str) -> Any | None:
    """jieba, the standard Chinese word segmenter, with its dictionary loaded (else None)."""
    try:
        import jieba
    except ImportError:
        log.info("jieba is not installed: Chinese is split per character")
        return None
    jieba.setLogLevel(logging.WARNING)
    # jieba caches its parsed dictionary in /tmp by default; keep it with reelbot's cache.
    from pipeline.speech import cache_dir

    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        jieba.dt.tmp_dir = str(folder)
    except OSError:
        pass
    jieba.initialize()  # the dictionary (~0.5 s), here rather than inside the first lcut
    return jieba


_JIEBA: Loader[str, Any | None] = Loader("jieba dictionary", _load_jieba)


def _jieba() -> Any | None:
    return _JIEBA.get("")


def zh_word_starts(text: str) -> set[int] | None:
    """Indices in `text` where a Chinese word begins (jieba), or None without jieba."""
    jb = _jieba()
    if jb is None:
        return None
    starts: set[int] = set()
    pos = 0
    for tok in jb.lcut(text):
        starts.add(pos)
        pos += len(tok)
    return starts


def split_units(sentence: str, words: bool = True) -> list[str]:
    """The script's timing units: words (Chinese words via jieba), punctuation attached.

    Chinese becomes words where jieba is installed and `words` is on, single characters
    otherwise. Opening punctuation goes with the next unit, closing punctuation with the
    previous one, so a unit never starts or ends inside a word and joining units gives the
    sentence back (minus spacing between CJK characters).
    """
    # Han and kana are written without spaces: a unit is a jieba word or a single character.
    # Hangul is written with spaces between words, so it splits like Latin text.
    starts = zh_word_starts(sentence) if words and any(map(is_spaceless, sentence)) else None
    tokens: list[str] = []
    buf = ""
    pending_open = ""
    open_cjk = False  # the last token is a Chinese word the next character may continue
    for k, ch in enumerate(sentence):
        if ch.isspace():
            if buf:
                tokens.append(buf)
                buf = ""
            open_cjk = False
            continue
        if is_spaceless(ch):
            if buf:
                tokens.append(buf)
                buf = ""
            if open_cjk and not pending_open and starts is not None and k not in starts:
                tokens[-1] += ch
            else:
                tokens.append(pending_open + ch)
                pending_open = ""
            open_cjk = True
            continue
        open_cjk = False
        if _is_word_char(ch) or (ch in "'’-_." and buf and _is_word_char(buf[-1])):
            if not buf:
                buf = pending_open
                pending_open = ""
            buf += ch
        elif ch in "\"'" and buf:  # a straight quote right after a word closes it
            buf += ch
        elif ch in OPENING:
            if buf:
                tokens.append(buf)
                buf = ""
            pending_open += ch
        else:  # closing or inner punctuation
            if buf:
                buf += ch
            elif tokens:
                tokens[-1] += ch
            else:
                pending_open += ch
    if buf:
        tokens.append(buf)
    if pending_open and tokens:
        tokens[-1] += pending_open
    return [t for t in tokens if t]


@dataclass(frozen=True, slots=True)
class _Span:
    start: float
    end: float
    source: int  # which engine word timed it


def align_words(
    sentence: str,
    timed: Sequence[WordTiming],
    clip_end: float,
    chinese: Literal["engine", "words", "chars"] = "words",
) -> tuple[WordTiming, ...]:
    """Time the script's units of `sentence` from `timed` (engine or whisper words).

    `clip_end` bounds interpolation at the end. `chinese` says what a Chinese unit is:
    "engine" - the engine's own words (edge-tts segments words well: characters one engine word
    covers are joined into it), "words" - jieba's words (for engines timing single characters,
    and whisper; per character without jieba), "chars" - single characters.
    """
    units = split_units(sentence, words=chinese == "words")
    if not units:
        return ()
    script_chars: list[int] = []  # unit index of each normalised script character
    script_norm = ""
    for i, u in enumerate(units):
        n = normalise(u)
        script_norm += n
        script_chars.extend([i] * len(n))
    heard_chars: list[int] = []
    heard_norm = ""
    for j, w in enumerate(timed):
        n = normalise(w.text)
        heard_norm += n
        heard_chars.extend([j] * len(n))

    hits: dict[int, set[int]] = {}
    matcher = difflib.SequenceMatcher(None, script_norm, heard_norm, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            hits.setdefault(script_chars[block.a + k], set()).add(heard_chars[block.b + k])

    spans: list[_Span | None] = []
    for i in range(len(units)):
        src = hits.get(i)
        if not src:
            spans.append(None)
            continue
        ws = [timed[j] for j in sorted(src)]
        spans.append(_Span(min(w.start for w in ws), max(w.end for w in ws), min(src)))

    srcs = [hits.get(i, set()) for i in range(len(units))]
    if chinese != "chars":
        units, spans, srcs = _merge_cjk(units, spans, srcs)
    spans = _share_words(units, spans, srcs)
    return _fill_and_order(units, spans, clip_end)


def _merge_cjk(
    units: list[str], spans: list[_Span | None], srcs: list[set[int]]
) -> tuple[list[str], list[_Span | None], list[set[int]]]:
    """Join neighbouring Hanzi that one engine word covers into that word."""
    out_u: list[str] = []
    out_s: list[_Span | None] = []
    out_src: list[set[int]] = []
    for u, s, src in zip(units, spans, srcs, strict=True):
        same_word = (
            s is not None
            and len(src) == 1
            and out_src
            and out_src[-1] == src
            and is_spaceless(normalise(u)[:1] or " ")
            and is_spaceless(normalise(out_u[-1])[-1:] or " ")
            and not _ends_clause(out_u[-1])
        )
        if same_word:
            out_u[-1] += u
        else:
            out_u.append(u)
            out_s.append(s)
            out_src.append(src)
    return out_u, out_s, out_src


def _share_words(
    units: list[str], spans: list[_Span | None], srcs: list[set[int]]
) -> list[_Span | None]:
    """Units still sharing one engine word ("2024" + "年") split its time by length."""
    out = list(spans)
    i = 0
    while i < len(units):
        j = i + 1
        while j < len(units) and len(srcs[i]) == 1 and srcs[j] == srcs[i] and spans[j]:
            j += 1
        first = spans[i]
        if j - i > 1 and first is not None:
            weights = [max(len(normalise(units[k])), 1) for k in range(i, j)]
            total, t = sum(weights), first.start
            for k, w in zip(range(i, j), weights, strict=True):
                d = (first.end - first.start) * w / total
                out[k] = _Span(t, t + d, first.source)
                t += d
        i = j
    return out


def _ends_clause(unit: str) -> bool:
    return bool(unit) and not _is_word_char(unit[-1])


def _fill_and_order(
    units: list[str], spans: list[_Span | None], clip_end: float
) -> tuple[WordTiming, ...]:
    n = len(units)
    starts = [s.start if s else None for s in spans]
    ends = [s.end if s else None for s in spans]
    i = 0
    while i < n:
        if starts[i] is not None:
            i += 1
            continue
        j = i
        while j < n and starts[j] is None:
            j += 1
        left = ends[i - 1] if i > 0 else 0.0
        right = starts[j] if j < n else clip_end
        left = left if left is not None else 0.0
        right = right if right is not None and right >= left else left
        weights = [max(len(normalise(units[k])), 1) for k in range(i, j)]
        total = sum(weights)
        t = left
        for k, wgt in zip(range(i, j), weights, strict=True):
            d = (right - left) * wgt / total
            starts[k], ends[k] = t, t + d
            t += d
        i = j
    out: list[WordTiming] = []
    prev_end = 0.0
    for u, s, e in zip(units, starts, ends, strict=True):
        assert s is not None and e is not None
        s = max(s, prev_end)
        e = max(e, s)
        out.append(WordTiming(u, s, e))
        prev_end = e
    return tuple(out)


def tighten_ends(
    samples: np.ndarray, rate: int, words: Sequence[WordTiming], floor_db: float = -40.0
) -> tuple[WordTiming, ...]:
    """Pull each word's end back from trailing silence (engines often count a pause in a word).

    A word then ends at its last frame louder than `floor_db` below the clip's peak (plus 30 ms),
    never earlier than 60 ms after its start, so a caption does not linger through a pause.
    """
    if not len(samples):
        return tuple(words)
    hop = max(rate // 100, 1)  # 10 ms frames
    frames = len(samples) // hop
    if frames == 0:
        return tuple(words)
    rms = np.sqrt(np.mean(samples[: frames * hop].reshape(frames, hop) ** 2, axis=1) + 1e-12)
    loud = rms > rms.max() * 10 ** (floor_db / 20)
    out: list[WordTiming] = []
    for w in words:
        a, b = int(w.start * 100), min(int(np.ceil(w.end * 100)), frames)
        idx = np.nonzero(loud[a:b])[0]
        end = w.end
        if len(idx):
            end = min(w.end, max((a + idx[-1] + 1) / 100 + 0.03, w.start + 0.06))
        out.append(WordTiming(w.text, w.start, float(max(end, w.start))))
    return tuple(out)


def tighten_starts(
    samples: np.ndarray,
    rate: int,
    words: Sequence[Timed],
    floor_db: float = -40.0,
    pause: float = 0.12,
) -> list[WordTiming]:
    """Push each word's start forward out of silence: a word is not spoken before it is heard.

    Whisper's word timestamps run end to end, so a word after a pause "starts" when the word
    before it ended, or even inside it, with the pause counted as part of the word. A start
    moves past leading silence, and past the last pause of at least `pause` seconds inside the
    word's span (no word holds one; a stop consonant's closure is shorter): to the first 10 ms
    frame louder than `floor_db` under the peak after it (less 10 ms), never later than 60 ms
    before the word's end. What stable-ts calls suppressing silence.
    """
    hop = max(rate // 100, 1)
    frames = len(samples) // hop
    if frames == 0:
        return [WordTiming(w.text, w.start, w.end) for w in words]
    rms = np.sqrt(np.mean(samples[: frames * hop].reshape(frames, hop) ** 2, axis=1) + 1e-12)
    loud = rms > rms.max() * 10 ** (floor_db / 20)
    min_run = max(1, round(pause * 100))
    out: list[WordTiming] = []
    for w in words:
        a, b = int(w.start * 100), min(int(np.ceil(w.end * 100)), frames)
        onset = None  # frame (within the span) where sound resumes after silence that counts
        quiet = 0
        for k, is_loud in enumerate(loud[a:b]):
            if not is_loud:
                quiet += 1
                continue
            if quiet and (quiet == k or quiet >= min_run):  # leading silence, or a pause
                onset = k
            quiet = 0
        start = w.start
        if onset is not None:
            start = max(w.start, min((a + onset) / 100 - 0.01, w.end - 0.06))
        out.append(WordTiming(w.text, float(start), w.end))
    return out


def audible_bounds(samples: np.ndarray, rate: int, floor_db: float = -45.0) -> tuple[int, int]:
    """First and last sample of sound above `floor_db` under the peak: where to trim a clip."""
    if not len(samples):
        return 0, 0
    hop = max(rate // 200, 1)  # 5 ms frames
    frames = len(samples) // hop
    if frames == 0:
        return 0, len(samples)
    rms = np.sqrt(np.mean(samples[: frames * hop].reshape(frames, hop) ** 2, axis=1) + 1e-12)
    loud = np.nonzero(rms > rms.max() * 10 ** (floor_db / 20))[0]
    if not len(loud):
        return 0, len(samples)
    return int(loud[0] * hop), int(min((loud[-1] + 1) * hop, len(samples)))
