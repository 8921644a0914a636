"""From one file's frames to scored, framed candidate moments (one pass of decoding per file).

Shots longer than `max_moment` are split where their look changes most (a small dynamic
programme over sampled features, pieces of 2-6 s), so a blurred start or a dark stretch becomes a
moment of its own and ranks low, while the steady part ranks high.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np
from pydantic import Base64Bytes

from pipeline.errors import Cancelled
from pipeline.footage import features as ft
from pipeline.footage.faces import FaceDetector, subject_box
from pipeline.footage.frames import iter_frames, read_photo
from pipeline.footage.heard import heard_between, listen
from pipeline.footage.model import Crop, ScoreParts, Shot
from pipeline.footage.reframe import frame_shot
from pipeline.footage.shots import CutDetector, DetectParams, shot_spans
from pipeline.media import MediaInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AnalysisParams:
    """Everything that changes the result of analysing one file (part of the cache key)."""

    width: int = 256  # width of the sampled frames that are measured, pixels
    detect_width: int = 128  # width of every frame for shot detection
    sample_fps: float = 5.0  # frames measured per second for features
    min_moment: float = 2.0
    max_moment: float = 6.0
    min_shot: float = 1.0  # shorter stretches (flashes, leftovers) are not offered
    photo_seconds: float = 3.0
    fast_decode: bool = True  # skip deblocking and non-reference frames (see frames.iter_frames)
    understand: bool = True  # subjects, people and screen text per moment (footage.understand)
    ocr_budget: float = 3.0  # seconds of OCR per file at most (keyframes past it get no text)
    detect: DetectParams = field(default_factory=DetectParams)


@dataclass(frozen=True, slots=True)
class Moment:
    """A shot of one file (source -1 until placed in a media list) and its look signature."""

    shot: Shot
    signature: tuple[float, ...]  # colour histogram + 8x8 grey thumbnail, for duplicates
    # The keyframe as analysed (JPEG, `AnalysisParams.width` wide); base64 in JSON.
    keyframe: Base64Bytes = b""
    # The keyframe's image features (see.subjects, float16 bytes; base64 in JSON), for the
    # summary's clusters; empty when understanding was off.
    features: Base64Bytes = b""


@dataclass(frozen=True, slots=True)
class FileResult:
    """One file's analysis, as cached."""

    moments: tuple[Moment, ...]
    cuts: tuple[float, ...]
    dissolves: tuple[float, ...]
    seconds: float


@dataclass(frozen=True, slots=True)
class _Sample:
    """A measured frame. Its pixels are kept as a JPEG (~10 KB instead of ~110 KB): a moment
    only looks at a few of its samples again, and a long video must not fill the memory."""

    stats: ft.FrameStats
    jpeg: bytes

    @staticmethod
    def of(stats: ft.FrameStats, bgr: np.ndarray) -> _Sample:
        return _Sample(stats, jpeg(bgr))

    @property
    def bgr(self) -> np.ndarray:
        img = cv2.imdecode(np.frombuffer(self.jpeg, np.uint8), cv2.IMREAD_COLOR)
        return np.asarray(img)


Progress = Callable[[float], None]


class CancelFlag(Protocol):
    """What analysis polls to stop early (`threading.Event` fits)."""

    def is_set(self) -> bool: ...


def jpeg(bgr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 BGR image
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def signature(bgr: np.ndarray) -> tuple[float, ...]:
    thumb = cv2.resize(ft.grey(bgr), (8, 8), interpolation=cv2.INTER_AREA).astype(np.float64)
    thumb = (thumb - thumb.mean()) / (thumb.std() + 1e-6) / 8.0
    return tuple(float(v) for v in np.concatenate([ft.colour_hist(bgr), thumb.ravel()]))


def analyze_file(
    info: MediaInfo,
    params: AnalysisParams,
    faces: FaceDetector,
    progress: Progress | None = None,
    cancel: CancelFlag | None = None,
) -> FileResult:
    """Decode once at low resolution, find shots, split and score moments, frame them."""
    t0 = time.perf_counter()
    if info.kind == "photo":
        moment = _photo_moment(info, params, faces)
        return FileResult(_understood((moment,), params), (), (), time.perf_counter() - t0)
    fps = info.fps or 25.0
    detector = CutDetector(fps, params.detect)
    samples: list[_Sample] = []
    prev_grey: np.ndarray | None = None
    n = 0
    indices: list[int] = []
    times: list[float] = []
    frames = iter_frames(
        info,
        params.detect_width,
        fast=params.fast_decode,
        sample_fps=params.sample_fps,
        detail_width=params.width,
    )
    for fr in frames:
        detector.push(fr.index, fr.bgr)
        indices.append(fr.index)
        times.append(fr.time)
        if fr.detail is not None:
            stats, prev_grey = ft.measure(fr.detail, fr.time, prev_grey)
            samples.append(_Sample.of(stats, fr.detail))
        n = fr.index + 1
        if len(times) % 30 == 0:
            if cancel is not None and cancel.is_set():
                raise Cancelled("footage analysis cancelled")
            if progress is not None and info.duration > 0:
                progress(min(0.99, fr.time / info.duration))
    bounds = detector.finish()
    end_time = times[-1] + 1.0 / fps if times else info.duration

    def at(i: int) -> float:
        """Time of frame i: that of the first decoded frame at or after it (exact for cuts)."""
        k = bisect.bisect_left(indices, i)
        return times[k] if k < len(times) else end_time

    moments: list[Moment] = []
    spans = shot_spans(n, bounds)
    if spans and all(at(b) - at(a) < params.min_shot for a, b, _ in spans):
        # A short clip or a quick GIF is still something the user sent: offer its longest part
        # (as a whole) rather than silently dropping the file.
        spans = [max(spans, key=lambda s: at(s[1]) - at(s[0]))]
        min_len = 0.0
    else:
        min_len = params.min_shot
    for a, b, how in spans:
        start, end = at(a), at(b)
        if end - start < min_len:
            continue
        inside = [s for s in samples if start <= s.stats.time < end]
        if not inside:
            # Shorter than the sampling step: measure the sample nearest to its start instead.
            near = min(samples, key=lambda s: abs(s.stats.time - start), default=None)
            if near is None or min_len > 0:
                continue
            inside = [near]
        for k, (i, j) in enumerate(split_points(inside, params)):
            piece = inside[i:j]
            p_start = start if i == 0 else piece[0].stats.time
            p_end = end if j == len(inside) else inside[j].stats.time
            cut_in = how if k == 0 else "split"
            moments.append(_video_moment(info, piece, p_start, p_end, cut_in, params, faces))
    if info.has_audio and moments:
        if cancel is not None and cancel.is_set():
            raise Cancelled("footage analysis cancelled")
        moments = _with_sound(info, moments)
    cuts = tuple(round(at(c), 4) for c in bounds.cuts)
    dissolves = tuple(round((at(x) + at(y)) / 2, 4) for x, y in bounds.dissolves)
    if cancel is not None and cancel.is_set():
        raise Cancelled("footage analysis cancelled")
    found = _understood(tuple(moments), params)
    return FileResult(found, cuts, dissolves, time.perf_counter() - t0)


def _understood(moments: tuple[Moment, ...], params: AnalysisParams) -> tuple[Moment, ...]:
    if not params.understand or not moments:
        return moments
    from pipeline.footage.understand import understand

    return understand(moments, params.ocr_budget)


def _with_sound(info: MediaInfo, moments: list[Moment]) -> list[Moment]:
    """Each moment's shot with what it sounds like: the file's audio decoded and tagged once."""
    t0 = time.perf_counter()
    sound = listen(info.path, info.duration)
    if sound is None:
        return moments
    log.info("%s: %.1fs of sound tagged in %.1fs", info.path, sound.heard_until,
             time.perf_counter() - t0)  # fmt: skip
    return [
        dataclasses.replace(m, shot=dataclasses.replace(
            m.shot, heard=heard_between(sound, m.shot.start, m.shot.end)))
        for m in moments
    ]  # fmt: skip


# --- splitting long shots -----------------------------------------------------------------------


def _quality_vector(s: ft.FrameStats, width: int) -> tuple[float, float, float]:
    shake = math.hypot(*s.shift) / max(width, 1)
    return (
        ft.sharpness_score(s.sharpness),
        ft.exposure_score(s.brightness, s.dark, s.bright),
        min(1.0, shake * 20.0),
    )


def split_points(samples: list[_Sample], params: AnalysisParams) -> list[tuple[int, int]]:
    """Cut a shot's samples into pieces of min..max moment length with the most uniform look."""
    n = len(samples)
    lo = max(1, math.ceil(params.min_moment * params.sample_fps))
    hi = max(lo, math.floor(params.max_moment * params.sample_fps))
    if n <= hi:
        return [(0, n)]
    feats = np.array([_quality_vector(s.stats, params.width) for s in samples])
    return segment(feats, lo, hi)


def segment(feats: np.ndarray, lo: int, hi: int, penalty: float = 0.05) -> list[tuple[int, int]]:
    """Optimal split of rows into runs of lo..hi rows minimising within-run variance.

    Dynamic programming over prefix sums: O(n * (hi - lo)). `penalty` per piece prefers fewer,
    longer moments where the look does not change.
    """
    n = len(feats)
    c1 = np.vstack([np.zeros(feats.shape[1]), np.cumsum(feats, axis=0)])
    c2 = np.vstack([np.zeros(feats.shape[1]), np.cumsum(feats**2, axis=0)])

    def cost(i: int, j: int) -> float:
        m = j - i
        s1 = c1[j] - c1[i]
        s2 = c2[j] - c2[i]
        return float((s2 - s1 * s1 / m).sum())

    best = np.full(n + 1, np.inf)
    prev = np.full(n + 1, -1, dtype=np.int64)
    best[0] = 0.0
    for j in range(lo, n + 1):
        for i in range(max(0, j - hi), j - lo + 1):
            if not math.isfinite(best[i]):
                continue
            v = best[i] + cost(i, j) + penalty
            if v < best[j]:
                best[j], prev[j] = v, i
    if not math.isfinite(best[n]):
        # Too short to split within bounds (sampling granularity): equal pieces instead.
        k = math.ceil(n / hi)
        edges = np.linspace(0, n, k + 1).round().astype(int)
        return [(int(edges[i]), int(edges[i + 1])) for i in range(k)]
    pieces = []
    j = n
    while j > 0:
        i = int(prev[j])
        pieces.append((i, j))
        j = i
    return pieces[::-1]


# --- scoring and framing ------------------------------------------------------------------------


def face_score(boxes_area: float, count: int) -> float:
    """0 without faces; a face that fills a good part of the frame is worth the most."""
    if count == 0:
        return 0.0
    return min(1.0, 0.5 + 2.0 * math.sqrt(boxes_area))


def combine(parts: ScoreParts) -> float:
    """The 0..1 quality score: exposure and sharpness gate it, the rest adds up.

    Multiplying by exposure and a sharpness floor means a black or smeared moment can never be
    rescued by colour or faces; the weights below reflect what viewers of shorts notice first.
    """
    body = (
        0.30 * parts.sharpness
        + 0.25 * parts.stability
        + 0.15 * parts.colour
        + 0.10 * parts.motion
        + 0.20 * parts.faces
    )
    gate = parts.exposure * (0.3 + 0.7 * parts.sharpness)
    return max(0.0, min(1.0, gate * (0.4 + 0.6 * body) * (1.0 - 0.7 * parts.duplicate)))


def _video_moment(
    info: MediaInfo,
    piece: list[_Sample],
    start: float,
    end: float,
    cut_in: str,
    params: AnalysisParams,
    faces: FaceDetector,
) -> Moment:
    sharp = [ft.sharpness_score(s.stats.sharpness) for s in piece]
    expo = [ft.exposure_score(s.stats.brightness, s.stats.dark, s.stats.bright) for s in piece]
    # The keyframe: the best-looking sample, nudged towards the middle of the moment.
    mid = (start + end) / 2
    span = max(end - start, 1e-3)
    pick = max(
        range(len(piece)),
        key=lambda k: sharp[k] * expo[k] * (1.0 - 0.3 * abs(piece[k].stats.time - mid) / span),
    )
    key = piece[pick]
    key_bgr = key.bgr
    boxes = faces.detect(key_bgr)
    subject = subject_box(boxes)
    parts = ScoreParts(
        sharpness=0.5 * sharp[pick] + 0.5 * float(np.median(sharp)),
        exposure=float(np.median(expo)),
        stability=ft.stability_score([s.stats.shift for s in piece[1:]], params.width),
        motion=ft.motion_interest(float(np.median([s.stats.motion for s in piece]))),
        colour=ft.colour_score(key.stats.colourfulness),
        faces=face_score(subject.area if subject else 0.0, len(boxes)),
        duplicate=0.0,
    )
    first, last = piece[0].bgr, piece[-1].bgr
    second = piece[1].bgr if len(piece) > 1 else None
    before_last = piece[-2].bgr if len(piece) > 1 else None
    sal0 = ft.salient_centre(_interest_map(first, second))
    sal1 = ft.salient_centre(_interest_map(last, before_last))
    # The window follows a face: where it is when the moment starts and when it ends. The
    # keyframe's face stands in when a face is not found again at either end.
    start_subject = end_subject = subject
    if subject is not None:
        start_subject = subject_box(faces.detect(first)) or subject
        end_subject = subject_box(faces.detect(last)) or subject
    crops: tuple[Crop, ...] = frame_shot(
        info.width, info.height, start_subject, sal0, end_subject, sal1
    )
    shot = Shot(
        source=-1,
        path=info.path,
        start=round(start, 4),
        end=round(end, 4),
        keyframe_time=round(key.stats.time, 4),
        score=round(combine(parts), 4),
        parts=parts,
        crops=crops,
        faces=len(boxes),
        kind="animation" if info.kind == "animation" else "video",
        cut_in=cut_in,  # type: ignore[arg-type]
    )
    return Moment(shot, signature(key_bgr), key.jpeg)


def _interest_map(bgr: np.ndarray, other: np.ndarray | None) -> np.ndarray:
    """Where the eye goes: spectral saliency, boosted where things move (against `other`)."""
    g = ft.grey(bgr)
    sal: np.ndarray = ft.spectral_saliency(g).astype(np.float64)
    if other is not None and other.shape == bgr.shape:
        change = cv2.absdiff(g, ft.grey(other)).astype(np.float32)
        diff = cv2.resize(change, (sal.shape[1], sal.shape[0]), interpolation=cv2.INTER_AREA)
        top = float(diff.max())
        if top > 8.0:  # below that it is sensor noise, not movement
            sal = (sal + diff / top).astype(np.float64)
    # Only the strongest part counts, so a busy background does not drag the centre to the middle.
    return np.where(sal >= np.quantile(sal, 0.9), sal, 0.0)


def _photo_moment(info: MediaInfo, params: AnalysisParams, faces: FaceDetector) -> Moment:
    bgr = read_photo(info, params.width)
    stats, _ = ft.measure(bgr, 0.0, None)
    boxes = faces.detect(bgr)
    subject = subject_box(boxes)
    parts = ScoreParts(
        sharpness=ft.sharpness_score(stats.sharpness),
        exposure=ft.exposure_score(stats.brightness, stats.dark, stats.bright),
        stability=1.0,
        motion=0.5,  # the Ken Burns move gives a photo some life, but less than real motion
        colour=ft.colour_score(stats.colourfulness),
        faces=face_score(subject.area if subject else 0.0, len(boxes)),
        duplicate=0.0,
    )
    sal = ft.salient_centre(_interest_map(bgr, None))
    h, w = bgr.shape[:2]
    shot = Shot(
        source=-1,
        path=info.path,
        start=0.0,
        end=params.photo_seconds,
        keyframe_time=0.0,
        score=round(combine(parts), 4),
        parts=parts,
        crops=frame_shot(w, h, subject, sal, photo=True),
        faces=len(boxes),
        kind="photo",
    )
    return Moment(shot, signature(bgr), jpeg(bgr))
