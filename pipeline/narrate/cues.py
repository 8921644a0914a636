"""Caption cues from word timings: short, phrase-shaped, shown exactly while their words are heard.

Pure functions of the words and sentence spans (no audio, no models). A cue holds at most about
16 CJK characters or 7 English words, never spans two script sentences, and breaks where a
reader would: after punctuation first, then at phrase boundaries (before a conjunction or
preposition, after a Chinese particle), never inside a word. Cue text is the joined text of its
words, so a renderer doing karaoke can draw the words one by one and get the same line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from pipeline.cjk import CLAUSE_END, KEEP_AT_END, is_cjk_char, join_units
from pipeline.narrate.align import normalise
from pipeline.plan import CaptionCue, CaptionStyle, WordTiming

# Presets. All keep the baseline 24 % above the bottom, clear of the platforms' buttons.
PRESETS: dict[str, CaptionStyle] = {
    "bold": CaptionStyle(
        name="bold",
        size=0.05,
        bold=True,
        outline=0.0045,
        shadow=0.002,
        karaoke=True,
        highlight="#FFD400",
    ),
    "clean": CaptionStyle(
        name="clean", size=0.042, bold=False, outline=0.0025, shadow=0.0, karaoke=False
    ),
    "boxed": CaptionStyle(
        name="boxed",
        size=0.045,
        bold=True,
        box=True,
        outline=0.0,
        outline_colour="#000000",
        karaoke=False,
        highlight="#FFD400",
    ),
}

# English words a phrase usually starts with: a break before them reads naturally.
_EN_PHRASE_START = frozenset(
    (
        "and", "but", "or", "so", "because", "while", "when", "where", "which", "who", "that",
        "to", "with", "for", "from", "of", "in", "on", "at", "by", "as", "if", "than", "then",
        "about", "into", "over", "after", "before", "until", "without", "through", "why", "how",
        "what",
    )
)  # fmt: skip
# Chinese particles that close a phrase (break after) and words that open one (break before).
# 的 is left out on purpose: it usually ties an attribute to the noun after it (新鲜的豆子).
_ZH_AFTER = set("了着过吗呢吧啊呀嘛")
_ZH_BEFORE = ("但", "而", "和", "跟", "与", "因为", "所以", "如果", "然后", "为什么", "怎么",
              "就", "还", "也", "在", "把", "被", "让")  # fmt: skip


def caption_style(preset: str = "bold", *, karaoke: bool | None = None) -> CaptionStyle:
    """A named preset, optionally with karaoke switched on or off; unknown names raise KeyError."""
    style = PRESETS[preset]
    if karaoke is not None:
        style = dataclasses.replace(style, karaoke=karaoke)
    return style


def _weight(text: str, cjk: bool) -> float:
    """How much of the line budget a word uses: CJK characters count 1, a Latin word ~ 2."""
    if not cjk:
        return 1.0
    n = normalise(text)
    # Every Han, kana or Hangul letter takes a full em on screen, whichever the language.
    han = sum(1 for ch in n if is_cjk_char(ch))
    return han + (2.0 if len(n) > han else 0.0)


def _break_cost(words: Sequence[WordTiming], i: int, cjk: bool) -> float:
    """Cost of ending a cue after word i (lower is a better place to break)."""
    last = words[i].text
    if last and last[-1] in CLAUSE_END:
        return 0.0
    # Chinese units may be single characters: look at the next few to see a word like 因为.
    nxt = "".join(w.text for w in words[i + 1 : i + 4]) if cjk else ""
    if cjk:
        if last and last[-1] in _ZH_AFTER:
            return 2.0
        if nxt.startswith(_ZH_BEFORE):
            return 2.0
        return 6.0
    if i + 1 < len(words) and normalise(words[i + 1].text) in _EN_PHRASE_START:
        return 2.0
    return 5.0


def split_phrases(
    words: Sequence[WordTiming], cjk: bool, max_chars: int = 16, max_words: int = 7
) -> list[list[WordTiming]]:
    """Split one sentence's words into cue-sized phrases (dynamic programming over breaks)."""
    n = len(words)
    if n == 0:
        return []
    limit = float(max_chars if cjk else max_words)
    weights = [_weight(w.text, cjk) for w in words]
    best = [0.0] + [float("inf")] * n
    back = [0] * (n + 1)
    for end in range(1, n + 1):
        size = 0.0
        for start in range(end - 1, -1, -1):
            size += weights[start]
            if size > limit and end - start > 1:
                break
            # Prefer breaking at good places, then filling lines; a lone short tail is ugly.
            cost = best[start] + (0.0 if end == n else _break_cost(words, end - 1, cjk))
            cost += 1.0 + ((limit - size) / limit) ** 2
            if size < limit * 0.25 and n > 1:
                cost += 3.0
            if cost < best[end]:
                best[end], back[end] = cost, start
    chunks: list[list[WordTiming]] = []
    end = n
    while end > 0:
        chunks.append(list(words[back[end] : end]))
        end = back[end]
    return chunks[::-1]


def _strip_end(text: str) -> str:
    """Drop a cue's trailing comma or full stop (captions read cleaner); keep ! and ?."""
    while text and text[-1] in CLAUSE_END and text[-1] not in KEEP_AT_END:
        text = text[:-1]
    return text or text


def build_cues(
    words: Sequence[WordTiming],
    line_spans: Sequence[tuple[float, float]],
    language: str,
    *,
    style: str = "default",
    max_chars: int = 16,
    max_words: int = 7,
    bridge: float = 0.3,
    min_show: float = 0.6,
) -> tuple[CaptionCue, ...]:
    """Caption cues for a narration: one or more per sentence, in order, never overlapping.

    A cue starts at its first word's start and ends at its last word's end; a gap to the next
    cue shorter than `bridge` is closed (no flicker between phrases), and a cue shorter than
    `min_show` is held into the following silence so it can be read, never past the next cue.
    """
    cjk = language.startswith("zh") or language in ("ja", "ko")
    groups: list[list[WordTiming]] = [[] for _ in line_spans] or [[]]
    for w in words:
        mid = (w.start + w.end) / 2
        idx = next(
            (k for k, (a, b) in enumerate(line_spans) if a - 1e-6 <= mid <= b + 1e-6),
            min(range(len(line_spans)), key=lambda k: abs(line_spans[k][0] - mid), default=0),
        )
        groups[idx].append(w)

    raw: list[tuple[float, float, tuple[WordTiming, ...]]] = []
    for group in groups:
        for chunk in split_phrases(group, cjk, max_chars, max_words):
            last = chunk[-1]
            chunk[-1] = WordTiming(_strip_end(last.text) or last.text, last.start, last.end)
            raw.append((chunk[0].start, chunk[-1].end, tuple(chunk)))

    cues: list[CaptionCue] = []
    for i, (start, end, cw) in enumerate(raw):
        nxt = raw[i + 1][0] if i + 1 < len(raw) else None
        if nxt is not None:
            if nxt - end < bridge:
                end = nxt
            elif end - start < min_show:
                end = min(start + min_show, nxt)
            end = min(end, nxt)
        elif end - start < min_show:
            end = start + min_show
        text = join_units([w.text for w in cw])
        if text.strip() and end > start:
            cues.append(CaptionCue(text=text, start=start, end=end, style=style, words=cw))
    return tuple(cues)
