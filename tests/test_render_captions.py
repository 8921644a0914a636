"""Caption wrapping, checked by decoding the ASS script the renderer writes.

Reliability row 16: two-line Chinese cues showed the word at the line break twice
("你真的了解猫咪为什么\\N为什么总盯着人看吗？"). These build cues the way a video does
(script sentence -> jieba units -> word timings -> `build_cues`), write the ASS, read every
Dialogue event back and check that the lines spell the cue's text exactly, each word once.
"""

from __future__ import annotations

import random
import re

import pytest

from pipeline.narrate.align import split_units
from pipeline.narrate.cues import build_cues, caption_style
from pipeline.plan import CaptionCue, CaptionStyle, EditPlan, OutputSpec, WordTiming
from pipeline.render.subtitles import build_ass, text_width, wrap

# Sentences from the videos where the bug was seen, and more of the same kind.
REAL = (
    "你真的了解猫咪为什么总盯着人看吗？",
    "第一点，给自己定一个看得见的小目标。",
    "你看过这部电影的预告片吗？大多数人只知道一半。",
    "记录过程才知道问题出在哪。",
    "今天教你三个拍视频的小技巧，第一个最重要。",
    "早上六点起床以后，我会先喝一杯温水再出门跑步。",
    "很多人以为咖啡豆越新鲜越好，其实烘焙后要等几天。",
    "用iPhone拍夜景的时候，记得打开夜间模式。",
)
_PUNCT = "，。！？、"


def _dialogues(ass: str) -> list[tuple[str, list[str], str]]:
    """(style, lines, highlighted text) of each event: override tags removed, \\N split."""
    out = []
    for row in ass.splitlines():
        if not row.startswith("Dialogue:"):
            continue
        fields = row.split(",", 9)
        text = fields[9]
        hi = re.findall(r"\{\\c&H0000D4FF\}(.*?)\{\\c", text)
        plain = re.sub(r"\{[^}]*\}", "", text)
        out.append((fields[3], plain.split("\\N"), "".join(hi)))
    return out


def _cues(sentence: str, style: str) -> tuple[CaptionCue, ...]:
    units = split_units(sentence)
    words = [WordTiming(u, i * 0.3, i * 0.3 + 0.25) for i, u in enumerate(units)]
    return build_cues(words, [(0.0, len(units) * 0.3)], "zh", style=style)


def _check(cues: tuple[CaptionCue, ...], style: CaptionStyle, width: int, height: int) -> int:
    """Decode the ASS for `cues`; return how many events were wrapped onto several lines."""
    plan = EditPlan(
        sources=(), segments=(), output=OutputSpec(width=width, height=height),
        captions=cues, styles=(style,),
    )  # fmt: skip
    events = _dialogues(build_ass(plan))
    per_cue = [len(c.words) for c in cues] if style.karaoke else [1] * len(cues)
    assert len(events) == sum(per_cue)
    wrapped = 0
    it = iter(events)
    max_em = width * (1 - 2 * style.margin_side) / (style.size * height) * 0.96
    for cue, n in zip(cues, per_cue, strict=True):
        for k in range(n):
            _, lines, hi = next(it)
            # The lines spell the cue exactly: nothing doubled at the break, nothing lost.
            assert "".join(lines) == cue.text, (lines, cue.text)
            assert all(line for line in lines)
            # Every word lies on one line, whole, and appears once in the event.
            for w in cue.words:
                assert sum(line.count(w.text) for line in lines) == "".join(lines).count(w.text)
                assert any(w.text in line for line in lines), (w.text, lines)
            if style.karaoke:
                assert hi == cue.words[k].text
            else:
                assert hi == ""
            for line in lines:  # within the width, unless a single word is wider on its own
                assert text_width(line) <= max_em or line in {w.text for w in cue.words}
            wrapped += len(lines) > 1
    return wrapped


@pytest.mark.parametrize("karaoke", [True, False], ids=["karaoke", "plain"])
def test_real_chinese_cues_never_repeat_the_word_at_the_break(karaoke: bool) -> None:
    style = caption_style("bold", karaoke=karaoke)
    cues = tuple(c for s in REAL for c in _cues(s, style.name))
    wrapped = _check(cues, style, 1080, 1920)
    assert wrapped >= 5  # the check above really looked at two-line cues


def _random_sentence(rng: random.Random, vocab: list[str]) -> str:
    parts = []
    for _ in range(rng.randint(1, 4)):
        parts.append("".join(rng.choice(vocab) for _ in range(rng.randint(3, 9))))
        parts.append(rng.choice(_PUNCT))
    return "".join(parts)


@pytest.mark.parametrize("karaoke", [True, False], ids=["karaoke", "plain"])
def test_random_chinese_cues_at_many_widths(karaoke: bool) -> None:
    rng = random.Random(16)
    vocab = sorted({u.strip(_PUNCT) for s in REAL for u in split_units(s)} - {""})
    wrapped = 0
    for _ in range(40):
        sentence = _random_sentence(rng, vocab)
        size = rng.choice((0.035, 0.045, 0.05, 0.065, 0.08))
        style = CaptionStyle(name="s", size=size, karaoke=karaoke)
        width, height = rng.choice(((1080, 1920), (720, 1280), (1080, 1080), (1920, 1080)))
        wrapped += _check(_cues(sentence, "s"), style, width, height)
    assert wrapped >= 20


def test_plain_text_wrap_keeps_every_character_once() -> None:
    rng = random.Random(7)
    vocab = sorted({u for s in REAL for u in split_units(s)})
    for _ in range(200):
        text = "".join(rng.choice(vocab) for _ in range(rng.randint(2, 14)))
        max_em = rng.uniform(3.0, 12.0)
        lines = wrap(text, max_em)
        assert "".join(lines) == text
        for ln in lines:  # wider than the limit only when it cannot be cut: one Latin word or
            # one character with its punctuation
            one_unit = (ln.isascii() and " " not in ln) or len(ln.rstrip(_PUNCT)) == 1
            assert text_width(ln) <= max_em or one_unit, (ln, max_em)
        assert not any(ln[0] in _PUNCT for ln in lines)  # punctuation stays with its word


def test_edited_caption_text_is_wrapped_on_its_own() -> None:
    # Words that no longer spell the text (an edited caption): plain events of the new text.
    words = (WordTiming("你好", 0.0, 0.5), WordTiming("世界", 0.5, 1.0))
    cue = CaptionCue("大家好，欢迎来到我的频道，今天聊聊咖啡", 0.0, 1.0, style="k", words=words)
    style = CaptionStyle(name="k", karaoke=True)
    plan = EditPlan(sources=(), segments=(), captions=(cue,), styles=(style,))
    [(_, lines, hi)] = _dialogues(build_ass(plan))
    assert "".join(lines) == cue.text and hi == ""
