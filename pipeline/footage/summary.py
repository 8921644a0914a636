"""Video summary (视频摘要): an N-second highlight reel of representative, well-shot moments.

Moments are grouped by what they show: the classifier's image features of each keyframe
(`see.subjects`, kept by analysis), plus people and screen text. Frames of one scene sit within
~0.15 cosine distance of each other whatever the zoom or pan, different scenes 0.6 apart or more,
so moments closer than `SAME_SCENE` are one scene (average linkage): a static camera filmed for
a minute is one scene, not fifteen, and each distinct scene gets its share of the reel. The best
moment of each scene plays, in story order (file, then time). Without features (understanding
off) the keyframes' colour histograms are clustered with k-means, as before. Building the plan
is pure (`summary_plan`); decoding keyframes and rendering are the CLI's I/O.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.errors import ReelbotError
from pipeline.footage.model import ASPECTS, Analysis, Shot
from pipeline.media import MediaInfo
from pipeline.plan import AudioTrack, EditPlan, OutputSpec, Segment

log = logging.getLogger(__name__)

SECONDS_PER_MOMENT = 3.0
WEAK_CLUSTER = 0.5  # of the best cluster's score
MIN_SEGMENT = 1.0


class SummaryError(ReelbotError):
    """No usable moment to build a summary from."""

    key = "summary_no_moments"


@dataclass(frozen=True, slots=True)
class SummaryPick:
    """A chosen moment: which shot, its cluster, and the part of it that plays."""

    shot: int
    cluster: int
    start: float
    end: float


def kmeans(data: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Cluster labels for the rows of `data` (scipy's k-means++; deterministic for a seed)."""
    from scipy.cluster.vq import kmeans2

    k = max(1, min(k, len(data)))
    if k == 1:
        return np.zeros(len(data), dtype=int)
    _, labels = kmeans2(data.astype(np.float64), k, minit="++", seed=seed)
    return np.asarray(labels, dtype=int)


SAME_SCENE = 0.35  # cosine distance of meaning vectors below which two moments are one scene
_EXTRA_WEIGHT = 0.3  # people and screen text next to the unit-length image features


def meaning_vectors(shots: Sequence[Shot], features: Sequence[Sequence[float]]) -> np.ndarray:
    """Per shot: its image features, plus how many people and whether text is on screen."""
    feats = np.asarray(features, dtype=np.float64)
    extra = np.array(
        [
            [min(s.seen.people, 3) / 3 * _EXTRA_WEIGHT, _EXTRA_WEIGHT * bool(s.seen.text)]
            for s in shots
        ]
    ).reshape(len(shots), 2)
    return np.hstack([feats, extra])


def looks_for(analysis: Analysis, media: Sequence[MediaInfo]) -> tuple[np.ndarray, bool]:
    """What to cluster, and whether it is by meaning: the shots' `meaning_vectors` when analysis
    kept their image features, else their keyframes' colour histograms (decoded again)."""
    if analysis.features and len(analysis.features) == len(analysis.shots):
        return meaning_vectors(analysis.shots, analysis.features), True
    from pipeline.footage.features import colour_hist
    from pipeline.footage.frames import frame_at

    hists = [colour_hist(frame_at(media[s.source], s.keyframe_time, 160)) for s in analysis.shots]
    return np.stack(hists), False


def scenes(vectors: np.ndarray, k: int) -> np.ndarray:
    """Scene labels: moments within `SAME_SCENE` of each other (average linkage, cosine),
    at most `k` scenes (the closest merged first when there are more)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    if len(vectors) < 2:
        return np.zeros(len(vectors), dtype=int)
    tree = linkage(vectors, method="average", metric="cosine")
    labels = fcluster(tree, SAME_SCENE, criterion="distance")
    if labels.max() > k:
        labels = fcluster(tree, k, criterion="maxclust")
    return np.asarray(labels, dtype=int) - 1


def pick_moments(
    shots: Sequence[Shot],
    looks: np.ndarray,
    seconds: float,
    seed: int = 0,
    *,
    by_meaning: bool = False,
) -> list[SummaryPick]:
    """Best moment per cluster, in story order, with durations adding up to `seconds`.

    `looks` are colour histograms (k-means), or with `by_meaning` the `meaning_vectors`
    (scenes by distance; a scene is split only when the reel cannot be filled otherwise).
    """
    usable = [i for i, s in enumerate(shots) if s.score > 0.05 and s.duration >= MIN_SEGMENT]
    if not usable:
        raise SummaryError("no usable moment in the footage for a summary")
    k = max(1, min(len(usable), round(seconds / SECONDS_PER_MOMENT)))
    if by_meaning:
        k = min(k, int(scenes(looks[usable], k).max()) + 1)
    while True:
        if by_meaning:
            labels = scenes(looks[usable], k)
            if int(labels.max()) + 1 < k:  # the distance cut gave fewer: force k clusters
                from scipy.cluster.hierarchy import fcluster, linkage

                tree = linkage(looks[usable], method="average", metric="cosine")
                labels = np.asarray(fcluster(tree, k, criterion="maxclust"), dtype=int) - 1
        else:
            labels = kmeans(looks[usable], k, seed)
        every = _best_per_cluster(shots, usable, labels)
        # A look whose best moment is poor next to the others' is left out (its time goes to
        # the rest, or to another cluster below): variety must not force a dull shot in.
        floor = WEAK_CLUSTER * max(shots[i].score for i in every.values())
        best = {lab: i for lab, i in every.items() if shots[i].score >= floor}
        room = sum(math.inf if shots[i].kind == "photo" else shots[i].duration
                   for i in best.values())  # fmt: skip
        # Short moments may not fill the reel: then more, finer clusters give more moments.
        if room >= seconds or k >= len(usable):
            break
        k += 1
    chosen = sorted(best.items(), key=lambda kv: (shots[kv[1]].source, shots[kv[1]].start))
    lengths = _share(seconds, [shots[i].duration if shots[i].kind != "photo" else math.inf
                               for _, i in chosen])  # fmt: skip
    picks = []
    for (lab, i), d in zip(chosen, lengths, strict=True):
        s = shots[i]
        if s.kind == "photo":
            picks.append(SummaryPick(i, lab, 0.0, d))
            continue
        # Centre the played part on the keyframe, the moment's best-looking instant.
        start = min(max(s.keyframe_time - d / 2, s.start), s.end - d)
        picks.append(SummaryPick(i, lab, round(start, 4), round(start + d, 4)))
    return picks


def _best_per_cluster(
    shots: Sequence[Shot], usable: list[int], labels: np.ndarray
) -> dict[int, int]:
    best: dict[int, int] = {}
    for idx, lab in zip(usable, labels, strict=True):
        key = int(lab)
        if key not in best or shots[idx].score > shots[best[key]].score:
            best[key] = idx
    return best


def _share(total: float, caps: list[float]) -> list[float]:
    """Split `total` seconds evenly, giving what a short moment cannot use to the others."""
    out = [0.0] * len(caps)
    left = total
    open_ = list(range(len(caps)))
    while open_ and left > 1e-6:
        each = left / len(open_)
        nxt = []
        for i in open_:
            take = min(each, caps[i] - out[i])
            out[i] += take
            left -= take
            if caps[i] - out[i] > 1e-6:
                nxt.append(i)
        if len(nxt) == len(open_):
            break
        open_ = nxt
    return out


def aspect_for(width: int, height: int) -> str:
    """The analysed aspect nearest the output's."""
    ratios = {a: int(a.split(":")[0]) / int(a.split(":")[1]) for a in ASPECTS}
    return min(ASPECTS, key=lambda a: abs(math.log(ratios[a] * height / width)))


def summary_plan(
    shots: Sequence[Shot],
    media: Sequence[MediaInfo],
    looks: np.ndarray,
    seconds: float,
    *,
    size: tuple[int, int] = (1080, 1920),
    music: str | None = None,
    seed: int = 0,
    by_meaning: bool = False,
) -> tuple[EditPlan, list[SummaryPick]]:
    """The highlight reel's `EditPlan` (and the picks), without rendering anything; `looks`
    as `pick_moments` takes them."""
    picks = pick_moments(shots, looks, seconds, seed, by_meaning=by_meaning)
    aspect = aspect_for(*size)
    segments = []
    for p in picks:
        s = shots[p.shot]
        segments.append(
            Segment(
                source=s.source,
                start=p.start,
                end=p.end,
                crop=s.crop(aspect),
                crop_end=s.crop_end(aspect),
                ease="smooth",
                volume=0.0 if music else 1.0,
            )
        )
    audio = (AudioTrack(music, "music", loop=True, duck=False),) if music else ()
    plan = EditPlan(
        sources=tuple(media),
        segments=tuple(segments),
        output=OutputSpec(width=size[0], height=size[1]),
        audio=audio,
        cover_time=0.0,
    )
    if sum(seg.duration for seg in segments) < seconds - 0.5:
        log.info("footage gives %.1fs of good moments, less than %.1fs", plan.duration, seconds)
    return plan, picks
