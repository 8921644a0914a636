"""Footage understanding, end to end: media list in, `Analysis` (scored, framed shots) out.

Per file: the cached result, or one low-resolution decode (`moments.analyse_file`). Across
files: near-duplicate suppression (a second take of the same view ranks below the best one) and
text: the user's caption plus whatever is said inside each shot.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from pipeline.errors import ReelbotError
from pipeline.footage.cache import AnalysisCache, cache_key
from pipeline.footage.faces import FaceDetector, default_detector
from pipeline.footage.features import HIST_BINS
from pipeline.footage.model import Analysis, FileAnalysis, Shot, rounded
from pipeline.footage.moments import AnalysisParams, FileResult, analyse_file, combine
from pipeline.media import MediaInfo

log = logging.getLogger(__name__)

_HIST_LEN = HIST_BINS[0] * HIST_BINS[1] * HIST_BINS[2]
# Above this look-alike similarity (0..1) the lower-scored moment is penalised as a duplicate.
DUPLICATE_FROM = 0.80


class SpokenWordLike(Protocol):
    """What analysis reads of a transcribed word (pipeline.speech.SpokenWord fits)."""

    @property
    def text(self) -> str: ...
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...


class TranscriptLike(Protocol):
    """What analysis reads of a transcript (pipeline.speech.Transcript fits)."""

    @property
    def words(self) -> Sequence[SpokenWordLike]: ...


Transcriber = Callable[[str], TranscriptLike]
ProgressFn = Callable[[float], None]


def analyze(
    media: Sequence[MediaInfo],
    captions: Sequence[str] = (),
    *,
    transcriber: Transcriber | None = None,
    progress: ProgressFn | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    params: AnalysisParams | None = None,
    faces: FaceDetector | None = None,
    cancel: threading.Event | None = None,
) -> Analysis:
    """Find, score and frame the usable moments of every file; `captions[i]` goes with media[i].

    `transcriber(path)` (e.g. `pipeline.speech.Transcriber().transcribe`) is called for videos
    with sound, and the words spoken inside each shot are added to its text. Setting `cancel`
    stops the work within a few frames and raises `Cancelled`.
    """
    params = params or AnalysisParams()
    detector = faces or default_detector()
    cache = AnalysisCache(cache_dir) if use_cache else None
    total = sum(max(m.duration, 0.5) for m in media) or 1.0
    done = 0.0
    results: list[tuple[FileResult, bool]] = []
    for info in media:
        weight = max(info.duration, 0.5) / total

        def sub(frac: float, base: float = done, weight: float = weight) -> None:
            if progress is not None:
                progress(min(1.0, base + frac * weight))

        key = cache_key(info.path, params, detector.name) if cache else None
        result = cache.get(key) if cache is not None and key is not None else None
        hit = result is not None
        if result is None:
            result = analyse_file(info, params, detector, sub, cancel)
            if cache is not None and key is not None:
                cache.put(key, result)
        log.info(
            "%s: %d moments, %d cuts%s",
            info.path,
            len(result.moments),
            len(result.cuts),
            " (cached)" if hit else f" in {result.seconds:.1f}s",
        )
        results.append((result, hit))
        done += weight
        sub(0.0, done, 0.0)

    shots: list[Shot] = []
    sigs: list[tuple[float, ...]] = []
    for i, (result, _) in enumerate(results):
        caption = captions[i].strip() if i < len(captions) else ""
        words = _words(media[i], transcriber)
        for m in result.moments:
            text = join_text([caption, spoken_between(words, m.shot.start, m.shot.end)])
            # The path too: a cached result may come from the same content under another name.
            shots.append(dataclasses.replace(m.shot, source=i, path=media[i].path, text=text))
            sigs.append(m.signature)
    shots = [rounded(s) for s in suppress_duplicates(shots, sigs)]
    files = tuple(
        FileAnalysis(
            path=info.path,
            cuts=res.cuts,
            dissolves=res.dissolves,
            shots=len(res.moments),
            from_cache=hit,
            seconds=0.0 if hit else res.seconds,
        )
        for info, (res, hit) in zip(media, results, strict=True)
    )
    if progress is not None:
        progress(1.0)
    return Analysis(tuple(shots), files)


def _words(info: MediaInfo, transcriber: Transcriber | None) -> list[SpokenWordLike]:
    if transcriber is None or info.kind != "video" or not info.has_audio:
        return []
    try:
        return list(transcriber(info.path).words)
    except ReelbotError as exc:
        # Speech only adds text; a file whose sound cannot be transcribed is still footage.
        log.warning("no transcript for %s: %s", info.path, exc.message)
        return []


def spoken_between(words: Sequence[SpokenWordLike], start: float, end: float) -> str:
    """The words whose middle falls inside [start, end), joined as the language writes them."""
    inside = [w.text.strip() for w in words if start <= (w.start + w.end) / 2 < end]
    return join_words([w for w in inside if w])


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return 0x3000 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0xFF00 <= o <= 0xFFEF


def join_words(words: Sequence[str]) -> str:
    """Join tokens with spaces, except between Chinese/Japanese characters, which take none."""
    out = ""
    for w in words:
        if out and not (_is_cjk(out[-1]) and _is_cjk(w[0])):
            out += " "
        out += w
    return out


def join_text(parts: Sequence[str]) -> str:
    return " · ".join(p for p in parts if p)


def similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """How alike two moments look (0..1): colour histograms and grey layout must both agree."""
    va, vb = np.asarray(a), np.asarray(b)
    colour = float(np.minimum(va[:_HIST_LEN], vb[:_HIST_LEN]).sum())
    ta, tb = va[_HIST_LEN:], vb[_HIST_LEN:]
    layout = float(np.dot(ta, tb))  # both are z-scored / 8: a correlation in -1..1
    return max(0.0, min(colour, layout))


def suppress_duplicates(shots: list[Shot], sigs: list[tuple[float, ...]]) -> list[Shot]:
    """Penalise each moment that looks like a better one: the best take keeps its score."""
    order = sorted(range(len(shots)), key=lambda i: -shots[i].score)
    kept: list[int] = []
    out = list(shots)
    for i in order:
        sim = max((similarity(sigs[i], sigs[k]) for k in kept), default=0.0)
        kept.append(i)
        if sim <= DUPLICATE_FROM:
            continue
        penalty = (sim - DUPLICATE_FROM) / (1.0 - DUPLICATE_FROM)
        parts = dataclasses.replace(shots[i].parts, duplicate=round(penalty, 4))
        out[i] = dataclasses.replace(shots[i], parts=parts, score=round(combine(parts), 4))
    return out
