"""Video summary (视频摘要): an N-second highlight reel of representative, well-shot moments.

Moments are clustered by how they look (K-means over keyframe colour histograms), the best
moment of each cluster is kept, and the picks play in story order (file, then time). Building
the plan is pure (`summary_plan`); decoding keyframes and rendering are the CLI's I/O.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.errors import ReelbotError
from pipeline.footage.model import ASPECTS, Shot
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


def pick_moments(
    shots: Sequence[Shot], looks: np.ndarray, seconds: float, seed: int = 0
) -> list[SummaryPick]:
    """Best moment per look-cluster, in story order, with durations adding up to `seconds`."""
    usable = [i for i, s in enumerate(shots) if s.score > 0.05 and s.duration >= MIN_SEGMENT]
    if not usable:
        raise SummaryError("no usable moment in the footage for a summary")
    k = max(1, min(len(usable), round(seconds / SECONDS_PER_MOMENT)))
    while True:
        every = _best_per_cluster(shots, usable, kmeans(looks[usable], k, seed))
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
) -> tuple[EditPlan, list[SummaryPick]]:
    """The highlight reel's `EditPlan` (and the picks), without rendering anything."""
    picks = pick_moments(shots, looks, seconds, seed)
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
