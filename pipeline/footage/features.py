"""Pure measurements of frames (numpy arrays in, numbers out): what makes a moment usable.

Every function here takes small BGR uint8 frames and returns plain floats or arrays, so each is
tested on synthetic arrays without any video file. Scales are chosen for ~256 px wide frames
(the analysis size); the `*_score` functions map raw measures to 0..1 where 1 is good.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# Histogram bins (hue, saturation, value) for colour signatures: coarse on purpose, so the same
# scene under a small pan keeps the same signature, and different scenes do not.
HIST_BINS = (12, 4, 4)


@dataclass(frozen=True, slots=True)
class FrameStats:
    """What one sampled frame measures; kept per sample, summarised per candidate moment."""

    time: float
    sharpness: float  # variance of the Laplacian of the grey frame
    brightness: float  # mean luma 0..255
    dark: float  # fraction of pixels below 20
    bright: float  # fraction of pixels above 245
    colourfulness: float  # Hasler & Suesstrunk's metric
    motion: float  # mean absolute grey difference to the previous sample (0..255)
    shift: tuple[float, float]  # global translation to the previous sample, pixels (x, y)


def grey(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)


def sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian: high for crisp edges, near zero for blur or flat frames."""
    return float(cv2.Laplacian(gray, cv2.CV_32F).var())


def exposure(gray: np.ndarray) -> tuple[float, float, float]:
    """(mean luma, fraction crushed to black, fraction blown to white)."""
    n = gray.size
    return (
        float(gray.mean()),
        float(np.count_nonzero(gray < 20)) / n,
        float(np.count_nonzero(gray > 245)) / n,
    )


def colourfulness(bgr: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness; ~0 for grey, >60 for vivid scenes."""
    b, g, r = (bgr[:, :, i].astype(np.float32) for i in range(3))
    rg = r - g
    yb = 0.5 * (r + g) - b
    std = math.hypot(float(rg.std()), float(yb.std()))
    mean = math.hypot(float(rg.mean()), float(yb.mean()))
    return std + 0.3 * mean


def colour_hist(bgr: np.ndarray) -> np.ndarray:
    """A normalised HSV histogram (sum 1), the colour signature used for duplicates and clusters."""
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)
    h = cv2.calcHist([hsv], [0, 1, 2], None, list(HIST_BINS), [0, 180, 0, 256, 0, 256])
    flat = h.ravel().astype(np.float32)
    return flat / max(float(flat.sum()), 1.0)


def global_shift(prev: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """The translation between two grey frames by phase correlation (camera pan or shake)."""
    a = prev.astype(np.float32)
    b = cur.astype(np.float32)
    (dx, dy), _ = cv2.phaseCorrelate(a, b)
    return float(dx), float(dy)


def measure(
    bgr: np.ndarray, time: float, prev_grey: np.ndarray | None
) -> tuple[FrameStats, np.ndarray]:
    """All per-frame measures of one sample; returns them and its grey frame (the next `prev`)."""
    g = grey(bgr)
    mean, dark, bright = exposure(g)
    if prev_grey is not None and prev_grey.shape == g.shape:
        motion = float(cv2.absdiff(g, prev_grey).mean())
        shift = global_shift(prev_grey, g)
    else:
        motion, shift = 0.0, (0.0, 0.0)
    stats = FrameStats(
        time=time,
        sharpness=sharpness(g),
        brightness=mean,
        dark=dark,
        bright=bright,
        colourfulness=colourfulness(bgr),
        motion=motion,
        shift=shift,
    )
    return stats, g


# --- 0..1 scores --------------------------------------------------------------------------------


def sharpness_score(var_laplacian: float) -> float:
    """0 for blur, ~0.5 at a soft phone frame, -> 1 for crisp detail (at ~256 px width)."""
    return var_laplacian / (var_laplacian + 150.0)


def exposure_score(brightness: float, dark: float, bright: float) -> float:
    """1 for a well exposed frame; near 0 for black, very dark or blown-out frames."""
    # Mean luma inside 50..200 is fine; outside it falls off linearly to 0 at 10 / 250.
    if brightness < 50:
        level = max(0.0, (brightness - 10.0) / 40.0)
    elif brightness > 200:
        level = max(0.0, (250.0 - brightness) / 50.0)
    else:
        level = 1.0
    clipped = min(1.0, max(0.0, dark - 0.25) + max(0.0, bright - 0.15))
    return level * (1.0 - clipped)


def colour_score(colourfulness_value: float) -> float:
    return min(1.0, colourfulness_value / 60.0)


def stability_score(shifts: list[tuple[float, float]], width: int) -> float:
    """1 for a steady or smoothly panning camera, falling towards 0 for hand shake.

    Shake is the frame-to-frame *change* of the global shift (jerk), as a fraction of the frame
    width: a smooth pan has a constant shift and scores high; a jittering hand does not.
    """
    if len(shifts) < 3:
        return 1.0
    arr = np.asarray(shifts, dtype=np.float64)
    jerk = np.abs(np.diff(arr, axis=0)).sum(axis=1)
    shake = float(np.median(jerk)) / max(width, 1)
    return 1.0 / (1.0 + (shake / 0.01) ** 2)


def motion_interest(motion: float) -> float:
    """Some movement is lively; none is a still; a lot is chaos. Peaks around 6 grey levels."""
    return math.exp(-((math.log1p(motion) - math.log1p(6.0)) ** 2) / 1.5)


# --- saliency ------------------------------------------------------------------------------------


def spectral_saliency(gray: np.ndarray, size: int = 64) -> np.ndarray:
    """Hou & Zhang's spectral residual saliency map (size x size*aspect, 0..1).

    It needs no model: what is unusual in the frame's log spectrum stands out in space.
    """
    h, w = gray.shape
    sh = max(8, round(size * h / w)) if w >= h else size
    sw = size if w >= h else max(8, round(size * w / h))
    small = cv2.resize(gray, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32)
    spec = np.fft.fft2(small)
    log_amp = np.log(np.abs(spec) + 1e-6)
    phase = np.angle(spec)
    residual = log_amp - cv2.blur(log_amp, (3, 3))
    sal = np.abs(np.fft.ifft2(np.exp(residual + 1j * phase))) ** 2
    sal = cv2.GaussianBlur(sal.astype(np.float32), (0, 0), sigmaX=max(1.0, sw / 32))
    top = float(sal.max())
    return sal / top if top > 0 else sal


def salient_centre(weights: np.ndarray) -> tuple[float, float]:
    """The weighted centre (x, y) of a map, as fractions; the middle when the map is empty."""
    total = float(weights.sum())
    if total <= 0:
        return 0.5, 0.5
    h, w = weights.shape
    ys, xs = np.mgrid[0:h, 0:w]
    cx = float((weights * (xs + 0.5)).sum()) / total / w
    cy = float((weights * (ys + 0.5)).sum()) / total / h
    return cx, cy


def hist_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Histogram intersection of two normalised histograms: 1 identical, 0 disjoint."""
    return float(np.minimum(a, b).sum())
