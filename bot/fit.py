"""Making a finished video fit the Bot API's upload limit by re-encoding at a computed bitrate."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from pipeline.errors import ReelbotError
from pipeline.ffmpeg import run_ffmpeg

log = logging.getLogger(__name__)

AUDIO_KBPS = 96
# Container overhead and rate-control overshoot: aim a little under the limit.
HEADROOM = 0.92


class TooLarge(ReelbotError):
    """Even re-encoded, the video would not fit the upload limit."""

    key = "too_big_result"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"video is {size} bytes, limit {limit}", size=size, limit=limit)


def target_video_kbps(duration: float, limit_bytes: int, audio_kbps: int = AUDIO_KBPS) -> int:
    """The video bitrate (kbit/s) that makes `duration` seconds fit in `limit_bytes` with audio."""
    total_kbps = limit_bytes * 8 * HEADROOM / 1000 / max(duration, 0.1)
    return int(total_kbps - audio_kbps)


def fit_video(
    path: str,
    duration: float,
    limit_bytes: int,
    progress: Callable[[float], None] | None = None,
    cancel: threading.Event | None = None,
) -> str:
    """`path` if it already fits, else a re-encoded copy beside it that does (or TooLarge)."""
    size = os.path.getsize(path)
    if size <= limit_bytes:
        return path
    kbps = target_video_kbps(duration, limit_bytes)
    out = os.path.splitext(path)[0] + ".fit.mp4"
    fitted = size
    # Rate control overshoots on short or noisy footage; each retry scales the bitrate by how
    # far the last try missed.
    for _attempt in range(3):
        if kbps < 100:
            raise TooLarge(fitted, limit_bytes)
        log.info("re-encoding %s (%d B) at %d kbit/s to fit %d B", path, size, kbps, limit_bytes)
        run_ffmpeg(
            ["-i", path, "-map", "0:v:0", "-map", "0:a?", "-c:v", "libx264", "-preset", "veryfast",
             "-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{kbps}k",
             "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", f"{AUDIO_KBPS}k",
             "-movflags", "+faststart", out],
            duration=duration, progress=progress, cancel=cancel, what="fit to upload limit",
        )  # fmt: skip
        fitted = os.path.getsize(out)
        if fitted <= limit_bytes:
            return out
        kbps = int(kbps * limit_bytes / fitted * 0.9)
    raise TooLarge(fitted, limit_bytes)
