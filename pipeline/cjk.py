"""Chinese, Japanese and Korean text: what counts as CJK, how units join, punctuation, fonts.

One home for questions that used to be answered six different ways. The character classes are
separate on purpose, because callers need different things:

- `is_han`: Chinese characters (also used in Japanese). "Is this Chinese?" for scripts, speech
  length and language checks: reelbot speaks zh and en, and a Chinese voice reads Han only.
- `is_kana`, `is_hangul`: Japanese syllabaries, Korean syllables and jamo.
- `is_cjk_char`: any of the three. "Is this East Asian writing?" (n-gram matching, counting
  caption characters, deciding a sentence needs word segmentation).
- `is_spaceless`: Han and kana only: scripts written *without* spaces between words, so a unit
  of them is joined to its neighbours with no space. Korean writes spaces between words, so
  Hangul runs are words like Latin ones and keep their spaces.
- `is_cjk_punct`: ideographic punctuation and full-width symbols (，。！？「」【】…), which take
  no space on either side.
- `is_wide`: takes a full em on screen (East Asian Width W or F: CJK, full-width forms and most
  emoji); a width measure for wrapping, not a script test.

Ranges are Unicode blocks (stdlib only; Python's `unicodedata` has no script property).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import subprocess
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

_HAN = (
    (0x2E80, 0x2FDF),  # CJK radicals supplement, Kangxi radicals
    (0x3005, 0x3005),  # 々 iteration mark
    (0x3007, 0x3007),  # 〇 ideographic zero
    (0x3021, 0x3029),  # Hangzhou numerals
    (0x3038, 0x303B),
    (0x3400, 0x4DBF),  # extension A
    (0x4E00, 0x9FFF),  # unified ideographs
    (0xF900, 0xFAFF),  # compatibility ideographs
    (0x20000, 0x323AF),  # extensions B-H and the compatibility supplement
)
_KANA = (
    (0x3040, 0x309F),  # hiragana
    (0x30A0, 0x30FF),  # katakana (ー included; the ・ middle dot is punctuation, see below)
    (0x31F0, 0x31FF),  # katakana phonetic extensions
    (0xFF66, 0xFF9F),  # half-width katakana
    (0x1B000, 0x1B16F),  # kana supplement and extensions
)
_HANGUL = (
    (0x1100, 0x11FF),  # jamo
    (0x3130, 0x318F),  # compatibility jamo
    (0xA960, 0xA97F),  # jamo extended A
    (0xAC00, 0xD7AF),  # syllables
    (0xD7B0, 0xD7FF),  # jamo extended B
    (0xFFA0, 0xFFDC),  # half-width jamo
)
_PUNCT_BLOCKS = (
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0x30FB, 0x30FB),  # ・ katakana middle dot
    (0xFE10, 0xFE1F),  # vertical forms
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0xFF00, 0xFFEF),  # half-width and full-width forms
)


def _char_class(*tables: tuple[tuple[int, int], ...]) -> str:
    return "[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for t in tables for a, b in t) + "]"


# The same classes as regular expressions, for search / findall over whole texts.
HAN_RE = re.compile(_char_class(_HAN))

# Where a caption may end a cue or a line: after these (Chinese and Latin).
CLAUSE_END = frozenset("，。！？；：、,.!?;:…—")
# Sentence marks a caption keeps at its end (a dropped ? changes the meaning); commas and
# full stops are dropped.
KEEP_AT_END = frozenset("！？!?…")
# Closing brackets and quotes: a line may break after them too.
CLOSING = frozenset(")）]】》」』”’")
# Opening brackets and quotes: they belong to the word after them.
OPENING = frozenset("\"'“‘(（[【《「『")


def _in(ch: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    o = ord(ch)
    return any(a <= o <= b for a, b in ranges)


def is_han(ch: str) -> bool:
    """A Chinese character (hanzi / kanji / hanja)."""
    return len(ch) == 1 and _in(ch, _HAN)


def is_kana(ch: str) -> bool:
    """A hiragana or katakana letter (not the ・ middle dot)."""
    return len(ch) == 1 and _in(ch, _KANA) and ch != "・" and ch != "゠"


def is_hangul(ch: str) -> bool:
    """A Korean syllable or jamo."""
    return len(ch) == 1 and _in(ch, _HANGUL)


def is_cjk_char(ch: str) -> bool:
    """A letter of East Asian writing: Han, kana or Hangul (not punctuation, not digits)."""
    return is_han(ch) or is_kana(ch) or is_hangul(ch)


def is_spaceless(ch: str) -> bool:
    """A letter of a script written without spaces between words: Han or kana (not Hangul)."""
    return is_han(ch) or is_kana(ch)


def is_cjk_punct(ch: str) -> bool:
    """Ideographic punctuation or a full-width symbol (，。「」！？￥); not full-width letters."""
    if len(ch) != 1 or not _in(ch, _PUNCT_BLOCKS) or is_han(ch):
        return False
    return unicodedata.category(ch)[0] in "PS"


def is_wide(ch: str) -> bool:
    """Whether a character takes a full em on screen (East Asian Width W or F)."""
    return len(ch) == 1 and unicodedata.east_asian_width(ch) in ("W", "F")


def has_cjk(text: str) -> bool:
    """Whether `text` has any Han, kana or Hangul letter."""
    return any(map(is_cjk_char, text))


def has_han(text: str) -> bool:
    """Whether `text` has any Chinese character."""
    return any(map(is_han, text))


def count_han(text: str) -> int:
    """How many Chinese characters `text` has."""
    return sum(map(is_han, text))


def _tight(ch: str) -> bool:
    """Whether no space goes on this side of `ch` when units are joined."""
    return is_spaceless(ch) or is_cjk_punct(ch)


def join_units(units: Iterable[str]) -> str:
    """Units (words, characters) back into display text.

    No space next to a Han/kana unit or CJK punctuation (你好，世界; 用iPhone拍), a space
    between other words (Latin, digits, Hangul words): Hello, world!
    """
    out = ""
    for u in units:
        if not u:
            continue
        if out and not (_tight(out[-1]) or _tight(u[0])):
            out += " "
        out += u
    return out


def close_gaps(text: str) -> str:
    """Drop single spaces between two Han/kana characters or CJK punctuation (你 好 -> 你好)."""
    out: list[str] = []
    for i, ch in enumerate(text):
        if (
            ch == " "
            and 0 < i < len(text) - 1
            and _tight(text[i - 1])
            and _tight(text[i + 1])
            and text[i - 1] != " "
        ):
            continue
        out.append(ch)
    return "".join(out)


# --- fonts ----------------------------------------------------------------------------------

# Families with Chinese glyphs, in order of preference; the first is the captions' default.
CJK_FONT_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
)
# Where a CJK font usually is when fontconfig is not installed (macOS, Windows, bare images).
_KNOWN_FONT_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)


@dataclass(frozen=True, slots=True)
class FontChoice:
    """The font family libass is told to use and the folder it is found in."""

    family: str
    directory: str | None


@functools.cache
def resolve_font(requested: str) -> FontChoice:
    """Find `requested` or, failing that, a font with Chinese glyphs (never a tofu-only font)."""
    for family in (requested, *CJK_FONT_FAMILIES):
        path = _fc_match(family)
        if path is not None:
            return FontChoice(family, os.path.dirname(path))
    path = _fc_match(":lang=zh")
    if path is not None:
        log.warning("font %r not found; using %s", requested, path)
        return FontChoice(requested, os.path.dirname(path))
    log.warning("no font with Chinese glyphs found: Chinese captions will not render")
    return FontChoice(requested, None)


@functools.cache
def font_file(requested: str = CJK_FONT_FAMILIES[0]) -> str | None:
    """A font file with Chinese glyphs for drawing with Pillow (contact sheets, benchmarks).

    `requested` if fontconfig has it, else a known CJK family, else any font fontconfig says
    covers Chinese, else a usual install path; None when there is none at all.
    """
    for family in (requested, *CJK_FONT_FAMILIES):
        path = _fc_match(family)
        if path is not None:
            return path
    return _fc_match(":lang=zh") or next((p for p in _KNOWN_FONT_FILES if os.path.isfile(p)), None)


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
    path = path.strip()
    if not path or not os.path.isfile(path):
        return None
    if pattern.startswith(":"):
        return path
    # fc-match always answers with *something*; accept it only if it is the family asked for.
    wanted = pattern.lower()
    if any(f.strip().lower() == wanted for f in families.split(",")):
        return path
    return None
