"""Media facts, read once with PyAV into a frozen `MediaInfo` and passed along, never re-probed."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import av
import av.error

from pipeline.errors import MediaError

log = logging.getLogger(__name__)

MediaKind = Literal["video", "photo", "animation"]
# High dynamic range video: "hlg" (what phones record by default: iPhone 12 and later, many
# Androids) or "pq" (HDR10); "" for everything else. The renderer tone-maps it to SDR.
HdrKind = Literal["", "hlg", "pq"]
_HDR_TRC = {18: "hlg", 16: "pq"}  # AVCOL_TRC_ARIB_STD_B67, AVCOL_TRC_SMPTE2084

# A video shorter than this has nothing to cut a shot from (a frame or two).
MIN_VIDEO_SECONDS = 0.1

# Demuxers that read a single still image (ffmpeg names them "<codec>_pipe" or "image2").
_IMAGE_FORMATS = ("image2", "_pipe", "png", "webp")


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What the pipeline needs to know about one footage file.

    `width` and `height` are the *displayed* size: a phone video stored landscape with a
    90 degree rotation flag reports portrait here, as ffmpeg shows it after autorotation.
    """

    path: str
    kind: MediaKind
    duration: float  # seconds; 0.0 for a photo
    width: int
    height: int
    fps: float  # 0.0 for a photo
    rotation: int  # 0, 90, 180 or 270: how far the stored frames are turned on display
    has_audio: bool
    video_codec: str
    size_bytes: int
    hdr: HdrKind = ""

    @property
    def aspect(self) -> float:
        return self.width / self.height

    @property
    def is_still(self) -> bool:
        return self.kind == "photo"


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Read one file's facts, or raise `MediaError` naming the file and the reason."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise MediaError(p, "missing")
    size = os.path.getsize(p)
    if size == 0:
        raise MediaError(p, "empty")
    try:
        container = av.open(p, metadata_errors="ignore")
    except (av.error.InvalidDataError, av.error.EOFError) as exc:
        raise MediaError(p, "not_media", str(exc)) from exc
    except av.error.FFmpegError as exc:
        raise MediaError(p, "corrupt", str(exc)) from exc
    with container:
        return _probe_open(p, size, container)


def _probe_open(path: str, size: int, container: av.container.InputContainer) -> MediaInfo:
    has_audio = bool(container.streams.audio)
    if not container.streams:
        raise MediaError(path, "empty", "the file holds no video or sound")
    if not container.streams.video:
        raise MediaError(path, "audio_only" if has_audio else "not_media")
    stream = container.streams.video[0]
    fmt = container.format.name
    codec = stream.codec_context.name

    # Decoding one frame proves the stream is usable and gives the display rotation, which
    # PyAV reads from the display matrix (video) or the EXIF orientation (JPEG) alike.
    try:
        frame = next(container.decode(stream))
    except (StopIteration, av.error.FFmpegError) as exc:
        raise MediaError(path, "corrupt", "no decodable video frame") from exc
    rotation = round(frame.rotation) % 360 if frame.rotation else 0
    if rotation not in (0, 90, 180, 270):
        raise MediaError(path, "unsupported", f"rotation {rotation}")
    stored_w, stored_h = frame.width, frame.height
    width, height = (stored_h, stored_w) if rotation in (90, 270) else (stored_w, stored_h)

    is_image_demuxer = any(tag in fmt for tag in _IMAGE_FORMATS)
    if is_image_demuxer and codec not in ("gif",) and not _has_second_frame(container, stream):
        return MediaInfo(
            path=path,
            kind="photo",
            duration=0.0,
            width=width,
            height=height,
            fps=0.0,
            rotation=rotation,
            has_audio=False,
            video_codec=codec,
            size_bytes=size,
        )

    duration = _duration(container, stream)
    if duration < MIN_VIDEO_SECONDS:
        raise MediaError(path, "zero_duration", f"{duration:.3f}s of video")
    rate = stream.average_rate or stream.guessed_rate or Fraction(0)
    fps = float(rate)
    if not 0.0 < fps <= 240.0:
        fps = 30.0
    kind: MediaKind = "animation" if codec in ("gif", "apng", "webp") else "video"
    # The transfer the bitstream signals, else the container's.
    trc = int(getattr(frame, "color_trc", 0) or 0)
    if trc not in _HDR_TRC:
        trc = int(stream.codec_context.color_trc or 0)
    hdr: HdrKind = "hlg" if _HDR_TRC.get(trc) == "hlg" else "pq" if trc in _HDR_TRC else ""
    return MediaInfo(
        path=path,
        kind=kind,
        duration=duration,
        width=width,
        height=height,
        fps=fps,
        rotation=rotation,
        has_audio=has_audio,
        video_codec=codec,
        size_bytes=size,
        hdr=hdr,
    )


def _has_second_frame(container: av.container.InputContainer, stream: av.VideoStream) -> bool:
    try:
        next(container.decode(stream))
    except (StopIteration, av.error.FFmpegError):
        return False
    return True


def _duration(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        value = float(stream.duration * stream.time_base)
        if value > 0:
            return value
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    # No duration in the headers (some GIFs, raw streams): count what decodes.
    last = 0.0
    container.seek(0)
    for frame in container.decode(stream):
        if frame.time is not None:
            last = frame.time
    rate = float(stream.average_rate or 0) or 25.0
    return last + 1.0 / rate if last > 0 else 0.0


def probe_all(paths: list[str]) -> list[MediaInfo]:
    """Probe several files; the first unusable one raises (callers that can skip files catch it)."""
    return [probe(p) for p in paths]
