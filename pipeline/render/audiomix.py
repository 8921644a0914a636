"""The sound of a plan, mixed and measured before the picture is rendered.

Narration, music (looped, ducked under the narration by a sidechain compressor) and the source
sound the plan keeps (`Segment.volume`, ducked the same way, so it is heard in the pauses) are
mixed into one WAV of the video's length, and its loudness is measured in the same
short audio-only ffmpeg run, so the render pass can normalise *linearly* to the platforms'
-14 LUFS / -1 dBTP (single-pass loudnorm is dynamic and misses the target by a few LU on short
speech).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass

from pipeline.errors import Cancelled, RenderError, RenderTimeout
from pipeline.ffmpeg import ffmpeg_exe, kill, limits_for, popen, render_nice
from pipeline.plan import EditPlan

# --- audio -----------------------------------------------------------------------------------

# Ducking (music and kept footage sound under the narration): the voice over the threshold
# (amplitude) pulls the ducked track down by up to ratio:1; the release brings it back within
# a pause between sentences. The footage's own sound comes back faster than music: a laugh in
# a half-second pause must be heard, while music rising and falling that fast would pump.
DUCK_THRESHOLD = 0.02
DUCK_RATIO = 12
DUCK_ATTACK_MS = 15
MUSIC_RELEASE_MS = 400
SOURCE_RELEASE_MS = 200


@dataclass(frozen=True, slots=True)
class Loudness:
    """What ffmpeg's loudnorm measured (its first pass), fed to the second."""

    i: float
    tp: float
    lra: float
    thresh: float
    offset: float


def mix_audio(
    plan: EditPlan, tmp: str, cancel: threading.Event | None
) -> tuple[str, Loudness] | None:
    """Mix every sound of the plan into one WAV of the video's length and measure its loudness."""
    total = plan.duration
    inputs: list[str] = []
    chains: list[str] = []
    labels: list[str] = []
    narration = [t for t in plan.audio if t.role == "narration"]
    music = [t for t in plan.audio if t.role == "music"]
    k = 0
    narr_label = None
    for tr in narration:
        inputs += ["-i", tr.path]
        chains.append(
            f"[{k}:a]aresample=48000,aformat=channel_layouts=stereo,"
            f"volume={tr.gain_db}dB,adelay={int(tr.start * 1000)}:all=1[narr]"
        )
        narr_label = "narr"
        k += 1
    for m, tr in enumerate(music):
        if tr.loop:
            inputs += ["-stream_loop", "-1"]
        inputs += ["-i", tr.path]
        chains.append(
            f"[{k}:a]aresample=48000,aformat=channel_layouts=stereo,volume={tr.gain_db}dB,"
            f"adelay={int(tr.start * 1000)}:all=1,atrim=end={total:.3f}[mus{m}]"
        )
        k += 1
    t = 0.0
    sources: list[str] = []
    for seg in plan.segments:
        src = plan.sources[seg.source]
        if seg.volume > 0 and src.has_audio and src.kind == "video":
            inputs += ["-ss", f"{seg.start:.3f}", "-t", f"{seg.duration:.3f}", "-i", src.path]
            chains.append(
                f"[{k}:a]aresample=48000,aformat=channel_layouts=stereo,volume={seg.volume},"
                f"asetpts=PTS-STARTPTS,adelay={int(t * 1000)}:all=1[src{k}]"
            )
            sources.append(f"[src{k}]")
            k += 1
        t += seg.duration
    if k == 0:
        return None
    if len(sources) > 1:
        # The kept pieces never overlap: one track of the footage's own sound.
        chains.append(f"{''.join(sources)}amix=inputs={len(sources)}:normalize=0[srcall]")
    elif sources:
        chains.append(f"{sources[0]}anull[srcall]")
    # The narration keys a compressor on each ducked track (music, the footage's own sound):
    # they drop under the voice and come back in the pauses between sentences.
    ducked = [f"mus{m}" for m, tr in enumerate(music) if tr.duck]
    plain = [f"[mus{m}]" for m, tr in enumerate(music) if not tr.duck]
    if sources:
        ducked.append("srcall")
    if narr_label is not None and ducked:
        # Padded to the video's length: the compressor stops with its shorter input, and the
        # tail after the last word must keep the music and the footage's sound.
        keys = "".join(f"[narr_sc{d}]" for d in range(len(ducked)))
        chains.append(f"[narr]apad=whole_dur={total:.3f},asplit={len(ducked) + 1}[narr_mix]{keys}")
        labels.append("[narr_mix]")
        for d, name in enumerate(ducked):
            release = SOURCE_RELEASE_MS if name == "srcall" else MUSIC_RELEASE_MS
            chains.append(
                f"[{name}][narr_sc{d}]sidechaincompress=threshold={DUCK_THRESHOLD}:"
                f"ratio={DUCK_RATIO}:attack={DUCK_ATTACK_MS}:release={release}:"
                f"makeup=1[duck{d}]"
            )
            labels.append(f"[duck{d}]")
    else:
        if narr_label is not None:
            labels.append("[narr]")
        labels += [f"[{name}]" for name in ducked]
    labels += plain
    mix = (
        f"{''.join(labels)}amix=inputs={len(labels)}:normalize=0:duration=longest,"
        if len(labels) > 1
        else f"{labels[0]}anull,"
    )
    chains.append(
        f"{mix}apad=whole_dur={total:.3f},atrim=end={total:.3f},asplit[mixout][meas];"
        f"[meas]loudnorm=I={plan.output.loudness_lufs}:TP={plan.output.true_peak_db}:"
        f"LRA=11:print_format=json[measured]"
    )
    wav = os.path.join(tmp, "mix.wav")
    args = [*inputs, "-filter_complex", ";".join(chains),
            "-map", "[mixout]", "-c:a", "pcm_f32le", wav,
            "-map", "[measured]", "-f", "null", "-"]  # fmt: skip
    log_lines: list[str] = []
    _run_capturing(args, total, cancel, log_lines)
    stats = _parse_loudnorm(log_lines)
    return wav, stats


def _run_capturing(
    args: list[str], total: float, cancel: threading.Event | None, sink: list[str]
) -> None:
    """Run ffmpeg keeping its whole log (the loudness report is in it), with a time limit.

    An audio-only pass runs at tens of times real time: its limit is the video pass's overall
    limit for the same length, far more than it needs, but never forever.
    """
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "info", *args]
    _, limit = limits_for(total)
    deadline = time.monotonic() + limit
    proc = popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                 text=True, encoding="utf-8", errors="replace", nice=render_nice())  # fmt: skip
    try:
        while True:
            try:
                _, err = proc.communicate(timeout=0.25)
                break
            except subprocess.TimeoutExpired:
                if cancel is not None and cancel.is_set():
                    kill(proc)
                    raise Cancelled("audio mix cancelled") from None
                if time.monotonic() > deadline:
                    kill(proc)
                    raise RenderTimeout(
                        f"audio mix: ffmpeg ran longer than {limit:.0f} s and was stopped",
                        "too_long",
                    ) from None
    finally:
        kill(proc)
    sink.extend(err.splitlines())
    if proc.returncode != 0:
        raise RenderError("audio mix failed", "\n".join(sink[-30:]), proc.returncode)


def _parse_loudnorm(lines: list[str]) -> Loudness:
    text = "\n".join(lines)
    match = re.search(r"\{[^{}]*\"input_i\"[^{}]*\}", text)
    if not match:
        raise RenderError("loudness measurement missing", "\n".join(lines[-30:]))
    data = json.loads(match.group(0))

    def num(key: str, default: float) -> float:
        try:
            v = float(data[key])
        except (KeyError, ValueError):
            return default
        return v if math.isfinite(v) else default

    return Loudness(
        i=num("input_i", -70.0),
        tp=num("input_tp", -70.0),
        lra=num("input_lra", 0.0),
        thresh=num("input_thresh", -70.0),
        offset=num("target_offset", 0.0),
    )
