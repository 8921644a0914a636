"""Shot boundaries: hard cuts by PySceneDetect, gradual transitions by a windowed colour test.

`CutDetector` is fed frames one at a time (it never opens a file), so it is tested on arrays.
Hard cuts come from PySceneDetect's `ContentDetector` (HSV frame differences). Its per-frame
test cannot see a dissolve, whose frames each change little; a dissolve shows instead as a
colour-histogram change over half a second with no single large step, which is what the second
test looks for. Camera motion over one scene keeps its colour histogram, so pans do not trigger it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scenedetect import FrameTimecode
from scenedetect.detectors import ContentDetector

from pipeline.footage.features import colour_hist


@dataclass(frozen=True, slots=True)
class DetectParams:
    """Knobs of shot detection (part of the analysis cache key)."""

    threshold: float = 27.0  # ContentDetector's default, tuned on its own benchmark
    min_shot: float = 0.4  # seconds: a cut closer than this to the previous one is a flash
    gradual_window: float = 0.5  # seconds between the frames compared for gradual transitions
    gradual_threshold: float = 0.45  # 1 - histogram intersection across the window
    # A cut's frame change must be this many times its neighbours' (AdaptiveDetector's idea):
    # in shaky or fast footage every frame changes a lot, and only a real cut stands out.
    min_ratio: float = 2.0


@dataclass(frozen=True, slots=True)
class Boundaries:
    """Frame indices where shots change: hard cuts (first frame of the new shot) and gradual
    transitions (first and last frame of the blend)."""

    cuts: tuple[int, ...]
    dissolves: tuple[tuple[int, int], ...]


class CutDetector:
    """Finds shot boundaries in a stream of small BGR frames at a known frame rate."""

    def __init__(self, fps: float, params: DetectParams | None = None) -> None:
        self.fps = fps if fps > 0 else 25.0
        self.params = params or DetectParams()
        self._content = ContentDetector(
            threshold=self.params.threshold,
            min_scene_len=max(1, round(self.params.min_shot * self.fps)),
        )
        self._cuts: list[int] = []
        self._indices: list[int] = []  # frame numbers pushed (gaps when the decoder skips)
        self._hists: list[np.ndarray] = []
        self._diffs: list[float] = []  # mean grey change to the previous frame, 0..255
        self._prev: np.ndarray | None = None
        self._count = 0

    def push(self, index: int, bgr: np.ndarray) -> None:
        """Feed the next frame (indices must be consecutive)."""
        tc = FrameTimecode(index, fps=self.fps)
        for cut in self._content.process_frame(tc, bgr):
            self._cuts.append(cut.frame_num)
        # A 64 px thumbnail is plenty for a colour histogram and keeps this cheap per frame.
        h, w = bgr.shape[:2]
        small = cv2.resize(bgr, (64, max(1, round(64 * h / w))), interpolation=cv2.INTER_AREA)
        self._hists.append(colour_hist(small))
        g = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32)
        prev = self._prev
        same = prev is not None and prev.shape == g.shape
        self._diffs.append(float(np.abs(g - prev).mean()) if prev is not None and same else 0.0)
        self._prev = g
        self._indices.append(index)
        self._count = index + 1

    def finish(self) -> Boundaries:
        """All boundaries found, once every frame has been pushed."""
        end = FrameTimecode(max(self._count - 1, 0), fps=self.fps)
        for cut in self._content.post_process(end):
            self._cuts.append(cut.frame_num)
        found = sorted({c for c in self._cuts if 0 < c < self._count})
        pos = {index: k for k, index in enumerate(self._indices)}
        cuts = tuple(
            c
            for c in found
            if stands_out(self._diffs, self._hists, pos.get(c, 0), self.params.min_ratio)
        )
        # The gradual test works on positions in the pushed sequence, at its effective rate.
        n = len(self._indices)
        rate = self.fps * n / max(self._count, 1)
        blends = find_gradual(self._hists, tuple(pos.get(c, 0) for c in cuts), rate, self.params)
        dissolves = tuple((self._indices[a], self._indices[b]) for a, b in blends)
        return Boundaries(cuts, dissolves)


def stands_out(
    diffs: list[float], hists: list[np.ndarray], c: int, ratio: float, reach: int = 8
) -> bool:
    """Whether the change at position c (±1) is a cut, judged against the change around it.

    It must be `ratio` times the typical change on the busier side; or, when one side is busy
    (a cut into a shaky take), `ratio` times the quieter side with the colours changing at once.
    """
    n = len(diffs)
    if n < 3:
        return True
    peak = max(diffs[max(1, c - 1) : min(n, c + 2)], default=0.0)
    before = diffs[max(1, c - reach) : max(1, c - 1)]
    after = diffs[min(n, c + 2) : min(n, c + reach + 1)]
    # The busier side counts: the end of a dissolve is a step after steady change, not a cut.
    # +1 grey level so that a cut after a frozen stretch (neighbours ~0) is not a 1000x "spike"
    # from compression noise.
    medians = [float(np.median(side)) for side in (before, after) if side]
    if not medians or peak >= ratio * (max(medians) + 1.0):
        return True
    if peak < ratio * (min(medians) + 1.0):
        return False
    colour_step = max(
        1.0 - float(np.minimum(hists[k - 1], hists[k]).sum())
        for k in range(max(1, c - 1), min(n, c + 2))
    )
    return colour_step >= 0.5


def find_gradual(
    hists: list[np.ndarray], cuts: tuple[int, ...], fps: float, params: DetectParams
) -> tuple[tuple[int, int], ...]:
    """Gradual transitions: windows over which colours change a lot with no hard cut inside.

    d[i] compares frame i with frame i - W. Across a dissolve of length L it rises over W + L
    frames and peaks; we take each peak above the threshold, away from hard cuts, and report the
    blend as the W frames before the peak (where the change happened).
    """
    n = len(hists)
    win = max(2, round(params.gradual_window * fps))
    if n <= win + 1:
        return ()
    arr = np.stack(hists)
    d = np.zeros(n, dtype=np.float64)
    d[win:] = 1.0 - np.minimum(arr[win:], arr[:-win]).sum(axis=1)
    # Frames whose window spans a hard cut see that cut, not a dissolve.
    near_cut = np.zeros(n, dtype=bool)
    for c in cuts:
        near_cut[max(0, c - 2) : min(n, c + win + 2)] = True
    found: list[tuple[int, int]] = []
    i = win
    while i < n:
        if d[i] < params.gradual_threshold or near_cut[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and d[j + 1] >= params.gradual_threshold and not near_cut[j + 1]:
            j += 1
        peak = i + int(np.argmax(d[i : j + 1]))
        # A steady step (each frame changing a little, summing to a big change) is a blend;
        # a pan over varied scenery changes colours too, but then the change keeps going.
        span = j - i + 1
        if span <= 3 * win + round(fps):
            found.append((max(0, peak - win), peak))
        i = j + 1
    return tuple(found)


def shot_spans(n_frames: int, bounds: Boundaries) -> list[tuple[int, int, str]]:
    """The stretches between boundaries as (first frame, end frame exclusive, how it begins).

    The frames of a gradual transition belong to no shot: a blend of two scenes is not a moment
    anyone would choose.
    """
    marks: list[tuple[int, int, str]] = [(c, c, "cut") for c in bounds.cuts]
    marks += [(a, b + 1, "dissolve") for a, b in bounds.dissolves]
    marks.sort()
    spans: list[tuple[int, int, str]] = []
    pos, how = 0, "start"
    for a, b, kind in marks:
        if a > pos:
            spans.append((pos, a, how))
        pos, how = max(pos, b), kind
    if pos < n_frames:
        spans.append((pos, n_frames, how))
    return spans
