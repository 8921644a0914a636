"""Media facts, read once with PyAV into a frozen `MediaInfo` and passed along, never re-probed."""

from __future__ import annotations

import logging
import os
import threading
import warnings
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
# HEIF-family stills (AVIF, HEIC) arrive through the MP4 demuxer as a one-frame "video"; their
# brand says they are photos.
_STILL_BRANDS = ("avif", "avis", "heic", "heix", "heim", "heis", "mif1", "msf1")


@dataclass(frozen=True, slots=True)
class MediaCaps:
    """What a user's file may cost, checked from its headers before anything decodes it."""

    frame_pixels: int  # pixels per video/animation frame
    photo_pixels: int  # pixels of a photo


def media_caps() -> MediaCaps:
    """The caps from the settings snapshot (`REELBOT_MAX_FRAME_PIXELS`,
    `REELBOT_MAX_PHOTO_PIXELS`)."""
    from pipeline.settings import settings

    conf = settings()
    return MediaCaps(frame_pixels=conf.max_frame_pixels, photo_pixels=conf.max_photo_pixels)


_pillow_lock = threading.Lock()


def pillow_limits(caps: MediaCaps) -> None:
    """Make Pillow refuse what probe refuses: its decompression-bomb limit becomes the photo cap,
    and going over it is an error (`DecompressionBombWarning` raised), not a warning and a
    1.6 GB decode. Called before every Pillow open of user footage."""
    from PIL import Image

    with _pillow_lock:
        if caps.photo_pixels != Image.MAX_IMAGE_PIXELS:
            Image.MAX_IMAGE_PIXELS = caps.photo_pixels
            warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


def openable(path: str) -> str:
    """`path` as PyAV and ffmpeg must be given it: absolute, so a name with a colon
    ("clip:1.mp4") is not taken for a protocol and one starting with "-" not for an option."""
    return os.path.abspath(path)


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
    if os.path.isdir(p):
        raise MediaError(p, "not_media", "a folder")
    size = os.path.getsize(p)
    if size == 0:
        raise MediaError(p, "empty")
    caps = media_caps()
    # Images first, from their headers alone: ffmpeg's stream probing decodes a whole picture
    # (471 MB for a 419 KB 12000x12000 PNG) before its size could be checked.
    animated = _image_header(p, size, caps)
    if animated is not None:
        return animated
    try:
        container = av.open(openable(p), metadata_errors="ignore")
    except (av.error.InvalidDataError, av.error.EOFError) as exc:
        # A video container's signature with nothing readable after it is a damaged video
        # (an upload cut short loses the MP4 index at its end), not some other kind of file.
        reason = "corrupt" if _container_signature(p) else "not_media"
        raise MediaError(p, reason, exc.strerror or str(exc)) from exc
    except av.error.FFmpegError as exc:
        raise MediaError(p, "corrupt", exc.strerror or str(exc)) from exc
    with container:
        return _probe_open(p, size, container, caps)


def _container_signature(path: str) -> bool:
    """Whether the file starts like a video container: MP4/MOV, Matroska/WebM, AVI."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    return (
        head[4:8] == b"ftyp"
        or head[:4] == b"\x1a\x45\xdf\xa3"
        or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")
    )


def _image_header(path: str, size: int, caps: MediaCaps) -> MediaInfo | None:
    """Check a file Pillow recognises against the caps, from its header; an animated WebP (which
    the bundled libavcodec cannot decode) is probed here whole. None: go on with PyAV."""
    from PIL import Image, UnidentifiedImageError

    pillow_limits(caps)
    try:
        with Image.open(path) as im:
            w, h = im.size
            frames = int(getattr(im, "n_frames", 1) or 1)
            if w * h > (caps.frame_pixels if frames > 1 else caps.photo_pixels):
                raise _too_large(path, w, h, caps, frames > 1)
            if im.format == "WEBP" and frames > 1:
                return _webp_animation(path, size, im, frames)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refused it on opening, before its size reached us.
        detail = f"over {caps.photo_pixels / 1e6:.1f} Mpx"
        raise MediaError(path, "too_large", detail) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        pass  # not an image Pillow knows (a video, or damaged): PyAV judges it
    return None


def _too_large(path: str, w: int, h: int, caps: MediaCaps, moving: bool) -> MediaError:
    cap = caps.frame_pixels if moving else caps.photo_pixels
    what = "frame" if moving else "photo"
    return MediaError(path, "too_large", f"{w}x{h} = {w * h / 1e6:.1f} Mpx; a {what} may have "
                      f"{cap / 1e6:.1f} Mpx")  # fmt: skip


def _webp_animation(path: str, size: int, im: object, frames: int) -> MediaInfo:
    """An animated WebP, from Pillow's frame durations (ffmpeg's renderer plays it)."""
    total_ms = 0
    for k in range(frames):
        im.seek(k)  # type: ignore[attr-defined]
        im.load()  # type: ignore[attr-defined]  # WebP gives a frame's duration once it is read
        total_ms += int(im.info.get("duration", 100) or 100)  # type: ignore[attr-defined]
    duration = total_ms / 1000
    if duration < MIN_VIDEO_SECONDS:
        raise MediaError(path, "zero_duration", f"{duration:.3f}s of animation")
    w, h = im.size  # type: ignore[attr-defined]
    return MediaInfo(path=path, kind="animation", duration=duration, width=w, height=h,
                     fps=min(60.0, frames / duration), rotation=0, has_audio=False,
                     video_codec="webp", size_bytes=size)  # fmt: skip


def _probe_open(
    path: str, size: int, container: av.container.InputContainer, caps: MediaCaps
) -> MediaInfo:
    has_audio = bool(container.streams.audio)
    if not container.streams:
        raise MediaError(path, "empty", "the file holds no video or sound")
    if not container.streams.video:
        raise MediaError(path, "audio_only" if has_audio else "not_media")
    stream = container.streams.video[0]
    fmt = container.format.name
    if stream.codec_context is None:
        # A stream libavcodec has no decoder for (SVG: ffmpeg's needs librsvg).
        raise MediaError(path, "unsupported", f"no decoder for {fmt.removesuffix('_pipe')}")
    codec = stream.codec_context.name
    brand = str(container.metadata.get("major_brand", "")).strip().lower()
    still = brand in _STILL_BRANDS
    w, h = stream.codec_context.width, stream.codec_context.height
    is_image_demuxer = any(tag in fmt for tag in _IMAGE_FORMATS)
    moving = not (still or is_image_demuxer)
    if w * h > (caps.frame_pixels if moving else caps.photo_pixels):
        raise _too_large(path, w, h, caps, moving)

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

    if still or (
        is_image_demuxer and codec not in ("gif",) and not _has_second_frame(container, stream)
    ):
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


def probe_audio(path: str | os.PathLike[str]) -> float:
    """Check a sound file (background music) before any work: its duration in seconds, or a
    `MediaError` naming the file."""
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise MediaError(p, "missing")
    if os.path.getsize(p) == 0:
        raise MediaError(p, "empty")
    try:
        with av.open(openable(p), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise MediaError(p, "not_media", "no sound in it")
            stream = container.streams.audio[0]
            if stream.codec_context is None:
                raise MediaError(p, "unsupported", "no decoder for its sound")
            try:
                next(container.decode(stream))
            except (StopIteration, av.error.FFmpegError) as exc:
                raise MediaError(p, "corrupt", "no decodable sound") from exc
            seconds = (container.duration or 0) / av.time_base
    except (av.error.InvalidDataError, av.error.EOFError) as exc:
        raise MediaError(p, "not_media", str(exc)) from exc
    except av.error.FFmpegError as exc:
        raise MediaError(p, "corrupt", str(exc)) from exc
    return float(seconds)


def probe_all(paths: list[str]) -> list[MediaInfo]:
    """Probe several files; the first unusable one raises (callers that can skip files catch it)."""
    return [probe(p) for p in paths]
