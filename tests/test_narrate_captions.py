"""Caption cues from word timings: sizes, breaks, timing and presets (pure, zh and en)."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline.cjk import is_cjk_char
from pipeline.narrate.align import split_units
from pipeline.narrate.cues import PRESETS, build_cues, caption_style, split_phrases
from pipeline.plan import WordTiming


def _timed(sentences: list[str], per_unit: float = 0.25, pause: float = 0.4):  # type: ignore[no-untyped-def]
    words: list[WordTiming] = []
    spans: list[tuple[float, float]] = []
    t = 0.0
    for s in sentences:
        start = t
        for u in split_units(s):
            words.append(WordTiming(u, t, t + per_unit * 0.9))
            t += per_unit
        spans.append((start, t))
        t += pause
    return words, spans


ZH = [
    "很多人每天都在喝咖啡，却从来没有想过为什么新鲜烘焙的豆子味道完全不一样。",
    "关注我！",
]
EN = [
    "Most people drink coffee every single day without ever asking why freshly roasted "
    "beans taste so different, and the answer is simple.",
    "Follow for more!",
]


def _check_common(cues, words, spans) -> None:  # type: ignore[no-untyped-def]
    prev_end = 0.0
    for c in cues:
        assert prev_end <= c.start < c.end
        assert c.start == c.words[0].start  # shown exactly from its first word
        assert c.end >= c.words[-1].end
        prev_end = c.end
        # a cue never spans two sentences
        assert any(a - 1e-9 <= c.words[0].start and c.words[-1].end <= b + 1e-9 for a, b in spans)
    assert sum(len(c.words) for c in cues) == len(words)


def test_chinese_cues_are_short_and_break_at_punctuation() -> None:
    words, spans = _timed(ZH)
    cues = build_cues(words, spans, "zh")
    _check_common(cues, words, spans)
    for c in cues:
        assert sum(1 for ch in c.text if is_cjk_char(ch)) <= 16
        assert c.text == "".join(w.text for w in c.words)
    assert cues[0].text == "很多人每天都在喝咖啡"  # the comma is the first break, and is dropped
    assert cues[-1].text == "关注我！"  # ! and ? stay
    assert "".join(c.text for c in cues).replace("，", "") == "".join(ZH).replace("，", "").replace(
        "。", ""
    )


def test_english_cues_hold_at_most_seven_whole_words() -> None:
    words, spans = _timed(EN)
    cues = build_cues(words, spans, "en")
    _check_common(cues, words, spans)
    script_words = " ".join(EN).replace(",", "").replace(".", "").split()
    assert " ".join(c.text for c in cues).replace(",", "").replace(".", "").split() == script_words
    for c in cues:
        assert len(c.text.split()) <= 7
    # phrase breaks: after the comma, and before a preposition or conjunction where it can
    assert any(c.text.endswith("different") for c in cues)
    starts = {c.text.split()[0] for c in cues[1:]}
    assert starts & {"without", "why", "and", "beans"}


def test_small_gaps_are_bridged_and_short_cues_held() -> None:
    words = [WordTiming("one,", 0.0, 0.3), WordTiming("two", 0.4, 0.6),
             WordTiming("three", 2.0, 2.2)]  # fmt: skip
    spans = [(0.0, 0.6), (2.0, 2.2)]
    cues = split_phrases(words[:2], cjk=False, max_words=1)
    assert [[w.text for w in c] for c in cues] == [["one,"], ["two"]]
    built = build_cues(words, spans, "en", max_words=1, bridge=0.3, min_show=0.6)
    assert [c.text for c in built] == ["one", "two", "three"]
    assert built[0].end == pytest.approx(0.4)  # 0.1 s gap bridged: no flicker
    assert built[1].end == pytest.approx(1.0)  # held to 0.6 s, into the silence
    assert built[2].end == pytest.approx(2.6)


def test_presets_and_karaoke_flag() -> None:
    assert set(PRESETS) == {"bold", "clean", "boxed"}
    assert caption_style("bold").karaoke is True
    assert caption_style("clean", karaoke=True).karaoke is True
    assert caption_style("boxed").box is True
    for style in PRESETS.values():
        assert style.margin_bottom >= 0.2  # clear of the platforms' bottom buttons
        assert dataclasses.replace(style).name == style.name
    with pytest.raises(KeyError):
        caption_style("neon")
