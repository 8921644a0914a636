"""pipeline.cjk: one table of which character is what, and the joining rule built on it."""

from __future__ import annotations

import os

import pytest

from pipeline import cjk

# char, han, kana, hangul, spaceless, cjk punctuation, wide
CASES = [
    ("中", True, False, False, True, False, True),  # unified ideograph
    ("㐀", True, False, False, True, False, True),  # extension A
    ("𠀀", True, False, False, True, False, True),  # extension B (outside the BMP)
    ("々", True, False, False, True, False, True),  # iteration mark: a letter, not punctuation
    ("〇", True, False, False, True, False, True),  # ideographic zero
    ("あ", False, True, False, True, False, True),  # hiragana
    ("カ", False, True, False, True, False, True),  # katakana
    ("ー", False, True, False, True, False, True),  # prolonged sound mark
    ("ｶ", False, True, False, True, False, False),  # half-width katakana: narrow
    ("한", False, False, True, False, False, True),  # Hangul syllable: CJK, written with spaces
    ("ᄀ", False, False, True, False, False, True),  # Hangul jamo
    ("，", False, False, False, False, True, True),  # full-width comma
    ("。", False, False, False, False, True, True),  # ideographic full stop
    ("「", False, False, False, False, True, True),  # corner bracket
    ("・", False, False, False, False, True, True),  # katakana middle dot: punctuation
    ("！", False, False, False, False, True, True),  # full-width exclamation mark
    ("￥", False, False, False, False, True, True),  # full-width yen sign (a symbol)
    ("Ａ", False, False, False, False, False, True),  # full-width Latin letter: wide, not punct
    ("１", False, False, False, False, False, True),  # full-width digit
    ("😀", False, False, False, False, False, True),  # emoji: wide, but no script
    ("a", False, False, False, False, False, False),
    ("Z", False, False, False, False, False, False),
    ("7", False, False, False, False, False, False),
    (",", False, False, False, False, False, False),  # ASCII punctuation is not CJK
    ("é", False, False, False, False, False, False),
    (" ", False, False, False, False, False, False),
    ("\u3000", False, False, False, False, False, True),  # ideographic space: space, not punct
]


@pytest.mark.parametrize(("ch", "han", "kana", "hangul", "spaceless", "punct", "wide"), CASES)
def test_character_classes(
    ch: str, han: bool, kana: bool, hangul: bool, spaceless: bool, punct: bool, wide: bool
) -> None:
    assert cjk.is_han(ch) is han
    assert cjk.is_kana(ch) is kana
    assert cjk.is_hangul(ch) is hangul
    assert cjk.is_cjk_char(ch) is (han or kana or hangul)
    assert cjk.is_spaceless(ch) is spaceless
    assert cjk.is_cjk_punct(ch) is punct
    assert cjk.is_wide(ch) is wide
    assert bool(cjk.HAN_RE.fullmatch(ch)) is han  # the regex is the same table


@pytest.mark.parametrize(
    ("text", "has_cjk", "has_han", "han"),
    [
        ("你好 world", True, True, 2),
        ("こんにちは", True, False, 0),
        ("안녕하세요", True, False, 0),
        ("日本語のテキスト", True, True, 3),
        ("Hello, world! 123", False, False, 0),
        ("，。！😀", False, False, 0),
        ("", False, False, 0),
    ],
)
def test_text_predicates(text: str, has_cjk: bool, has_han: bool, han: int) -> None:
    assert cjk.has_cjk(text) is has_cjk
    assert cjk.has_han(text) is has_han
    assert cjk.count_han(text) == han


@pytest.mark.parametrize(
    ("units", "text"),
    [
        (["你", "好，", "世", "界"], "你好，世界"),  # no space between Chinese units
        (["Hello,", "world!"], "Hello, world!"),  # a space between Latin words
        (["用", "iPhone", "拍"], "用iPhone拍"),  # none next to Chinese
        (["2024", "年", "3", "月"], "2024年3月"),
        (["今天", "。", "OK"], "今天。OK"),  # none after CJK punctuation
        (["OK", "「好」"], "OK「好」"),  # nor before it
        (["안녕", "하세요"], "안녕 하세요"),  # Korean keeps its spaces between words
        (["ひらがな", "と", "カタカナ"], "ひらがなとカタカナ"),
        (["3", "个"], "3个"),
        (["a", "", "b"], "a b"),  # an empty unit adds nothing
    ],
)
def test_join_units(units: list[str], text: str) -> None:
    assert cjk.join_units(units) == text


@pytest.mark.parametrize(
    ("raw", "closed"),
    [
        ("你 好 世界", "你好世界"),
        ("你好 ， 世界", "你好，世界"),
        ("用 iPhone 拍", "用 iPhone 拍"),  # spaces around Latin words are the writer's choice
        ("Hello world", "Hello world"),
        ("안녕 하세요", "안녕 하세요"),
    ],
)
def test_close_gaps(raw: str, closed: str) -> None:
    assert cjk.close_gaps(raw) == closed


def test_font_file_has_chinese_glyphs() -> None:
    from PIL import ImageFont

    path = cjk.font_file()
    if path is None:
        pytest.skip("no CJK font installed on this machine")
    assert os.path.isfile(path)
    font = ImageFont.truetype(path, 40)
    # A real glyph for 中 is wider than the font's .notdef box and differs from it.
    assert font.getmask("中").getbbox() != font.getmask("\uffff").getbbox()
    assert cjk.resolve_font("no such family at all").directory == os.path.dirname(
        cjk.font_file("no such family at all") or ""
    )
