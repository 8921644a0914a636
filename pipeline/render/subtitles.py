"""Caption cues -> an ASS subtitle script that ffmpeg's libass burns into the picture.

libass wraps lines only at spaces, so Chinese (no spaces) would run off the screen: lines are
wrapped here, by measured width, balanced, at punctuation when possible. Karaoke highlighting is
one event per spoken word with that word coloured, which keeps the text still while the colour
moves (libass's own \\k tags sweep the whole line from the left, wrong for per-word timing).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import subprocess
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pipeline.plan import CaptionCue, CaptionStyle, EditPlan, WordTiming

log = logging.getLogger(__name__)

_CJK_FONT_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
)
_BREAK_AFTER = set("，。！？；：、,.!?;:…)")


@dataclass(frozen=True, slots=True)
class FontChoice:
    """The font family libass is told to use and the folder it is found in."""

    family: str
    directory: str | None


@functools.cache
def resolve_font(requested: str) -> FontChoice:
    """Find `requested` or, failing that, a font with Chinese glyphs (never a tofu-only font)."""
    for family in (requested, *_CJK_FONT_FAMILIES):
        path = _fc_match(family)
        if path is not None:
            return FontChoice(family, os.path.dirname(path))
    path = _fc_match(":lang=zh")
    if path is not None:
        log.warning("font %r not found; using %s", requested, path)
        return FontChoice(requested, os.path.dirname(path))
    log.warning("no font with Chinese glyphs found: Chinese captions will not render")
    return FontChoice(requested, None)


def font_file(requested: str = _CJK_FONT_FAMILIES[0]) -> str | None:
    """The file of `requested` or of a Chinese-capable fallback (for Pillow drawing)."""
    for family in (requested, *_CJK_FONT_FAMILIES):
        path = _fc_match(family)
        if path is not None:
            return path
    return _fc_match(":lang=zh")


def _fc_match(pattern: str) -> str | None:
    try:
        done = subprocess.run(
            ["fc-match", "--format=%{family}\n%{file}", pattern],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0 or "\n" not in done.stdout:
        return None
    families, path = done.stdout.split("\n", 1)
    if pattern.startswith(":"):
        return path.strip() or None
    # fc-match always answers with *something*; accept it only if it is the family asked for.
    wanted = pattern.lower()
    if any(f.strip().lower() == wanted for f in families.split(",")):
        return path.strip() or None
    return None


def is_wide(ch: str) -> bool:
    """Whether a character takes a full em (CJK ideographs, kana, hangul, full-width forms)."""
    return unicodedata.east_asian_width(ch) in ("W", "F")


def _tokens(text: str) -> list[str]:
    """Split into wrap units: each wide character alone, runs of narrow text kept as words."""
    out: list[str] = []
    for piece in re.findall(r"\s+|[^\s]", text):
        if piece.isspace():
            out.append(" ")
        elif is_wide(piece) or not out or out[-1] == " " or is_wide(out[-1][-1]):
            out.append(piece)
        else:
            out[-1] += piece
    return out


def text_width(text: str) -> float:
    """Approximate rendered width in ems (wide characters 1.0, others ~0.55)."""
    return sum(1.0 if is_wide(c) else 0.55 for c in text)


def wrap(text: str, max_em: float) -> list[str]:
    """Wrap `text` into balanced lines no wider than `max_em`, preferring punctuation breaks."""
    text = " ".join(text.split())
    if text_width(text) <= max_em:
        return [text]
    n_lines = int(text_width(text) // max_em) + 1
    target = text_width(text) / n_lines
    tokens = _tokens(text)
    lines: list[str] = []
    cur = ""
    for i, tok in enumerate(tokens):
        if not cur and tok == " ":
            continue
        cand = cur + tok
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        too_wide = text_width(cand.rstrip()) > max_em
        if too_wide and cur.strip():
            lines.append(cur.strip())
            cur = "" if tok == " " else tok
            continue
        cur = cand
        # Close a line once it reaches its share, at a natural break if one is near.
        reached = text_width(cur) >= target * (0.85 if cur[-1] in _BREAK_AFTER else 1.0)
        if reached and len(lines) < n_lines - 1 and nxt not in _BREAK_AFTER:
            lines.append(cur.strip())
            cur = ""
    if cur.strip():
        lines.append(cur.strip())
    return lines


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
    back = _ass_colour("#000000", 0x60)
    outline_colour = _ass_colour(st.outline_colour, 0x40 if st.box else 0)
    fields = [
        _ass_style_name(st.name), font, str(size),
        _ass_colour(st.colour), _ass_colour(st.highlight), outline_colour, back,
        "-1" if st.bold else "0", "0", "0", "0", "100", "100", "0", "0",
        str(border_style), str(outline), str(shadow), "2",
        str(round(st.margin_side * width)), str(round(st.margin_side * width)),
        str(round(st.margin_bottom * height)), "1",
    ]  # fmt: skip  # fmt: skip
    return "Style: " + ",".join(fields)


def _wrapped_words(words: Sequence[WordTiming], lines: list[str]) -> list[list[int]]:
    """Which word indices fall on each wrapped line (by matching characters in order)."""
    flat = "".join(lines).replace(" ", "")
    owner: list[int] = []
    for i, w in enumerate(words):
        owner.extend([i] * len(w.text.replace(" ", "")))
    result: list[list[int]] = []
    pos = 0
    for line in lines:
        n = len(line.replace(" ", ""))
        idx = sorted({owner[k] for k in range(pos, min(pos + n, len(owner)))})
        result.append(idx)
        pos += n
    if len(owner) != len(flat):
        return []
    return result


def _karaoke_events(cue: CaptionCue, st: CaptionStyle, lines: list[str]) -> list[str]:
    """One event per word: the whole cue, with the word being spoken in the highlight colour."""
    words = list(cue.words)
    per_line = _wrapped_words(words, lines)
    if not per_line:
        return []
    hi = _ass_colour(st.highlight)
    base = _ass_colour(st.colour)
    events = []
    for k, w in enumerate(words):
        start = cue.start if k == 0 else w.start
        end = words[k + 1].start if k + 1 < len(words) else cue.end
        if end <= start:
            continue
        rendered = []
        for line_words in per_line:
            parts = []
            for i in line_words:
                token = _escape(words[i].text)
                parts.append(f"{{\\c{hi}}}{token}{{\\c{base}}}" if i == k else token)
            rendered.append(_join_tokens(parts, [words[i].text for i in line_words]))
        text = "\\N".join(rendered)
        events.append(
            f"Dialogue: 0,{_ass_time(start)},{_ass_time(end)},{_ass_style_name(st.name)},,0,0,0,,"
            f"{text}"
        )
    return events


def _join_tokens(parts: list[str], raw: list[str]) -> str:
    out = ""
    for i, part in enumerate(parts):
        if i and not (is_wide(raw[i - 1][-1:] or "a") or is_wide(raw[i][:1] or "a")):
            out += " "
        out += part
    return out


def build_ass(plan: EditPlan, captions: Iterable[CaptionCue] | None = None) -> str:
    """The complete ASS script for a plan's captions, sized for its output."""
    out = plan.output
    cues = list(plan.captions if captions is None else captions)
    head = [
        "[Script Info]",
        "ScriptType: v4.00+",
        f"PlayResX: {out.width}",
        f"PlayResY: {out.height}",
        "WrapStyle: 2",  # we wrap ourselves (\N); libass must not re-wrap
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
        karaoke_text = _join_tokens([w.text for w in cue.words], [w.text for w in cue.words])
        use_karaoke = st.karaoke and bool(cue.words)
        lines = wrap(karaoke_text if use_karaoke else cue.text, max_em * 0.96)
        if use_karaoke:
            karaoke = _karaoke_events(cue, st, lines)
            if karaoke:
                events += karaoke
                continue
        text = "\\N".join(_escape(line) for line in lines)
        events.append(
            f"Dialogue: 0,{_ass_time(cue.start)},{_ass_time(cue.end)},"
            f"{_ass_style_name(st.name)},,0,0,0,,{text}"
        )
    return "\n".join(head + events) + "\n"
