"""Footage understanding, end to end: media list in, `Analysis` (scored, framed shots) out.

Per file: the cached result, or one low-resolution decode (`moments.analyze_file`); files not
in the cache are analysed side by side (`workers`). Across files: near-duplicate suppression (a
second take of the same view ranks below the best one) and text: the user's caption plus
whatever is said inside each shot.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Protocol

import numpy as np

from pipeline.cjk import join_units
from pipeline.errors import Cancelled, MediaError, ReelbotError
from pipeline.footage.cache import AnalysisCache, cache_key
from pipeline.footage.faces import Box, FaceDetector, default_detector
from pipeline.footage.features import HIST_BINS
from pipeline.footage.model import Analysis, FileAnalysis, Shot, rounded
from pipeline.footage.moments import AnalysisParams, FileResult, analyze_file, combine
from pipeline.footage.understand import features_of
from pipeline.media import MediaInfo
from pipeline.settings import settings

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
    max_workers: int | None = None,
) -> Analysis:
    """Find, score and frame the usable moments of every file; `captions[i]` goes with media[i].

    `transcriber(path)` (e.g. `pipeline.speech.Transcriber().transcribe`) is called for videos
    with sound, and the words spoken inside each shot are added to its text. Setting `cancel`
    stops the work within a few frames and raises `Cancelled`. `max_workers` files are
    analysed at once (default: `REELBOT_ANALYSIS_WORKERS`, else up to 3).
    """
    params = params or AnalysisParams()
    detector = faces or default_detector()
    cache = AnalysisCache(cache_dir) if use_cache else None
    keys = [cache_key(info.path, params, detector.name) if cache else None for info in media]
    found: list[FileResult | None] = [
        cache.get(key) if cache is not None and key is not None else None for key in keys
    ]
    todo = [i for i, r in enumerate(found) if r is None]
    report = _Progress(media, progress)
    for i, r in enumerate(found):
        if r is not None:
            report.update(i, 1.0)
            log.info("%s: %d moments, %d cuts (cached)", media[i].path, len(r.moments), len(r.cuts))

    def keep(i: int, result: FileResult) -> None:
        # Cached as soon as it is done: a later file failing does not lose this one's work.
        key = keys[i]
        if cache is not None and key is not None:
            cache.put(key, result)

    pool_size = workers(len(todo), max_workers)
    computed, failures = _analyze_files(
        media, todo, params, detector, report, cancel, keep, pool_size
    )
    empty = FileResult(moments=(), cuts=(), dissolves=(), seconds=0.0)
    results = [
        (found[i] or computed.get(i, empty), found[i] is not None) for i in range(len(media))
    ]

    shots: list[Shot] = []
    sigs: list[tuple[float, ...]] = []
    keyframes: list[bytes] = []
    features: list[tuple[float, ...]] = []
    for i, (result, _) in enumerate(results):
        if i in failures:
            continue
        caption = captions[i].strip() if i < len(captions) else ""
        words = _words(media[i], transcriber)
        for m in result.moments:
            text = join_text([caption, spoken_between(words, m.shot.start, m.shot.end)])
            # The path too: a cached result may come from the same content under another name.
            shots.append(dataclasses.replace(m.shot, source=i, path=media[i].path, text=text))
            sigs.append(m.signature)
            keyframes.append(m.keyframe)
            features.append(features_of(m.features))
    shots = [rounded(s) for s in suppress_duplicates(shots, sigs)]
    files = tuple(
        FileAnalysis(
            path=info.path,
            cuts=res.cuts,
            dissolves=res.dissolves,
            shots=len(res.moments),
            from_cache=hit,
            seconds=0.0 if hit else res.seconds,
            failed=failures[i].reason if i in failures else "",
            message=failures[i].message if i in failures else "",
        )
        for i, (info, (res, hit)) in enumerate(zip(media, results, strict=True))
    )
    if progress is not None:
        progress(1.0)
    # Features only when every shot has them (a mix of cached-without and fresh cannot cluster).
    feats = tuple(features) if all(features) else ()
    return Analysis(tuple(shots), files, tuple(keyframes), feats)


def workers(files: int, wanted: int | None = None) -> int:
    """How many files to analyse at once: `wanted`, `REELBOT_ANALYSIS_WORKERS`, else up to 3.

    One file's decoding keeps ~1.6 of 2 cores busy while its Python side runs, so three files
    side by side fill them: 16.3 s -> 14.4 s (two) -> 13.7 s (three) for the benchmark's
    3 x 20 s of 1080p. More threads only add memory (each decoder holds its own frames).
    """
    if wanted is None:
        wanted = settings().analysis_workers
    if wanted is not None and wanted > 0:
        return max(1, min(files, wanted))
    return max(1, min(files, 3))


class _Progress:
    """Overall progress of files analysed side by side, each weighted by its duration."""

    def __init__(self, media: Sequence[MediaInfo], progress: ProgressFn | None) -> None:
        total = sum(max(m.duration, 0.5) for m in media) or 1.0
        self._weights = [max(m.duration, 0.5) / total for m in media]
        self._done = [0.0] * len(media)
        self._progress = progress
        self._lock = threading.Lock()

    def update(self, index: int, fraction: float) -> None:
        if self._progress is None:
            return
        with self._lock:  # one report at a time: the callback need not be thread-safe
            self._done[index] = max(self._done[index], min(fraction, 1.0))
            done = sum(w * d for w, d in zip(self._weights, self._done, strict=True))
            self._progress(min(1.0, done))


class _Stop:
    """Set when the caller cancels, or when a file failed unexpectedly (not a `MediaError`:
    something in the code, not the file), which is raised after the others stopped."""

    def __init__(self, cancel: threading.Event | None) -> None:
        self.cancel = cancel
        self.failed = threading.Event()

    def is_set(self) -> bool:
        return self.failed.is_set() or (self.cancel is not None and self.cancel.is_set())


class _LockedFaces:
    """A face detector shared by threads: detectors keep state (YuNet's input size)."""

    def __init__(self, inner: FaceDetector) -> None:
        self._inner = inner
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._inner.name

    def detect(self, bgr: np.ndarray) -> list[Box]:
        with self._lock:
            return self._inner.detect(bgr)


def _analyze_files(
    media: Sequence[MediaInfo],
    todo: Sequence[int],
    params: AnalysisParams,
    detector: FaceDetector,
    report: _Progress,
    cancel: threading.Event | None,
    keep: Callable[[int, FileResult], None],
    pool_size: int,
) -> tuple[dict[int, FileResult], dict[int, MediaError]]:
    """Analyse media[i] for each i in `todo`, several at once.

    A file that turns out unusable while it is decoded (a truncated JPEG, a picture over the
    cap, a decoder error: any `MediaError`, or an error a decoding library raises about the
    file) is left out and returned with its error; the others go on. Cancelling, running out
    of memory, or a bug (an error of our own code) stops all and is raised.
    """
    stop = _Stop(cancel)
    faces = _LockedFaces(detector)

    def one(i: int) -> FileResult:
        try:
            result = analyze_file(media[i], params, faces, lambda f: report.update(i, f), stop)
        except MediaError:
            raise  # this file only: the others go on
        except (ValueError, OSError, EOFError, SyntaxError) as exc:
            # What PIL, numpy and PyAV raise about a file's content (PyAV's errors are OSError).
            raise MediaError(media[i].path, "corrupt", f"{type(exc).__name__}: {exc}") from exc
        except BaseException:
            stop.failed.set()
            raise
        keep(i, result)
        report.update(i, 1.0)
        log.info("%s: %d moments, %d cuts in %.1fs", media[i].path, len(result.moments),
                 len(result.cuts), result.seconds)  # fmt: skip
        return result

    if not todo:
        return {}, {}
    with ThreadPoolExecutor(pool_size, thread_name_prefix="analyse") as pool:
        # Longest first, so a long file does not start last and run alone.
        order = sorted(todo, key=lambda i: -media[i].duration)
        futures = {i: pool.submit(one, i) for i in order}
        wait(futures.values())
    errors = {i: futures[i].exception() for i in todo if futures[i].exception() is not None}
    fatal = [e for e in errors.values() if not isinstance(e, MediaError)]
    first = next((e for e in fatal if not isinstance(e, Cancelled)), None) or next(
        iter(fatal), None
    )
    if first is not None:
        raise first
    failures = {i: e for i, e in errors.items() if isinstance(e, MediaError)}
    for i, exc in failures.items():
        log.warning("%s left out: %s", media[i].path, exc.message)
    return {i: futures[i].result() for i in todo if i not in failures}, failures


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
    # The captions' joining rule (pipeline.cjk): no space next to Han/kana or CJK punctuation,
    # so a transcript reads like the script it is matched against (我们去Paris吧).
    return join_units([w for w in inside if w])


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
