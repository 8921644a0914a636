"""Free disk space, checked before a step writes: a download of footage, a render. A full disk
is told to the user up front instead of failing half-way through writing a file."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipeline.plan import OutputSpec

log = logging.getLogger(__name__)

MB = 1024 * 1024
# x264 at the renderer's CRF 23 on phone footage stays under ~0.1 bit per pixel and frame.
_BITS_PER_PIXEL = 0.1
_AUDIO_BYTES_PER_S = 48_000 * 2 * 4  # the mixed sound as float stereo WAV while rendering
_LENGTH_SLACK = 1.5  # the spoken script can run over the target length


@dataclass(frozen=True, slots=True)
class Room:
    """Free space where a step writes, against what it needs plus the margin kept free."""

    free: int
    need: int
    margin: int

    @property
    def ok(self) -> bool:
        return self.free >= self.need + self.margin

    @property
    def free_mb(self) -> int:
        return self.free // MB

    @property
    def need_mb(self) -> int:
        return -(-(self.need + self.margin) // MB)  # rounded up


def free_bytes(path: str | os.PathLike[str]) -> int:
    """Free bytes on the file system that holds `path` (its nearest existing folder)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def room_for(path: str | os.PathLike[str], need: int, min_free_mb: int) -> Room:
    """Whether `need` bytes can be written under `path` leaving `min_free_mb` MB free."""
    room = Room(free=free_bytes(path), need=max(need, 0), margin=min_free_mb * MB)
    if not room.ok:
        log.warning("low disk space under %s: %d MB free, %d MB wanted", path, room.free_mb,
                    room.need_mb)  # fmt: skip
    return room


def render_bytes(seconds: float, output: OutputSpec, upload_limit: int) -> int:
    """What rendering a `seconds`-long video writes at most: the MP4 (written under a partial
    name, then renamed), the mixed sound, and a re-encoded copy to fit the upload limit."""
    length = seconds * _LENGTH_SLACK
    video = output.width * output.height * output.fps * _BITS_PER_PIXEL / 8 * length
    audio = _AUDIO_BYTES_PER_S * length
    fitted = min(video, upload_limit)
    return int(video + audio + fitted)
