"""Matching shots to script lines: pure functions, no models, Chinese and English."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.footage.match import assign_shots, grams, ngram_similarity, rank_shots
from pipeline.footage.model import ScoreParts, Shot
from pipeline.footage.reframe import frame_shot

PARTS = ScoreParts(1.0, 1.0, 1.0, 0.5, 0.5, 0.0, 0.0)
CROPS = frame_shot(1920, 1080, None, (0.5, 0.5))


def shot(source: int, start: float, score: float, text: str = "") -> Shot:
    return Shot(source, f"f{source}.mp4", start, start + 3.0, start + 1.5, score, PARTS, CROPS,
                text=text)  # fmt: skip


def test_grams_split_chinese_into_characters_and_pairs() -> None:
    g = grams("小猫喝咖啡")
    assert g["猫"] == 1 and g["咖啡"] == 1 and g["小猫"] == 1
    e = grams("Cats love coffee!")
    assert e["w:coffee"] == 1 and " ca" in e and "!" not in e


def test_ngram_similarity_prefers_the_matching_text() -> None:
    sim = ngram_similarity(["我家的猫很可爱", "morning coffee ritual"],
                           ["一只猫在睡觉", "a cup of coffee", ""])  # fmt: skip
    assert sim[0].argmax() == 0 and sim[1].argmax() == 1
    assert sim[0, 2] == 0.0 and sim[1, 2] == 0.0


def test_captioned_clip_goes_under_the_line_that_mentions_it_en() -> None:
    shots = [shot(0, 0, 0.9), shot(1, 0, 0.6, "our dog running on the beach"), shot(2, 0, 0.8)]
    lines = ["Welcome to my weekend.", "Then the dog ran along the beach!", "See you next time."]
    picks = assign_shots(lines, shots)
    assert picks[1] == 1
    assert len(set(picks)) == 3  # no repeats while unused footage remains


def test_captioned_clip_goes_under_the_line_that_mentions_it_zh() -> None:
    shots = [
        shot(0, 0, 0.9, "西湖日落"),
        shot(1, 0, 0.7, "早餐：小笼包"),
        shot(2, 0, 0.8, "地铁站"),
    ]
    lines = ["今天带大家逛杭州", "先吃一笼小笼包", "傍晚去西湖看日落"]
    picks = assign_shots(lines, shots)
    assert picks[1] == 1 and picks[2] == 0
    ranked = rank_shots(lines, shots)
    assert ranked[2][0][0] == 0 and ranked[1][0][0] == 1


def test_lines_without_matches_take_good_footage_in_natural_order() -> None:
    shots = [shot(0, 0, 0.9), shot(0, 3, 0.1), shot(0, 6, 0.8), shot(1, 0, 0.7)]
    picks = assign_shots(["one", "two", "three"], shots)
    assert picks == [0, 2, 3]  # the weak moment (score 0.1) is skipped, order kept


def test_repeats_only_after_all_footage_is_used() -> None:
    shots = [shot(0, 0, 0.9), shot(1, 0, 0.5)]
    picks = assign_shots(["a", "b", "c", "d"], shots)
    assert sorted(picks[:2]) == [0, 1]
    assert set(picks) == {0, 1}


def test_quality_breaks_ties_between_equally_matching_shots() -> None:
    shots = [shot(0, 0, 0.3, "beach"), shot(1, 0, 0.9, "beach")]
    ranked = rank_shots(["the beach"], shots)
    assert [i for i, _ in ranked[0]] == [1, 0]


def test_embedder_adds_meaning_beyond_shared_characters() -> None:
    # A stand-in embedder that knows "puppy" and "dog" mean the same thing.
    vocab = {"puppy": 0, "dog": 0, "car": 1, "street": 1}

    def embed(texts: list[str] | tuple[str, ...]) -> np.ndarray:
        out = np.zeros((len(texts), 3))
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, vocab.get(w.strip(".!"), 2)] += 1
        return out

    shots = [shot(0, 0, 0.8, "red car on the street"), shot(1, 0, 0.8, "my puppy")]
    assert assign_shots(["Look at this dog!"], shots)[0] in (0, 1)
    assert assign_shots(["Look at this dog!"], shots, embed=embed)[0] == 1


def test_assign_needs_shots() -> None:
    with pytest.raises(ValueError):
        assign_shots(["x"], [])


def test_a_line_naming_a_used_shot_gets_fresh_footage_first() -> None:
    shots = [shot(0, 0, 0.9, "the beach"), shot(1, 0, 0.8), shot(2, 0, 0.7)]
    picks = assign_shots(["the beach at dawn", "the beach at dusk", "bye"], shots)
    assert picks[0] == 0
    assert len(set(picks)) == 3
