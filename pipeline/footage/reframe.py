"""Crop windows that keep the subject: faces first, then saliency and motion, never just centre.

Pure geometry on fractions of the displayed frame (`pipeline.plan.Rect`), so the renderer can
scale any source to any output without knowing pixels.
"""

from __future__ import annotations

from pipeline.footage.faces import Box
from pipeline.footage.model import ASPECTS, Crop
from pipeline.plan import Rect, cover_rect

ASPECT_SIZES = {"9:16": (9, 16), "1:1": (1, 1), "16:9": (16, 9)}

# A face is placed a little above the window's middle: the eyes land near the upper third,
# as a camera operator frames a person, and captions at the bottom do not cover the chin.
FACE_HEIGHT = 0.40
# Below this movement of the subject (fraction of the frame) a moving window would only wobble.
PAN_MIN = 0.06
# Photos zoom in slowly by this factor (Ken Burns) towards their subject.
PHOTO_ZOOM = 1.15


def window(src_w: int, src_h: int, aspect: str, cx: float, cy: float, zoom: float = 1.0) -> Rect:
    """The largest `aspect` window (divided by `zoom`) centred as near (cx, cy) as fits."""
    aw, ah = ASPECT_SIZES[aspect]
    base = cover_rect(src_w, src_h, aw * 1000, ah * 1000, cx, cy)
    if zoom <= 1.0:
        return base
    w, h = base.w / zoom, base.h / zoom
    x = min(max(cx - w / 2, 0.0), 1.0 - w)
    y = min(max(cy - h / 2, 0.0), 1.0 - h)
    return Rect(x, y, w, h)


def aim(subject: Box | None, salient: tuple[float, float], src_w: int, src_h: int,
        aspect: str) -> tuple[float, float]:  # fmt: skip
    """Where a window should be centred: on the faces (with headroom), else on what stands out."""
    if subject is None:
        return salient
    fx, fy = subject.centre
    base = window(src_w, src_h, aspect, 0.5, 0.5)
    # Put the face centre at FACE_HEIGHT of the window, but never push the face out of it.
    cy = fy + (0.5 - FACE_HEIGHT) * base.h
    top_limit = subject.y + base.h / 2 - 0.02  # the window's top stays above the face's top
    cy = min(cy, top_limit)
    return fx, cy


def frame_shot(
    src_w: int,
    src_h: int,
    start_subject: Box | None,
    start_salient: tuple[float, float],
    end_subject: Box | None = None,
    end_salient: tuple[float, float] | None = None,
    photo: bool = False,
) -> tuple[Crop, ...]:
    """Crop windows for every aspect: a still window, a slow pan after a moving subject, or a
    Ken Burns zoom for a photo."""
    crops = []
    for aspect in ASPECTS:
        c0 = aim(start_subject, start_salient, src_w, src_h, aspect)
        if photo:
            zoomed = window(src_w, src_h, aspect, *c0, zoom=PHOTO_ZOOM)
            crops.append(Crop(aspect, window(src_w, src_h, aspect, *c0), zoomed))
            continue
        start = window(src_w, src_h, aspect, *c0)
        end: Rect | None = None
        if end_salient is not None or end_subject is not None:
            c1 = aim(end_subject, end_salient or start_salient, src_w, src_h, aspect)
            moved = abs(c1[0] - c0[0]) + abs(c1[1] - c0[1])
            candidate = window(src_w, src_h, aspect, *c1)
            shift = abs(candidate.x - start.x) + abs(candidate.y - start.y)
            if moved >= PAN_MIN and shift >= PAN_MIN / 2:
                end = candidate
        crops.append(Crop(aspect, start, end))
    return tuple(crops)


def contains(outer: Rect, box: Box, slack: float = 0.0) -> bool:
    """Whether `box` lies inside `outer` (both fractions of the same frame)."""
    return (
        box.x >= outer.x - slack
        and box.y >= outer.y - slack
        and box.x + box.w <= outer.x + outer.w + slack
        and box.y + box.h <= outer.y + outer.h + slack
    )
