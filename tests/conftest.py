"""Shared fixtures: generated media with known content, and decoding helpers."""

from __future__ import annotations

import logging
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline import settings as pipeline_settings
from pipeline.bench import samples
from pipeline.ffmpeg import ffmpeg_exe

# Tests choose their language model: unset, every script in every test would be written by the
# embedded 1.5B model (seconds to minutes each). Tests of the models set REELBOT_LM themselves.
os.environ.setdefault("REELBOT_LM", "off")

# Colours of the generated sources: distinct in every channel so a frame tells which it is.
COLOURS = {"red": (255, 0, 0), "blue": (0, 0, 255), "green": (0, 200, 0), "magenta": (255, 0, 255)}


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small sources made once per session: clips of known colours, rotated, photo, GIF, sound."""
    d = tmp_path_factory.mktemp("media")
    samples.colour_clip(str(d / "red.mp4"), "red", 3.0, (320, 180), audio=True)
    samples.colour_clip(str(d / "blue.mp4"), "blue", 3.0, (320, 180))
    # A phone held upright: stored landscape with a white box in the stored top-left corner.
    samples.colour_clip(str(d / "portrait.mp4"), "red", 2.0, (320, 180), rotate=90, label="box")
    samples.photo(str(d / "green.jpg"), COLOURS["green"], (640, 480))
    samples.animated_gif(str(d / "magenta.gif"), [COLOURS["magenta"]] * 2, seconds=0.5)
    samples.speech_like_wav(str(d / "narration.wav"), 4.0, seed=3)
    samples.tone_wav(str(d / "music.wav"), 2.0, freq=220.0, level=0.5)
    return d


def frame_at(path: str | os.PathLike[str], t: float) -> np.ndarray:
    """The decoded RGB frame shown at `t` seconds."""
    with av.open(os.fspath(path)) as c:
        best = None
        for frame in c.decode(video=0):
            if frame.time is not None and frame.time > t + 1e-6:
                break
            best = frame
        assert best is not None
        return best.to_ndarray(format="rgb24")


def mean_rgb(img: np.ndarray) -> tuple[float, float, float]:
    m = img.reshape(-1, 3).mean(axis=0)
    return float(m[0]), float(m[1]), float(m[2])


def closest_colour(img: np.ndarray) -> str:
    rgb = np.array(mean_rgb(img))
    return min(COLOURS, key=lambda k: float(np.abs(rgb - np.array(COLOURS[k])).sum()))


def loudness(path: str | os.PathLike[str]) -> tuple[float, float]:
    """Integrated loudness (LUFS) and true peak (dBTP) measured by ffmpeg's ebur128."""
    done = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostats", "-i", os.fspath(path), "-map", "0:a",
         "-af", "ebur128=peak=true", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    summary = done.stderr[done.stderr.rfind("Summary:") :]
    i = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))  # type: ignore[union-attr]
    peak = float(re.search(r"Peak:\s+(-?[\d.inf]+) dBFS", summary).group(1))  # type: ignore[union-attr]
    return i, peak


@pytest.fixture(autouse=True)
def _restore_environ() -> Iterator[None]:
    """Undo any environment change a test (or a pipeline it built) made, so none leaks on."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Each test reads the pipeline settings afresh: the snapshot is taken on the test's first
    `settings()` call, so a `monkeypatch.setenv` before it applies. A test that changes a
    variable after that calls `pipeline.settings.reset()` or uses `settings.override(...)`.
    Pillow's decompression-bomb limit follows the photo cap (`pipeline.media.pillow_limits`,
    process-wide by design: one process, one snapshot), so a test's small cap is undone too."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    pipeline_settings.reset()
    yield
    pipeline_settings.reset()
    Image.MAX_IMAGE_PIXELS = limit


@pytest.fixture(autouse=True)
def _no_error_logs(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """Fail a test that logs an ERROR from reelbot's own code unless marked `logs_errors`."""
    caplog.set_level(logging.WARNING)
    yield
    if request.node.get_closest_marker("logs_errors"):
        return
    errors = [
        r
        for r in caplog.get_records("call")
        if r.levelno >= logging.ERROR and r.name.startswith(("pipeline", "bot"))
    ]
    if errors:
        pytest.fail("unexpected ERROR logs: " + "; ".join(r.getMessage() for r in errors))
