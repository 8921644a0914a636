"""Running the ffmpeg binary: where it is, progress as a fraction, cancel, and typed failures."""

from __future__ import annotations

import collections
import functools
import logging
import shutil
import subprocess
import threading
from collections.abc import Callable, Sequence

from pipeline.errors import Cancelled, RenderError
from pipeline.settings import settings

log = logging.getLogger(__name__)

ProgressFn = Callable[[float], None]


@functools.cache
def ffmpeg_exe() -> str:
    """The ffmpeg to run: $REELBOT_FFMPEG, else the static build imageio-ffmpeg ships.

    The shipped build is pinned with the package and has everything the renderer needs
    (libx264, libass, loudnorm, sidechaincompress, h264_nvenc); a system ffmpeg may not.
    """
    env = settings().ffmpeg
    if env:
        return env
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        found = shutil.which("ffmpeg")
        if found:
            return found
        raise RenderError("no ffmpeg found: install imageio-ffmpeg or set REELBOT_FFMPEG") from None


@functools.cache
def has_encoder(name: str) -> bool:
    """Whether this ffmpeg can actually open encoder `name` here (e.g. NVENC needs a GPU)."""
    probe = [
        ffmpeg_exe(), "-hide_banner", "-v", "error", "-f", "lavfi", "-i",
        "color=black:s=256x256:d=0.1", "-frames:v", "1", "-c:v", name, "-f", "null", "-",
    ]  # fmt: skip
    try:
        done = subprocess.run(probe, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def run_ffmpeg(
    args: Sequence[str],
    *,
    duration: float | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    what: str = "ffmpeg",
    log_lines: int = 30,
) -> None:
    """Run ffmpeg with `args` (without the binary), reporting progress 0..1 against `duration`.

    Progress comes from `-progress pipe:1` (out_time_us); the log (stderr) is kept to its last
    lines for the error. Setting `cancel` ends the process and raises `Cancelled`.
    """
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-progress", "pipe:1", "-nostats",
           *args]  # fmt: skip
    log.debug("running %s", " ".join(cmd))
    tail: collections.deque[str] = collections.deque(maxlen=log_lines)
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        encoding="utf-8",
        errors="replace",
    )

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            tail.append(line.rstrip())

    reader = threading.Thread(target=read_stderr, name="ffmpeg-stderr", daemon=True)
    reader.start()

    stop_watch = threading.Event()

    def watch_cancel() -> None:
        assert cancel is not None
        while not stop_watch.is_set():
            if cancel.wait(0.2):
                proc.terminate()
                return

    watcher = None
    if cancel is not None:
        watcher = threading.Thread(target=watch_cancel, name="ffmpeg-cancel", daemon=True)
        watcher.start()

    assert proc.stdout is not None
    last = -1.0
    try:
        for line in proc.stdout:
            key, _, value = line.strip().partition("=")
            if key == "out_time_us" and progress is not None and duration:
                try:
                    frac = min(max(int(value) / 1e6 / duration, 0.0), 1.0)
                except ValueError:
                    continue
                if frac - last >= 0.01:
                    last = frac
                    progress(frac)
        code = proc.wait()
    finally:
        stop_watch.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
        if watcher is not None:
            watcher.join(timeout=1)
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"{what} cancelled")
    if code != 0:
        raise RenderError(f"{what} failed (exit code {code})", "\n".join(tail), code)
    if progress is not None:
        progress(1.0)
