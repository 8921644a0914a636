"""Text on screen, Chinese and English: PP-OCRv4 detection + recognition from
`rapidocr-onnxruntime` (Apache-2.0; models inside the wheel), on keyframes only.

OCR costs about a second or two per frame on this machine's CPU, so it is bounded twice: each frame
is brought down to `max_side` pixels before detection (captions and titles stay far above the
detector's minimum size at 960 px), and a call over many keyframes stops starting new frames once
its `budget_s` is spent, returning what it has and saying which frames it skipped. The
text-direction classifier is off: footage text is upright, and it costs a third model per line.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pipeline.loadonce import Loader

log = logging.getLogger(__name__)

DEFAULT_MAX_SIDE = 960
DEFAULT_BUDGET_S = 10.0
MIN_CONFIDENCE = 0.6
# Lines lower than this fraction of the frame's height are specks, watermarks' fine print or
# texture the detector took for text; captions and signs people care about are larger.
MIN_HEIGHT_FRACTION = 0.012

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True, slots=True)
class TextLine:
    """One line of text: where (fractions of the frame, axis-aligned) and how sure."""

    text: str
    x: float
    y: float
    w: float
    h: float
    confidence: float


@dataclass(frozen=True, slots=True)
class FrameText:
    """One keyframe's text lines, top to bottom; `skipped` when the time budget ran out first."""

    lines: tuple[TextLine, ...]
    skipped: bool = False

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


class _Engine:
    """RapidOCR behind a lock: one call at a time uses the cores fully; two would only contend."""

    def __init__(self) -> None:
        from rapidocr_onnxruntime import RapidOCR

        # det_limit_type "max": never upscale a frame for detection (the default "min" blows a
        # 540 x 960 frame's short side up to 736 and costs twice as much for no gain).
        # RapidOCR takes its settings as prefixed keywords (det_..., Global ones bare).
        self._ocr: Any = RapidOCR(use_cls=False, det_limit_type="max")
        det = self._ocr.text_det
        if det.limit_type != "max" or self._ocr.use_cls:
            raise RuntimeError("rapidocr ignored its settings; its keyword names have changed")
        self._lock = threading.Lock()

    def __call__(self, bgr: np.ndarray) -> list[Any]:
        with self._lock:
            result, _ = self._ocr(bgr, use_cls=False)
        return list(result or [])


def _engine() -> _Engine:
    return _ENGINE.get("rapidocr-ppocrv4")


def is_junk(text: str, confidence: float, min_confidence: float = MIN_CONFIDENCE) -> bool:
    """Whether a recognised line is noise, not words: unsure, punctuation, one letter, AAAA."""
    stripped = "".join(ch for ch in text if not ch.isspace())
    if confidence < min_confidence or not stripped:
        return True
    meaningful = [ch for ch in stripped if unicodedata.category(ch)[0] in "LN"]
    if not meaningful:
        return True  # only punctuation or symbols
    cjk = len(_CJK.findall(stripped))
    # One Chinese character can be a word (山, 猫); one Latin letter or digit is almost never text.
    if cjk == 0 and len(meaningful) < 2:
        return True
    # "IIIII", "-----", "00000": stripes, fences and tiles read as text.
    if len(stripped) >= 4 and len(set(stripped)) == 1:
        return True
    # Mostly symbols with a stray letter: the recogniser making words out of texture.
    return len(meaningful) / len(stripped) < 0.5


def read_text(
    bgr: np.ndarray,
    *,
    max_side: int = DEFAULT_MAX_SIDE,
    min_confidence: float = MIN_CONFIDENCE,
) -> tuple[TextLine, ...]:
    """The text lines in one BGR frame, top to bottom, junk removed."""
    h, w = bgr.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    small = bgr
    if scale < 1.0:
        small = cv2.resize(
            bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
    sh, sw = small.shape[:2]
    lines = []
    for points, text, score in _engine()(np.ascontiguousarray(small)):
        quad = np.asarray(points, dtype=np.float32)
        x0, y0 = (float(v) for v in quad.min(axis=0))
        x1, y1 = (float(v) for v in quad.max(axis=0))
        x0, y0, x1, y1 = max(0.0, x0), max(0.0, y0), min(float(sw), x1), min(float(sh), y1)
        text = str(text).strip()
        conf = float(score)
        if (y1 - y0) / sh < MIN_HEIGHT_FRACTION or is_junk(text, conf, min_confidence):
            continue
        lines.append(
            TextLine(
                text=text,
                x=x0 / sw,
                y=y0 / sh,
                w=(x1 - x0) / sw,
                h=(y1 - y0) / sh,
                confidence=round(conf, 4),
            )
        )
    lines.sort(key=lambda line: (round(line.y, 2), line.x))
    return tuple(lines)


def read_keyframes(
    frames: Sequence[np.ndarray],
    *,
    budget_s: float = DEFAULT_BUDGET_S,
    max_side: int = DEFAULT_MAX_SIDE,
    min_confidence: float = MIN_CONFIDENCE,
) -> list[FrameText]:
    """Text in each keyframe, in order; once `budget_s` has passed, the rest come back skipped.

    A frame already started always finishes (an ONNX run cannot be interrupted), so a call can
    overrun the budget by one frame's time: about 1-2 s at the default `max_side`.
    """
    start = time.monotonic()
    out: list[FrameText] = []
    for index, frame in enumerate(frames):
        if time.monotonic() - start >= budget_s:
            log.info(
                "OCR budget of %.1f s spent; %d keyframes skipped", budget_s, len(frames) - index
            )
            out.extend(FrameText(lines=(), skipped=True) for _ in frames[index:])
            break
        out.append(
            FrameText(lines=read_text(frame, max_side=max_side, min_confidence=min_confidence))
        )
    return out


_ENGINE: Loader[str, _Engine] = Loader("RapidOCR", lambda _name: _Engine())
