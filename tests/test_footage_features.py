"""Pure scorers, detectors and geometry, fed arrays directly (no video files)."""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.bench.synth import Scene, load_photo, match_cuts, render_frames
from pipeline.footage import features as ft
from pipeline.footage.faces import Box
from pipeline.footage.moments import segment
from pipeline.footage.reframe import contains, frame_shot, window
from pipeline.footage.shots import Boundaries, CutDetector, shot_spans


def _photo(size: tuple[int, int] = (256, 144)) -> np.ndarray:
    return cv2.resize(load_photo("coffee"), size, interpolation=cv2.INTER_AREA)


def test_sharpness_drops_with_blur() -> None:
    img = ft.grey(_photo())
    blurred = cv2.GaussianBlur(img, (0, 0), 4)
    assert ft.sharpness_score(ft.sharpness(img)) > 0.5 > ft.sharpness_score(ft.sharpness(blurred))


def test_exposure_scores_black_and_blown_out_low() -> None:
    assert ft.exposure_score(*ft.exposure(ft.grey(_photo()))) > 0.9
    assert ft.exposure_score(*ft.exposure(np.full((90, 160), 5, np.uint8))) < 0.05
    assert ft.exposure_score(*ft.exposure(np.full((90, 160), 252, np.uint8))) < 0.1


def test_colourfulness_zero_for_grey() -> None:
    grey3 = np.full((90, 160, 3), 120, np.uint8)
    assert ft.colourfulness(grey3) < 1.0 < ft.colourfulness(_photo())


def test_stability_separates_pan_from_shake() -> None:
    pan = [(3.0, 0.0)] * 10
    rng = np.random.default_rng(0)
    shake = [(float(x), float(y)) for x, y in rng.normal(0, 8, size=(10, 2))]
    assert ft.stability_score(pan, 256) > 0.95
    assert ft.stability_score(shake, 256) < 0.3


def test_global_shift_measures_translation() -> None:
    g = ft.grey(_photo((320, 180)))
    moved = np.roll(g, 7, axis=1)
    dx, dy = ft.global_shift(g[20:-20, 20:-20], moved[20:-20, 20:-20])
    assert abs(dx - 7) < 1.0 and abs(dy) < 1.0


def test_saliency_points_at_the_odd_object() -> None:
    img = np.full((90, 160), 100, np.uint8)
    cv2.circle(img, (125, 30), 8, 255, -1)
    cx, cy = ft.salient_centre(ft.spectral_saliency(img) ** 4)
    assert cx > 0.65 and cy < 0.5


def test_cut_detector_finds_cuts_and_dissolve_on_arrays() -> None:
    scenes = [
        Scene("astronaut", 40),
        Scene("coffee", 40, pan0=(0.05, 0), pan1=(-0.05, 0)),
        Scene("rocket", 50, join="dissolve", dissolve_frames=15),
        Scene("chelsea", 30),
    ]
    frames, truth = render_frames(scenes, (160, 90))
    det = CutDetector(30.0)
    for i, f in enumerate(frames):
        det.push(i, f)
    b = det.finish()
    tp, fp = match_cuts(list(b.cuts), truth.cuts, tolerance=1)
    assert tp == len(truth.cuts) == 2 and fp == 0
    (a, z), = truth.dissolves  # fmt: skip
    assert len(b.dissolves) == 1
    assert abs((b.dissolves[0][0] + b.dissolves[0][1]) / 2 - (a + z) / 2) <= 15


def test_camera_pan_is_not_a_cut() -> None:
    frames, _ = render_frames([Scene("coffee", 60, 1.0, 1.4, (-0.1, 0), (0.1, 0.05))], (160, 90))
    det = CutDetector(30.0)
    for i, f in enumerate(frames):
        det.push(i, f)
    b = det.finish()
    assert b.cuts == () and b.dissolves == ()


def test_shot_spans_skip_dissolve_frames() -> None:
    spans = shot_spans(100, Boundaries(cuts=(30,), dissolves=((60, 70),)))
    assert spans == [(0, 30, "start"), (30, 60, "cut"), (71, 100, "dissolve")]


def test_segment_splits_where_the_look_changes() -> None:
    feats = np.array([[0.1]] * 12 + [[0.9]] * 18)  # 30 samples: blurred 12, then sharp 18
    pieces = segment(feats, lo=10, hi=30 - 1)
    assert pieces == [(0, 12), (12, 30)]
    for a, b in segment(np.random.default_rng(1).random((80, 2)), 10, 30):
        assert 10 <= b - a <= 30


def test_window_has_the_aspect_and_stays_inside() -> None:
    r = window(1920, 1080, "9:16", 0.95, 0.5)
    assert abs((r.w * 1920) / (r.h * 1080) - 9 / 16) < 1e-6
    assert r.x + r.w <= 1.0 + 1e-9 and r.x >= 0


def test_frame_shot_follows_a_face_and_pans_after_it() -> None:
    start, end = Box(0.1, 0.3, 0.08, 0.14), Box(0.75, 0.3, 0.08, 0.14)
    crops = frame_shot(1920, 1080, start, (0.5, 0.5), end, (0.5, 0.5))
    vertical = next(c for c in crops if c.aspect == "9:16")
    assert contains(vertical.start, start)
    assert vertical.end is not None and contains(vertical.end, end)
    still = frame_shot(1920, 1080, start, (0.5, 0.5), start, (0.5, 0.5))
    assert all(c.end is None for c in still)
