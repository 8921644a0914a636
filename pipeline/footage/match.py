"""Which shot goes under which script line: text similarity plus quality, diverse, in order.

Pure functions of strings and shots. A shot's text is everything known about it
(`Shot.document`): the user's caption, speech inside it, and what was seen (subjects in zh and
en, people, screen text). Similarity is TF-IDF cosine over character n-grams (Chinese has no
spaces to split words on, and character uni/bigrams match "猫" with "小猫" just as word trigrams
match "cats" with "cat"), maxed with a text embedder's (multilingual-e5 by default, passed in by
the caller) and image-text scores when such a model is configured.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from pipeline.cjk import is_cjk_char
from pipeline.footage.model import Shot

# texts -> one row per text (any dimension); rows are compared by cosine.
Embedder = Callable[[Sequence[str]], np.ndarray]

_WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]", re.IGNORECASE)
_PUNCT = set("，。！？、；：「」『』（）《》…—·,.!?;:'\"()[]{}<>-_/\\|@#$%^&*+=~`")
# How much the quality score counts next to text similarity when ranking (similarity 0..1).
QUALITY_WEIGHT = 0.25
# Below this similarity a line is taken to say nothing about any shot.
NO_MATCH = 0.05


def grams(text: str) -> Counter[str]:
    """Character n-grams of a text: CJK uni+bigrams; Latin words and their trigrams."""
    out: Counter[str] = Counter()
    run = ""  # consecutive CJK characters
    tokens = [*_WORD.findall(text.lower()), " "]
    for tok in tokens:
        # Han, kana and Hangul alike: character grams match without word segmentation.
        if len(tok) == 1 and is_cjk_char(tok):
            run += tok
            continue
        if run:
            out.update(run)
            out.update(run[i : i + 2] for i in range(len(run) - 1))
            run = ""
        if tok.isalnum():
            out[f"w:{tok}"] += 1
            padded = f" {tok} "
            out.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return Counter({g: c for g, c in out.items() if g not in _PUNCT})


def ngram_similarity(lines: Sequence[str], docs: Sequence[str]) -> np.ndarray:
    """TF-IDF cosine similarity (lines x docs) over `grams`; 0 where a text is empty."""
    bags_l = [grams(t) for t in lines]
    bags_d = [grams(t) for t in docs]
    df: Counter[str] = Counter()
    for bag in bags_l + bags_d:
        df.update(bag.keys())
    n = len(bags_l) + len(bags_d)

    def vec(bag: Counter[str]) -> dict[str, float]:
        v = {g: (1 + math.log(c)) * math.log((1 + n) / (1 + df[g])) for g, c in bag.items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {g: x / norm for g, x in v.items()}

    vl = [vec(b) for b in bags_l]
    vd = [vec(b) for b in bags_d]
    out = np.zeros((len(vl), len(vd)))
    for i, a in enumerate(vl):
        for j, b in enumerate(vd):
            small, big = (a, b) if len(a) < len(b) else (b, a)
            out[i, j] = sum(x * big.get(g, 0.0) for g, x in small.items())
    return out


def text_similarity(
    lines: Sequence[str],
    shots: Sequence[Shot],
    *,
    embed: Embedder | None = None,
    image_scores: np.ndarray | None = None,
) -> np.ndarray:
    """Similarity 0..1 of every line to every shot (lines x shots) from all text evidence.

    `image_scores` (lines x shots, 0..1) come from an image-text model when one is configured.
    """
    docs = [s.document() for s in shots]
    sim = ngram_similarity(lines, docs)
    if embed is not None:
        has_text = np.array([bool(d.strip()) for d in docs])
        if has_text.any() and lines:
            dense = np.zeros_like(sim)
            dense[:, has_text] = _dense(embed, list(lines), [d for d in docs if d.strip()])
            sim = np.maximum(sim, dense)
    if image_scores is not None:
        sim = np.maximum(sim, np.clip(image_scores, 0.0, 1.0))
    return sim


def _dense(embed: Embedder, lines: list[str], docs: list[str]) -> np.ndarray:
    """Embedding similarity on 0..1: the embedder's own calibration when it has one (E5's
    cosines crowd near 0.8), else the plain cosine clipped at 0."""
    calibrated = getattr(embed, "similarity", None)
    if calibrated is not None:
        return np.asarray(calibrated(lines, docs), dtype=np.float64)
    out: np.ndarray = np.clip(_unit(embed(lines)) @ _unit(embed(docs)).T, 0.0, 1.0)
    return out


def _unit(m: np.ndarray) -> np.ndarray:
    arr: np.ndarray = np.asarray(m, dtype=np.float64)
    out: np.ndarray = arr / np.maximum(np.linalg.norm(arr, axis=1, keepdims=True), 1e-12)
    return out


def rank_shots(
    lines: Sequence[str],
    shots: Sequence[Shot],
    *,
    embed: Embedder | None = None,
    image_scores: np.ndarray | None = None,
) -> list[list[tuple[int, float]]]:
    """Per line, every shot index with its combined value, best first.

    value = similarity + QUALITY_WEIGHT * quality score; ties go to the earlier shot.
    """
    if not shots:
        return [[] for _ in lines]
    sim = text_similarity(lines, shots, embed=embed, image_scores=image_scores)
    quality = np.array([s.score for s in shots])
    out = []
    for i in range(len(lines)):
        value = sim[i] + QUALITY_WEIGHT * quality
        order = sorted(range(len(shots)), key=lambda j: (-round(float(value[j]), 9), j))
        out.append([(j, float(value[j])) for j in order])
    return out


def assign_shots(
    lines: Sequence[str],
    shots: Sequence[Shot],
    *,
    embed: Embedder | None = None,
    image_scores: np.ndarray | None = None,
    good: float | None = None,
) -> list[int]:
    """One shot index per line.

    A line that names what a shot shows gets that shot. Other lines take the footage in its
    natural order (file, then time), skipping weak moments (score below `good`, by default the
    median). No shot is used twice while an unused good one remains; after that, unused weak
    ones; only then repeats, least-used first.
    """
    if not shots:
        raise ValueError("no shots to assign")
    sim = text_similarity(lines, shots, embed=embed, image_scores=image_scores)
    quality = np.array([s.score for s in shots])
    threshold = float(np.median(quality)) if good is None else good
    order = sorted(range(len(shots)), key=lambda j: (shots[j].source, shots[j].start))
    position = {j: k for k, j in enumerate(order)}
    used: Counter[int] = Counter()
    # Shots that some line names explicitly are saved for that line, not spent on filler.
    wanted = {int(np.argmax(sim[i])) for i in range(len(lines)) if sim[i].max() >= NO_MATCH}
    picks: list[int] = []
    last = -1
    for i in range(len(lines)):
        fresh = [j for j in range(len(shots)) if not used[j] and sim[i, j] >= NO_MATCH]
        good_left = any(not used[j] and quality[j] >= threshold for j in range(len(shots)))
        if fresh or (sim[i].max() >= NO_MATCH and not good_left):
            value = sim[i] + QUALITY_WEIGHT * quality
            pool = fresh or [j for j in range(len(shots)) if sim[i, j] >= NO_MATCH]
            pick = max(pool, key=lambda j: (value[j] - 0.01 * used[j], -position[j]))
        else:
            pick = _next_in_order(order, position, last, used, quality, threshold, wanted)
        picks.append(pick)
        used[pick] += 1
        last = position[pick]
    return picks


def _next_in_order(
    order: list[int],
    position: dict[int, int],
    last: int,
    used: Counter[int],
    quality: np.ndarray,
    threshold: float,
    wanted: set[int],
) -> int:
    n = len(order)
    after = [order[(last + 1 + k) % n] for k in range(n)]  # footage order, from where we are
    for accept in (
        lambda j: not used[j] and j not in wanted and quality[j] >= threshold,
        lambda j: not used[j] and j not in wanted,
        lambda j: not used[j],
    ):
        for j in after:
            if accept(j):
                return j
    fewest = min(used[j] for j in order)
    return max((j for j in order if used[j] == fewest), key=lambda j: (quality[j], -position[j]))
