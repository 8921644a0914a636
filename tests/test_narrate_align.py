"""Mapping engine and whisper word times onto the script's own words (pure, no audio)."""

from __future__ import annotations

import itertools

import pytest

from pipeline.cjk import join_units
from pipeline.narrate.align import (
    align_words,
    split_units,
    tighten_ends,
    tighten_starts,
)
from pipeline.plan import WordTiming as W


def test_units_keep_punctuation_with_words() -> None:
    assert split_units("今天，“咖啡”好喝！", words=False) == [
        "今",
        "天，",
        "“咖",
        "啡”",
        "好",
        "喝！",
    ]
    assert split_units('It\'s 3.5 times "better" (really).') == [
        "It's", "3.5", "times", '"better"', "(really).",
    ]  # fmt: skip
    assert split_units("用 AI 做视频", words=False) == ["用", "AI", "做", "视", "频"]
    assert join_units(["Hello,", "world!"]) == "Hello, world!"
    assert join_units(["你", "好，", "世", "界"]) == "你好，世界"


def test_edge_words_merge_hanzi_into_words() -> None:
    heard = [W("今天", 0.0, 0.3), W("我们", 0.3, 0.6), W("喝", 0.6, 0.8), W("咖啡", 0.8, 1.2)]
    got = align_words("今天我们喝咖啡。", heard, 1.5, chinese="engine")
    assert got == (W("今天", 0.0, 0.3), W("我们", 0.3, 0.6), W("喝", 0.6, 0.8),
                   W("咖啡。", 0.8, 1.2))  # fmt: skip
    per_char = align_words("今天我们喝咖啡。", heard, 1.5, chinese="chars")
    assert [w.text for w in per_char] == ["今", "天", "我", "们", "喝", "咖", "啡。"]


def test_misheard_and_missing_words_are_interpolated_in_order() -> None:
    # whisper heard "three" for "3" and missed "really" entirely.
    heard = [W("it", 0.0, 0.2), W("is", 0.2, 0.4), W("three", 0.4, 0.7), W("times", 0.7, 1.0),
             W("better", 1.4, 1.8)]  # fmt: skip
    got = align_words("It is 3 times really better.", heard, 2.0)
    assert [w.text for w in got] == ["It", "is", "3", "times", "really", "better."]
    assert got[2] == W("3", 0.4, 0.7)
    assert got[4].start >= 1.0 and got[4].end <= 1.4  # fitted into the gap it was said in
    assert all(a.end <= b.start + 1e-9 for a, b in itertools.pairwise(got))


def test_no_timing_at_all_spreads_words_by_length() -> None:
    got = align_words("a bb cccc", [], 7.0)
    assert [(w.start, w.end) for w in got] == [(0.0, 1.0), (1.0, 3.0), (3.0, 7.0)]


def test_tighten_ends_drops_trailing_silence() -> None:
    import numpy as np

    rate = 1000
    samples = np.zeros(2000, dtype=np.float32)
    samples[0:500] = 0.5  # sound for 0.5 s, then silence
    got = tighten_ends(samples, rate, [W("word", 0.0, 1.8)])
    assert 0.5 <= got[0].end <= 0.56


def test_tighten_starts_moves_a_start_out_of_silence() -> None:
    import numpy as np

    rate = 1000
    samples = np.zeros(3000, dtype=np.float32)
    samples[0:800] = 0.5  # a word, a pause from 0.8 s, the next word from 1.5 s
    samples[1500:2400] = 0.5
    words = [W("time,", 0.0, 0.8), W("and", 0.8, 2.4), W("hush", 2.5, 2.9)]
    got = tighten_starts(samples, rate, words)
    assert got[0] == words[0]  # already starts on sound
    assert 1.48 <= got[1].start <= 1.5 and got[1].end == 2.4  # whisper's pause moved off it
    assert got[2] == words[2]  # nothing audible inside: left as it was
    # Whisper starting "and" inside the word before it: the pause inside its span says where
    # it really begins; a stop consonant's short closure (50 ms) is not a pause.
    inside = tighten_starts(samples, rate, [W("and", 0.5, 2.4)])
    assert 1.48 <= inside[0].start <= 1.5
    samples[2000:2050] = 0.0
    closure = tighten_starts(samples, rate, [W("little", 1.5, 2.4)])
    assert closure[0].start == 1.5


def test_units_sharing_one_engine_word_split_its_time() -> None:
    heard = [W("2024年", 0.0, 0.9), W("我们", 1.0, 1.4)]
    got = align_words("2024年我们", heard, 1.5, chinese="engine")
    assert [w.text for w in got] == ["2024", "年", "我们"]
    assert got[0] == W("2024", 0.0, 0.72)
    assert got[1].start == 0.72 and abs(got[1].end - 0.9) < 1e-9
    per_char = align_words("今天", [W("今天", 0.0, 0.4)], 0.5, chinese="chars")
    assert per_char == (W("今", 0.0, 0.2), W("天", 0.2, 0.4))


@pytest.mark.slow
def test_chinese_words_from_jieba_for_character_timed_engines() -> None:
    pytest.importorskip("jieba")
    assert split_units("今天，“咖啡”好喝！") == ["今天，", "“咖啡”", "好喝！"]
    assert split_units("用 AI 做视频，2024年") == ["用", "AI", "做", "视频，", "2024", "年"]
    # espeak-ng times each character: the word gets its first character's start, last's end.
    heard = [W(c, 0.1 * i, 0.1 * i + 0.1) for i, c in enumerate("我们喝咖啡")]
    got = align_words("我们喝咖啡。", heard, 0.6, chinese="words")
    assert [w.text for w in got] == ["我们", "喝咖啡。"]
    assert got[0].start == 0.0 and abs(got[0].end - 0.2) < 1e-9
    assert abs(got[1].start - 0.2) < 1e-9 and abs(got[1].end - 0.5) < 1e-9
