"""Background music a user gives (`reelbot make --music`, an audio file sent to the bot): checked
and measured, so it is refused with a clear message when it is no sound, and sits at one level
under the narration whatever its mastering."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.errors import MediaError

# The RMS level (dBFS) the music is brought to before ducking: a commercially mastered track
# (about -14 dBFS RMS) gets the -16 dB the fixed gain used to give it.
MUSIC_LEVEL_DB = -30.0
MIN_GAIN_DB, MAX_GAIN_DB = -30.0, 12.0
MEASURED_S = 60.0  # the level is measured over the first minute (the music loops anyway)
MIN_SECONDS = 0.5
SILENT_DB = -60.0


@dataclass(frozen=True, slots=True)
class Music:
    """A usable music file: how long it plays and how loud it is."""

    path: str
    seconds: float
    level_db: float  # RMS over the first `MEASURED_S` seconds, dBFS

    @property
    def gain_db(self) -> float:
        """The gain that brings it to `MUSIC_LEVEL_DB`."""
        return round(min(MAX_GAIN_DB, max(MIN_GAIN_DB, MUSIC_LEVEL_DB - self.level_db)), 1)


def check_music(path: str) -> Music:
    """Decode the start of `path` and measure it; `MediaError` (reason not_audio) when it has
    no playable sound (not audio, damaged, shorter than half a second, or silent)."""
    import av

    from pipeline.see.sound import SAMPLE_RATE, read_audio

    try:
        samples = read_audio(path, 0.0, MEASURED_S)
        with av.open(path) as container:
            seconds = (
                float(container.duration) / av.time_base
                if container.duration is not None
                else len(samples) / SAMPLE_RATE
            )
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise MediaError(path, "not_audio", str(exc)[:200]) from exc
    if len(samples) < MIN_SECONDS * SAMPLE_RATE:
        raise MediaError(path, "not_audio", "no sound, or shorter than half a second")
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    level = 20 * math.log10(max(rms, 1e-10))
    if level < SILENT_DB:
        raise MediaError(path, "not_audio", "silent")
    return Music(path, round(seconds, 3), round(level, 1))
