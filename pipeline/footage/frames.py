"""Low-resolution frames from footage files: the thin reader that feeds the pure scorers.

Frames are scaled down by libswscale inside the decoder call (`to_ndarray(width=...)`), so Python
never holds a full 1080p frame; every frame is turned upright by the file's rotation flag, so
crop windows are in the displayed frame, as `MediaInfo.width/height` and `Rect` are.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import av
import av.error
import numpy as np

from pipeline.errors import MediaError
from pipeline.media import MediaInfo, media_caps, openable, pillow_limits

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame: index, presentation time (source seconds) and upright BGR pixels.

    `bgr` is the small picture every frame gets (for shot detection); `detail` is a larger one,
    only on the frames picked for measuring (`sample_fps`), because scaling costs in proportion
    to the output size and most frames only need the small one.
    """

    index: int
    time: float
    bgr: np.ndarray  # H x W x 3 uint8, upright (rotation applied)
    detail: np.ndarray | None = None


def scaled_size(info: MediaInfo, width: int) -> tuple[int, int]:
    """The decode size (stored orientation) whose upright width is about `width`, both even."""
    disp_w, disp_h = info.width, info.height
    w = min(width, disp_w)
    h = max(2, round(disp_h * w / disp_w / 2) * 2)
    w = max(2, round(w / 2) * 2)
    # The decoder scales the stored frame, which is turned when the display is rotated.
    return (h, w) if info.rotation in (90, 270) else (w, h)


def upright(img: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a stored frame into the displayed one; `rotation` as `MediaInfo.rotation`."""
    if rotation == 0:
        return img
    # PyAV reports the display matrix angle counter-clockwise; np.rot90 turns counter-clockwise.
    return np.ascontiguousarray(np.rot90(img, k=rotation // 90))


def iter_frames(
    info: MediaInfo,
    width: int,
    fast: bool = False,
    sample_fps: float = 0.0,
    detail_width: int = 0,
) -> Iterator[Frame]:
    """The frames of a video or animation, upright, about `width` pixels wide.

    `fast` asks the decoder to skip what analysis does not need: the deblocking filter (its
    effect vanishes at 256 px) and non-reference frames (B-frames nothing else depends on). With
    B-frames at most two frames in a row are skipped, so a cut is still placed within two frames;
    phone video without B-frames loses nothing. `Frame.index` stays the true frame number.
    """
    sw, sh = scaled_size(info, width)
    dw, dh = scaled_size(info, detail_width) if detail_width else (0, 0)
    if _pillow_animation(info):
        yield from _pillow_frames(info, (sw, sh), (dw, dh), sample_fps)
        return
    next_sample = 0.0
    try:
        container = av.open(openable(info.path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise MediaError(info.path, "corrupt", str(exc)) from exc
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if fast and info.kind == "video":
            stream.codec_context.skip_frame = "NONREF"
            stream.codec_context.options = {"skip_loop_filter": "all"}
        index = 0
        fps = info.fps or 25.0
        start = _origin(stream)
        try:
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else start + index / fps
                if fast and frame.time is not None:
                    index = max(index, round((t - start) * fps))
                img = frame.to_ndarray(
                    width=sw, height=sh, format="bgr24", interpolation="FAST_BILINEAR"
                )
                rel = t - start
                detail = None
                if sample_fps > 0 and dw and rel >= next_sample - 1e-6:
                    big = _bgr(frame, dw, dh, info, "FAST_BILINEAR")
                    detail = upright(big, info.rotation)
                    next_sample = (math.floor(rel * sample_fps + 1e-6) + 1) / sample_fps
                yield Frame(index, rel, upright(img, info.rotation), detail)
                index += 1
        except av.error.FFmpegError as exc:
            # A truncated phone upload still has usable frames before the damage.
            if index == 0:
                raise MediaError(info.path, "corrupt", str(exc)) from exc
            log.warning("%s: decoding stopped after %d frames: %s", info.path, index, exc)


def _pillow_animation(info: MediaInfo) -> bool:
    """Animated WebP: the bundled libavcodec cannot decode it, Pillow can (see media.probe)."""
    return info.kind == "animation" and info.video_codec == "webp"


def _pillow_frames(
    info: MediaInfo, small: tuple[int, int], detail: tuple[int, int], sample_fps: float
) -> Iterator[Frame]:
    """The frames of an animated WebP through Pillow, timed by each frame's duration."""
    from PIL import Image

    pillow_limits(media_caps())
    next_sample, t = 0.0, 0.0
    try:
        with Image.open(info.path) as im:
            for index in range(int(getattr(im, "n_frames", 1))):
                im.seek(index)
                im.load()
                rgb = im.convert("RGB")
                img = _pil_bgr(rgb, small)
                big = None
                if sample_fps > 0 and detail[0] and t >= next_sample - 1e-6:
                    big = _pil_bgr(rgb, detail)
                    next_sample = (math.floor(t * sample_fps + 1e-6) + 1) / sample_fps
                yield Frame(index, t, img, big)
                t += int(im.info.get("duration", 100) or 100) / 1000
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning) as exc:
        raise MediaError(info.path, "corrupt", str(exc)) from exc


def _pil_bgr(im: object, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    small = im.resize(size, Image.Resampling.BILINEAR)  # type: ignore[attr-defined]
    return np.ascontiguousarray(np.asarray(small)[:, :, ::-1])


def read_photo(info: MediaInfo, width: int) -> np.ndarray:
    """A photo, upright (EXIF orientation applied), scaled to about `width` pixels wide, BGR.

    Pillow reads it (JPEG, PNG, WebP, AVIF, ...); what Pillow cannot open (HEIC without a
    plug-in) is decoded by PyAV. Either refusal is a `MediaError` naming the file: a truncated
    JPEG, a picture over the pixel cap (Pillow's bomb limit is set to it)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    pillow_limits(media_caps())
    try:
        with Image.open(info.path) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            w = min(width, im.width)
            h = max(2, round(im.height * w / im.width))
            im = im.resize((w, h), Image.Resampling.BILINEAR)
            rgb = np.asarray(im)
    except UnidentifiedImageError:
        return _photo_by_pyav(info, width)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError(info.path, "too_large", str(exc)) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        # Pillow raises all three for damaged files (a truncated JPEG: OSError).
        raise MediaError(info.path, "corrupt", str(exc)) from exc
    return np.ascontiguousarray(rgb[:, :, ::-1])


def _photo_by_pyav(info: MediaInfo, width: int) -> np.ndarray:
    sw, sh = scaled_size(info, width)
    try:
        with av.open(openable(info.path), metadata_errors="ignore") as container:
            frame = next(container.decode(video=0))
            img = frame.to_ndarray(width=sw, height=sh, format="bgr24")
    except (StopIteration, av.error.FFmpegError) as exc:
        raise MediaError(info.path, "corrupt", str(exc)) from exc
    return upright(img, info.rotation)


def _origin(stream: av.VideoStream) -> float:
    """The stream's start time: source seconds (as ffmpeg's -ss and the plan use them) count
    from here, not from timestamp zero (MPEG-TS and some phone files start later)."""
    if stream.start_time is not None and stream.time_base is not None:
        return float(stream.start_time * stream.time_base)
    return 0.0


def frame_at(info: MediaInfo, t: float, width: int, not_before: float | None = None) -> np.ndarray:
    """The displayed frame at source second `t` (nearest decodable), BGR, about `width` wide.

    With `not_before`, any frame between that second and `t` will do, and the keyframe before
    `t` is taken when it is late enough: one frame decoded instead of up to a GOP (what a
    storyboard thumbnail needs). Only the chosen frame is scaled and converted.
    """
    if info.kind == "photo":
        return read_photo(info, width)
    sw, sh = scaled_size(info, width)
    if _pillow_animation(info):
        frames = list(_pillow_frames(info, (sw, sh), (0, 0), 0.0))
        return next((f.bgr for f in reversed(frames) if f.time <= t + 1e-3), frames[0].bgr)
    with av.open(openable(info.path), metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tb = stream.time_base
        origin = _origin(stream)
        at = t + origin

        def seek() -> None:
            if tb is not None and t > 0:
                container.seek(int(at / float(tb)), stream=stream, backward=True)

        seek()
        chosen: av.VideoFrame | None = None
        if not_before is not None:
            stream.codec_context.skip_frame = "NONKEY"
            key = next(iter(container.decode(stream)), None)
            stream.codec_context.skip_frame = "DEFAULT"
            if key is not None and key.time is not None and key.time >= not_before + origin - 1e-3:
                chosen = key
            else:
                seek()
        if chosen is None:
            for frame in container.decode(stream):
                chosen = frame
                if frame.time is not None and frame.time >= at - 1e-3:
                    break
        if chosen is None:
            raise MediaError(info.path, "corrupt", f"no frame at {t:.2f}s")
        img = _bgr(chosen, sw, sh, info, "BILINEAR")
    return upright(img, info.rotation)


def _bgr(
    frame: av.VideoFrame, width: int, height: int, info: MediaInfo, interpolation: str
) -> np.ndarray:
    """A frame as BGR pixels to measure or show: HDR is tone-mapped as the renderer does it.

    (Shot detection's tiny frames skip that: it compares frames with each other, and a
    consistent wash does not hide a cut.)"""
    if info.hdr:
        from pipeline.hdr import to_sdr

        return to_sdr(frame, width, height, info.hdr, interpolation)
    return frame.to_ndarray(width=width, height=height, format="bgr24", interpolation=interpolation)
