"""Generated footage with known ground truth: real photographs filmed by a moving virtual camera.

Used by `reelbot bench analyze` and the tests. Each scene is a photograph (scikit-image ships a
few: astronaut, coffee, chelsea, motorcycle, rocket...) seen through a window that pans and zooms,
optionally blurred, blacked out or shaken; scenes meet with a hard cut or a dissolve. Frames are
drawn with OpenCV and piped raw into ffmpeg's libx264, so every cut frame is known exactly.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from pipeline.ffmpeg import ffmpeg_exe

# Distinct photographs that load offline (some of scikit-image's need a download); greyscale ones
# are kept apart so neighbouring scenes always differ in more than brightness.
PHOTOS = ("astronaut", "camera", "coffee", "chelsea", "moon", "rocket", "immunohistochemistry",
          "coins", "hubble_deep_field", "retina", "clock", "colorwheel")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Scene:
    """One camera take over a photo: `frames` long, window moving from zoom0/pan0 to zoom1/pan1."""

    photo: str
    frames: int
    zoom0: float = 1.0
    zoom1: float = 1.15
    pan0: tuple[float, float] = (0.0, 0.0)  # window centre offset, fraction of the photo
    pan1: tuple[float, float] = (0.05, 0.0)
    effect: Literal["none", "blur", "black", "shake"] = "none"
    join: Literal["cut", "dissolve"] = "cut"  # how this scene follows the previous one
    dissolve_frames: int = 15


@dataclass(frozen=True, slots=True)
class Truth:
    """Where the generated clip changes scene: first frames of hard cuts, and dissolve spans."""

    cuts: tuple[int, ...]
    dissolves: tuple[tuple[int, int], ...]
    frames: int
    scene_starts: tuple[int, ...]  # first frame (fully) showing each scene


def load_photo(name: str) -> np.ndarray:
    """A scikit-image sample photograph as BGR uint8."""
    from skimage import data

    img = np.asarray(getattr(data, name)())
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = img[:, :, :3]
    if img.dtype != np.uint8:
        img = (255 * (img.astype(np.float64) / max(float(img.max()), 1e-9))).astype(np.uint8)
    return np.ascontiguousarray(img[:, :, ::-1])


def view_transform(photo_hw: tuple[int, int], size: tuple[int, int], zoom: float,
                   pan: tuple[float, float], jitter: tuple[float, float] = (0.0, 0.0),
                   ) -> tuple[float, float, float]:  # fmt: skip
    """(scale, tx, ty) mapping photo pixels to frame pixels: frame = scale * photo + t."""
    ow, oh = size
    ph, pw = photo_hw
    base = max(ow / pw, oh / ph) * zoom
    cx = pw / 2 + pan[0] * pw + jitter[0]
    cy = ph / 2 + pan[1] * ph + jitter[1]
    # Keep the window inside the photo so no black borders appear (they would read as content).
    half_w, half_h = ow / base / 2, oh / base / 2
    cx = min(max(cx, half_w), pw - half_w)
    cy = min(max(cy, half_h), ph - half_h)
    return base, ow / 2 - base * cx, oh / 2 - base * cy


def _view(photo: np.ndarray, size: tuple[int, int], zoom: float, pan: tuple[float, float],
          jitter: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:  # fmt: skip
    """The photo seen through an output-aspect window (covering the frame) at zoom and pan."""
    scale, tx, ty = view_transform(photo.shape[:2], size, zoom, pan, jitter)
    m = np.array([[scale, 0, tx], [0, scale, ty]])
    return cv2.warpAffine(photo, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def scene_frames(scene: Scene, size: tuple[int, int], seed: int = 0) -> Iterator[np.ndarray]:
    photo = load_photo(scene.photo)
    rng = np.random.default_rng(seed)
    n = max(scene.frames, 1)
    for i in range(scene.frames):
        t = i / max(n - 1, 1)
        zoom = scene.zoom0 + (scene.zoom1 - scene.zoom0) * t
        pan = (scene.pan0[0] + (scene.pan1[0] - scene.pan0[0]) * t,
               scene.pan0[1] + (scene.pan1[1] - scene.pan0[1]) * t)  # fmt: skip
        jitter = (0.0, 0.0)
        if scene.effect == "shake":
            amp = 0.04 * photo.shape[1]
            jitter = (float(rng.normal(0, amp)), float(rng.normal(0, amp)))
        img = _view(photo, size, zoom, pan, jitter)
        if scene.effect == "blur":
            img = cv2.GaussianBlur(img, (0, 0), sigmaX=size[0] / 60)
        elif scene.effect == "black":
            img = (img * 0.02).astype(np.uint8)
        yield img


def render_frames(scenes: Sequence[Scene], size: tuple[int, int]) -> tuple[list[np.ndarray], Truth]:
    """All frames of the clip in memory (small sizes only) and the ground truth."""
    out: list[np.ndarray] = []
    truth = _plan(scenes, out.append, size)
    return out, truth


def _plan(scenes: Sequence[Scene], emit: object, size: tuple[int, int]) -> Truth:
    sink = emit  # a callable taking one frame
    assert callable(sink)
    cuts: list[int] = []
    dissolves: list[tuple[int, int]] = []
    starts: list[int] = []
    count = 0
    tail: list[np.ndarray] = []  # the previous scene's last frames, for a dissolve
    for k, sc in enumerate(scenes):
        frames = scene_frames(sc, size, seed=k)
        if k > 0 and sc.join == "dissolve" and tail:
            d = len(tail)
            for j in range(d):
                a = (j + 1) / (d + 1)
                nxt = next(frames)
                sink(cv2.addWeighted(tail[j], 1.0 - a, nxt, a, 0.0))
            dissolves.append((count, count + d - 1))
            count += d
        elif k > 0:
            for f in tail:
                sink(f)
            count += len(tail)
            cuts.append(count)
        starts.append(count)
        body = list(frames)
        keep = scenes[k + 1].dissolve_frames if k + 1 < len(scenes) else 0
        if k + 1 < len(scenes) and scenes[k + 1].join == "dissolve":
            tail, body = body[len(body) - keep :], body[: len(body) - keep]
        else:
            tail = []
        for f in body:
            sink(f)
        count += len(body)
    for f in tail:
        sink(f)
    count += len(tail)
    return Truth(tuple(cuts), tuple(dissolves), count, tuple(starts))


def write_clip(path: str, scenes: Sequence[Scene], size: tuple[int, int], fps: int = 30,
               crf: int = 23, preset: str = "veryfast") -> Truth:  # fmt: skip
    """Encode the scenes to an H.264 MP4 at `size` and return the ground truth."""
    w, h = size
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
           "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "-",
           "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
           "-g", str(fps * 2), path]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None

    def sink(frame: np.ndarray) -> None:
        assert proc.stdin is not None
        proc.stdin.write(np.ascontiguousarray(frame).tobytes())

    try:
        truth = _plan(scenes, sink, size)
    finally:
        proc.stdin.close()
        try:  # never wait forever: ffmpeg gets 10 minutes after its last frame (it logs errors
            code = proc.wait(timeout=600)  # only, too little to fill the stderr pipe)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if code != 0:
        raise RuntimeError(f"encoding generated footage failed: {err[-2000:]}")
    return truth


def bench_scenes(seconds: float, fps: int = 30, seed: int = 0) -> list[Scene]:
    """A varied clip of about `seconds`: 2-5 s takes over different photos, about one join in
    four a 0.5 s dissolve, pans and zooms in both directions."""
    rng = np.random.default_rng(seed)
    scenes: list[Scene] = []
    total = 0
    k = 0
    target = int(seconds * fps)
    while total < target:
        n = int(rng.uniform(2.0, 5.0) * fps)
        n = min(n, max(target - total, fps))
        join: Literal["cut", "dissolve"] = "dissolve" if k and rng.random() < 0.25 else "cut"
        z0, z1 = (1.0, 1.2) if rng.random() < 0.5 else (1.2, 1.0)
        px = float(rng.uniform(-0.08, 0.08))
        scenes.append(Scene(PHOTOS[k % len(PHOTOS)], n, z0, z1, (-px, 0.0), (px, 0.02), join=join,
                            dissolve_frames=fps // 2))  # fmt: skip
        total += n
        k += 1
    return scenes


def match_cuts(found: Sequence[int], truth: Sequence[int], tolerance: int = 2) -> tuple[int, int]:
    """(true positives, false positives) matching each found cut to one true cut within frames."""
    unused = list(truth)
    tp = 0
    for f in found:
        best = min(unused, key=lambda t: abs(t - f), default=None)
        if best is not None and abs(best - f) <= tolerance:
            unused.remove(best)
            tp += 1
    return tp, len(found) - tp
