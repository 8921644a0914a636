"""Running the ffmpeg binary: where it is, progress as a fraction, cancel, typed failures, and
the guarantees every child process gets here.

- **No wait is forever.** `run_ffmpeg` has a watchdog: ffmpeg's `-progress` report (frame and
  out_time) must keep advancing - a run whose report stands still for `stall_after` seconds, or
  that runs past `time_limit`, is killed and raises `RenderTimeout`. The bundled ffmpeg was seen
  deadlocking with no CPU use (README, "Child processes and the renderer"); a sleeping process
  never exits by itself. `run_tool` is `subprocess.run` with a timeout that also kills the
  process group.
- **Children die with their parent.** Each child gets its own process group and Linux's
  parent-death signal (SIGKILL), so a SIGKILLed bot leaves no ffmpeg behind still writing a file
  the restarted bot is about to write too.
"""

from __future__ import annotations

import collections
import ctypes
import functools
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from pipeline.errors import Cancelled, RenderError, RenderTimeout
from pipeline.settings import settings

log = logging.getLogger(__name__)

ProgressFn = Callable[[float], None]

# Limits for runs whose callers do not know better: short conversions (a TTS file, a table).
DEFAULT_STALL_S = 60.0
DEFAULT_LIMIT_S = 600.0

_PR_SET_PDEATHSIG = 1


@functools.cache
def _libc() -> Any:
    """libc for prctl, loaded in the parent (a forked child should not run the loader)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _die_with_parent(nice: int = 0) -> Callable[[], None]:
    """A `preexec_fn` asking the kernel to SIGKILL the child when its parent dies, and to run
    it `nice` steps below the parent's priority.

    The signal follows the *thread* that forked, so callers keep the spawning thread alive until
    the child is reaped (every helper here waits for its child in the same call). If the parent
    is already gone when the child runs this (a kill between fork and prctl), the child exits.
    """
    libc = _libc()
    parent = os.getpid()

    def setup() -> None:
        if nice > 0:
            os.nice(nice)
        if libc is not None:
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
            if os.getppid() != parent:
                os._exit(1)

    return setup


def popen(cmd: Sequence[str], *, nice: int = 0, **kw: Any) -> subprocess.Popen[Any]:
    """`subprocess.Popen` in a new process group, killed by the kernel if this process dies,
    `nice` steps below this process's priority (0: the same)."""
    return subprocess.Popen(cmd, process_group=0, preexec_fn=_die_with_parent(nice), **kw)


def kill(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL the child's whole process group and reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
    proc.wait()


def run_tool(
    cmd: Sequence[str], *, timeout: float, input: bytes | str | None = None, text: bool = False
) -> subprocess.CompletedProcess[Any]:
    """`subprocess.run(cmd, capture_output=True)` through `popen`; past `timeout` the process
    group is killed and `subprocess.TimeoutExpired` raised, as `subprocess.run` does."""
    kw: dict[str, Any] = {"encoding": "utf-8", "errors": "replace"} if text else {}
    stdin = subprocess.PIPE if input is not None else subprocess.DEVNULL
    proc = popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except BaseException:
        kill(proc)
        raise
    return subprocess.CompletedProcess(list(cmd), proc.returncode, out, err)


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
        done = run_tool(probe, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def limits_for(duration: float, slowness: float = 1.0) -> tuple[float, float]:
    """(stall_after, time_limit) for a run producing `duration` seconds of output.

    `slowness` scales both for heavier inputs (the renderer passes the largest source's
    megapixels relative to 1080p). A 1080p render runs at about real time on two busy cores;
    the overall limit allows ~20x that, and progress may stand still for 45 s (x264's lookahead
    and a seek to a distant keyframe hold the first frames back for a few seconds) plus 1 s per
    second of output.
    """
    k = max(slowness, 1.0)
    return (45.0 + duration) * k, (120.0 + 20.0 * duration) * k


def render_nice() -> int:
    """How far below this process a render's ffmpeg runs (`REELBOT_RENDER_NICE`, default 10)."""
    return settings().render_nice


def run_ffmpeg(
    args: Sequence[str],
    *,
    duration: float | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    what: str = "ffmpeg",
    log_lines: int = 30,
    stall_after: float | None = None,
    time_limit: float | None = None,
    nice: int = 0,
) -> None:
    """Run ffmpeg with `args` (without the binary), reporting progress 0..1 against `duration`,
    `nice` steps below this process's priority (renders: `Settings.render_nice`).

    Progress comes from `-progress pipe:1` (out_time_us, frame); the log (stderr) is kept to its
    last lines for the error. Setting `cancel` ends the process and raises `Cancelled`. If the
    progress report does not advance for `stall_after` seconds, or the run takes longer than
    `time_limit` (defaults: `limits_for(duration)`, else 60 s / 600 s), ffmpeg is killed and
    `RenderTimeout` raised.
    """
    if duration:
        d_stall, d_limit = limits_for(duration)
    else:
        d_stall, d_limit = DEFAULT_STALL_S, DEFAULT_LIMIT_S
    stall_s = stall_after if stall_after is not None else d_stall
    limit_s = time_limit if time_limit is not None else d_limit
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-progress", "pipe:1", "-nostats",
           "-stats_period", "0.5", *args]  # fmt: skip
    log.debug("running %s", " ".join(cmd))
    tail: collections.deque[str] = collections.deque(maxlen=log_lines)
    proc = popen(
        cmd,
        nice=nice,
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

    began = time.monotonic()
    advanced = [began]  # when the progress report last moved (written by the reading loop)
    timed_out: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            now = time.monotonic()
            if cancel is not None and cancel.is_set():
                proc.terminate()
                return
            if now - advanced[0] > stall_s:
                timed_out.append("stalled")
            elif now - began > limit_s:
                timed_out.append("too_long")
            if timed_out:
                log.warning("%s: %s after %.0f s, killing ffmpeg", what, timed_out[0], now - began)
                kill(proc)
                return

    watcher = threading.Thread(target=watch, name="ffmpeg-watchdog", daemon=True)
    watcher.start()

    assert proc.stdout is not None
    last = -1.0
    frame, out_us = -1, -1
    try:
        for line in proc.stdout:
            key, _, value = line.strip().partition("=")
            if key not in ("frame", "out_time_us"):
                continue
            try:
                v = int(value)
            except ValueError:
                continue  # "N/A" before the first frame
            if key == "frame" and v > frame:
                frame = v
                advanced[0] = time.monotonic()
            elif key == "out_time_us" and v > out_us:
                out_us = v
                advanced[0] = time.monotonic()
                if progress is not None and duration:
                    frac = min(max(v / 1e6 / duration, 0.0), 1.0)
                    if frac - last >= 0.01:
                        last = frac
                        progress(frac)
        code = proc.wait()
    finally:
        done.set()
        kill(proc)
        reader.join(timeout=5)
        watcher.join(timeout=1)
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"{what} cancelled")
    if timed_out:
        reason = timed_out[0]
        limit = stall_s if reason == "stalled" else limit_s
        why = "made no progress for" if reason == "stalled" else "ran longer than"
        raise RenderTimeout(f"{what}: ffmpeg {why} {limit:.0f} s and was stopped", reason,
                            "\n".join(tail))  # fmt: skip
    if code != 0:
        raise RenderError(f"{what} failed (exit code {code})", "\n".join(tail), code)
    if progress is not None:
        progress(1.0)
