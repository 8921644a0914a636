"""Caption cues -> an ASS subtitle script that ffmpeg's libass burns into the picture.

libass wraps lines only at spaces, so Chinese (no spaces) would run off the screen: lines are
wrapped here, by measured width, balanced, at punctuation when possible, and never inside a
unit: a cue's words when it has them (a word cut in two was drawn whole on both lines by the
karaoke events), else single wide characters and space-separated words. Karaoke highlighting is
one event per spoken word with that word coloured, which keeps the text still while the colour
moves (libass's own \\k tags sweep the whole line from the left, wrong for per-word timing).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pipeline.cjk import (
    CLAUSE_END,
    CLOSING,
    OPENING,
    is_wide,
    resolve_font,
)
from pipeline.plan import CaptionCue, CaptionStyle, EditPlan

log = logging.getLogger(__name__)

# A line may end after clause punctuation or a closing bracket: the better place to break.
_BREAK_AFTER = CLAUSE_END | CLOSING
# What a line that does not end at punctuation costs, relative to a (line width / line limit)
# of 1 off its balanced share: enough to move a break a character or two to a comma.
_NO_PUNCT_COST = 0.02

Span = tuple[int, int]  # a wrap unit: text[start:end]

# Captions at the top sit this far (a fraction of the height) below the top edge, clear of the
# status bar and the platforms' tabs ("Following | For you") drawn over the top ~10%.
TOP_MARGIN = 0.12
# ASS numpad alignments, bottom / middle / top centre, with the vertical margin each uses.
_ALIGN = {"bottom": 2, "middle": 5, "top": 8}


def _token_spans(text: str) -> list[Span]:
    """Wrap units of plain text: space-separated words, and inside them each wide (Han, kana,
    full-width) character. Punctuation stays with the unit before it and opening brackets with
    the one after, so no line starts with a comma or ends with an opening quote."""
    spans: list[Span] = []
    for m in re.finditer(r"\S+", text):
        start, hold = m.start(), False  # hold: the unit so far is opening punctuation only
        for k in range(m.start(), m.end()):
            ch = text[k]
            opening = ch in OPENING and (ch not in "\"'" or k == m.start())
            if k == m.start() or hold:
                hold = opening and (hold or k == m.start())
                continue
            glued = (not opening and unicodedata.category(ch)[0] in "PS") or not (
                is_wide(ch) or is_wide(text[k - 1])
            )
            if not glued:
                spans.append((start, k))
                start, hold = k, opening
        spans.append((start, m.end()))
    return spans


def _word_spans(text: str, words: Sequence[str]) -> list[Span] | None:
    """Where each word is in `text`, in order, with only spaces between; None if they are not
    exactly the text (an edited caption), so the caller wraps the text on its own."""
    spans: list[Span] = []
    pos = 0
    for w in words:
        k = text.find(w, pos) if w else -1
        if k < 0 or text[pos:k].strip():
            return None
        spans.append((k, k + len(w)))
        pos = k + len(w)
    if text[pos:].strip() or not spans:
        return None
    return spans


def text_width(text: str) -> float:
    """Approximate rendered width in ems (wide characters 1.0, others ~0.55)."""
    return sum(1.0 if is_wide(c) else 0.55 for c in text)


def wrap_spans(text: str, spans: Sequence[Span], max_em: float) -> list[Span]:
    """Balanced lines of whole units: (first unit, last unit + 1) per line.

    Units are never split, so a word stays on one line (a unit wider than a line gets a line of
    its own). The line count is the fewest that fit; within it, lines are as even as possible,
    ending after punctuation when that costs little.
    """
    n = len(spans)
    if n == 0:
        return []

    def width(i: int, j: int) -> float:
        return text_width(text[spans[i][0] : spans[j - 1][1]])

    if width(0, n) <= max_em:
        return [(0, n)]
    count, i = 0, 0
    while i < n:  # greedy: the fewest lines that fit
        j = i + 1
        while j < n and width(i, j + 1) <= max_em:
            j += 1
        count, i = count + 1, j
    target = width(0, n) / count
    inf = float("inf")
    # best[k][j]: cost of units[:j] in k lines; back[k][j]: where the k-th line starts.
    best = [[inf] * (n + 1) for _ in range(count + 1)]
    back = [[0] * (n + 1) for _ in range(count + 1)]
    best[0][0] = 0.0
    for k in range(1, count + 1):
        for j in range(1, n + 1):
            for i in range(j - 1, -1, -1):
                w = width(i, j)
                if w > max_em and j - i > 1:
                    break
                if best[k - 1][i] == inf:
                    continue
                cost = best[k - 1][i] + ((w - target) / max_em) ** 2
                if j < n and text[spans[j - 1][1] - 1] not in _BREAK_AFTER:
                    cost += _NO_PUNCT_COST
                if cost < best[k][j]:
                    best[k][j], back[k][j] = cost, i
    lines: list[Span] = []
    j = n
    for k in range(count, 0, -1):
        i = back[k][j]
        lines.append((i, j))
        j = i
    return lines[::-1]


def wrap(text: str, max_em: float) -> list[str]:
    """Wrap plain `text` into balanced lines no wider than `max_em`, preferring punctuation."""
    return wrap_cue(CaptionCue(text, 0.0, 0.0), max_em).line_texts()


def _ass_colour(hex_rgb: str, alpha: int = 0) -> str:
    r, g, b = hex_rgb[1:3], hex_rgb[3:5], hex_rgb[5:7]
    return f"&H{alpha:02X}{b}{g}{r}".upper()


def _ass_time(t: float) -> str:
    cs = max(round(t * 100), 0)
    h, rem = divmod(cs, 360000)
    m, rem = divmod(rem, 6000)
    s, cs = divmod(rem, 100)
    return f"{h}:{m:02d}:{s:02d}.{cs:02d}"


def _escape(text: str) -> str:
    # Braces start override blocks and backslashes start tags: swap them for look-alikes.
    return text.replace("\\", "＼").replace("{", "｛").replace("}", "｝").replace("\n", " ")


def _ass_style_name(name: str) -> str:
    # libass maps any style called "default" (in any case) to its built-in Default style and
    # ignores ours, so every plan style gets a prefix in the ASS file.
    return "rb-" + re.sub(r"[,\s]", "_", name)


def _style_line(st: CaptionStyle, font: str, width: int, height: int) -> str:
    size = round(st.size * height)
    outline = round(st.outline * height, 1)
    shadow = round(st.shadow * height, 1)
    border_style = 3 if st.box else 1
    margin = {"bottom": st.margin_bottom, "middle": 0.0, "top": TOP_MARGIN}[st.position]
    back = _ass_colour("#000000", 0x60)
    outline_colour = _ass_colour(st.outline_colour, 0x40 if st.box else 0)
    fields = [
        _ass_style_name(st.name), font, str(size),
        _ass_colour(st.colour), _ass_colour(st.highlight), outline_colour, back,
        "-1" if st.bold else "0", "0", "0", "0", "100", "100", "0", "0",
        str(border_style), str(outline), str(shadow), str(_ALIGN[st.position]),
        str(round(st.margin_side * width)), str(round(st.margin_side * width)),
        str(round(margin * height)), "1",
    ]  # fmt: skip
    return "Style: " + ",".join(fields)


def _karaoke_events(cue: CaptionCue, st: CaptionStyle, wrapped: WrappedCue) -> list[str]:
    """One event per word: the whole cue, with the word being spoken in the highlight colour.

    Every line is drawn from the words it holds and the exact text between them, so each word
    is drawn once, on its own line, whatever the wrap decided.
    """
    words, text, spans = cue.words, wrapped.text, wrapped.spans
    hi = _ass_colour(st.highlight)
    base = _ass_colour(st.colour)
    events = []
    for k, w in enumerate(words):
        start = cue.start if k == 0 else w.start
        end = words[k + 1].start if k + 1 < len(words) else cue.end
        if end <= start:
            continue
        rendered = []
        for first, last in wrapped.lines:
            line = ""
            for i in range(first, last):
                if i > first:
                    line += _escape(text[spans[i - 1][1] : spans[i][0]])
                token = _escape(text[spans[i][0] : spans[i][1]])
                line += f"{{\\c{hi}}}{token}{{\\c{base}}}" if i == k else token
            rendered.append(line)
        events.append(
            f"Dialogue: 0,{_ass_time(start)},{_ass_time(end)},{_ass_style_name(st.name)},,0,0,0,,"
            + "\\N".join(rendered)
        )
    return events


@dataclass(frozen=True, slots=True)
class WrappedCue:
    """A cue's text cut into wrap units (spans of `text`) and its lines (unit ranges)."""

    text: str
    spans: list[Span]
    lines: list[Span]
    by_words: bool  # the units are the cue's words, one span per `cue.words` entry

    def line_texts(self) -> list[str]:
        return [self.text[self.spans[i][0] : self.spans[j - 1][1]] for i, j in self.lines]


def wrap_cue(cue: CaptionCue, max_em: float) -> WrappedCue:
    """Wrap a cue. The units are its words when they spell its text (cues from
    `narrate.cues` always do), so a word is never cut across two lines; otherwise (an edited
    caption, a cue without words) the text is wrapped on its own."""
    text = " ".join(cue.text.split())
    spans = _word_spans(text, [w.text for w in cue.words]) if cue.words else None
    by_words = spans is not None
    if spans is None:
        spans = _token_spans(text)
    return WrappedCue(text, spans, wrap_spans(text, spans, max_em), by_words)


def build_ass(plan: EditPlan, captions: Iterable[CaptionCue] | None = None) -> str:
    """The complete ASS script for a plan's captions, sized for its output."""
    out = plan.output
    cues = list(plan.captions if captions is None else captions)
    head = [
        "[Script Info]",
        "ScriptType: v4.00+",
        f"PlayResX: {out.width}",
        f"PlayResY: {out.height}",
        "WrapStyle: 2",  # we wrap ourselves (\\N); libass must not re-wrap
        "ScaledBorderAndShadow: yes",
        "YCbCr Matrix: TV.709",
        "",
        "[V4+ Styles]",
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
        "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
        "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding",
    ]
    for st in plan.styles:
        head.append(_style_line(st, resolve_font(st.font).family, out.width, out.height))
    head += [
        "",
        "[Events]",
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
    ]
    events: list[str] = []
    for cue in cues:
        st = plan.style(cue.style)
        max_em = (out.width * (1 - 2 * st.margin_side)) / (st.size * out.height)
        wrapped = wrap_cue(cue, max_em * 0.96)
        if st.karaoke and wrapped.by_words:
            events += _karaoke_events(cue, st, wrapped)
            continue
        body = "\\N".join(_escape(line) for line in wrapped.line_texts())
        events.append(
            f"Dialogue: 0,{_ass_time(cue.start)},{_ass_time(cue.end)},"
            f"{_ass_style_name(st.name)},,0,0,0,,{body}"
        )
    return "\n".join(head + events) + "\n"
