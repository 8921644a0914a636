"""`reelbot bench render`: reelbot's renderer against a hand-written ffmpeg command and moviepy.

All three make the same 30 s 1080x1920 short (6 shots x 5 s from 3 x 20 s 1080p clips, one
caption per shot, one of them Chinese, a 30 s narration). Each way runs in its own child process
so its wall time, CPU time (the child and everything it waited for, ffmpeg included) and peak RSS
are its own. Medians of `--runs` runs are reported; the last line is the one the targets read.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.bench import samples
from pipeline.cjk import font_file
from pipeline.ffmpeg import ffmpeg_exe, has_encoder
from pipeline.jsonfiles import atomic_path
from pipeline.media import probe
from pipeline.plan import (
    AudioTrack,
    CaptionCue,
    EditPlan,
    OutputSpec,
    Rect,
    Segment,
    cover_rect,
)
from pipeline.render.subtitles import build_ass
from pipeline.settings import override, settings

CLIPS = (("testsrc2", 20.0), ("gradients", 20.0), ("life", 20.0))
SHOT_STARTS = (2.0, 3.0, 6.5, 9.0, 11.0, 13.5)
CAPTIONS = (
    "Three things nobody tells you",
    "第一：先把灯光打好，画面立刻高级",
    "Second, move the camera slowly",
    "Third, cut on the beat of the voice",
    "Keep every shot under five seconds",
    "Follow for part two",
)


# Limits on the benchmark's own child processes (a variant, an SSIM comparison, an input).
RUN_TIMEOUT_S = 1800.0
GENERATE_TIMEOUT_S = 900.0


@dataclass(frozen=True, slots=True)
class Run:
    wall: float
    cpu: float
    rss_mb: float


def _cache_dir() -> Path:
    d = settings().cache_dir / "bench-render-v1"
    d.mkdir(parents=True, exist_ok=True)
    return d


# Three kinds of motion: a moving test card, drifting gradients, an evolving cellular automaton
# (blocky, upscaled) - each with temporal grain, like phone footage, so nothing is trivially
# cheap to decode or encode.
_SOURCES = {
    "testsrc2": "testsrc2=s=1920x1080:r=30",
    "gradients": "gradients=s=1920x1080:r=30:speed=0.03:n=4",
    "life": "life=s=480x270:r=30:ratio=0.2:mold=25:life_color=#33cc66:death_color=#202040:"
    "mold_color=#aa6622,scale=1920:1080:flags=neighbor",
}


def make_inputs(seconds: float = 30.0) -> tuple[list[str], str]:
    """The three 1080p clips (kept in the cache) and a narration WAV of `seconds`."""
    d = _cache_dir()
    clips = []
    for name, dur in CLIPS:
        path = d / f"{name}.mp4"
        if not path.exists():
            with atomic_path(path, suffix=".mp4") as tmp:
                cmd = [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", _SOURCES[name],
                       "-t", str(dur), "-vf", "noise=alls=12:allf=t+u,format=yuv420p",
                       "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-g", "60",
                       str(tmp)]  # fmt: skip
                subprocess.run(cmd, check=True, timeout=GENERATE_TIMEOUT_S)
        clips.append(str(path))
    wav = d / f"narration-{int(seconds)}.wav"
    if not wav.exists():
        samples.speech_like_wav(str(wav), seconds, seed=7)
    return clips, str(wav)


def make_8k_clip(seconds: float = 6.0) -> str:
    """A 7680x4320 H.264 clip with motion and grain (kept in the cache): the memory case."""
    path = _cache_dir() / f"8k-{int(seconds)}.mp4"
    if not path.exists():
        tmp = str(path) + ".tmp.mp4"
        cmd = [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
               "testsrc2=s=960x540:r=30,noise=alls=12:allf=t+u,scale=7680:4320:flags=bicubic",
               "-t", str(seconds), "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset",
               "ultrafast", "-crf", "26", "-g", "30", tmp]  # fmt: skip
        subprocess.run(cmd, check=True, timeout=GENERATE_TIMEOUT_S)
        os.replace(tmp, path)
    return str(path)


def build_8k_plan(clip: str, narration: str) -> EditPlan:
    """Six 1.5 s shots of one 8K clip (different windows and times), 9 s, no captions."""
    # An 8K file is over the per-frame cap a user's footage meets at probe (4K by default):
    # this measures what the renderer itself does with a source that large, so the cap is
    # lifted for this one probe.
    with override(max_frame_pixels=7680 * 4320):
        src = probe(clip)
    out = OutputSpec(width=1080, height=1920, fps=30.0, encoder="auto")
    segs = []
    for i in range(6):
        start = (i * 0.7) % max(src.duration - 1.6, 0.1)
        x = (i % 3) * 0.3
        segs.append(Segment(0, start, start + 1.5, Rect(x, 0.0, 0.31641, 1.0)))
    return EditPlan(sources=(src,), segments=tuple(segs), output=out,
                    audio=(AudioTrack(narration, "narration"),))  # fmt: skip


def build_plan(clips: list[str], narration: str, shots: int = 6) -> EditPlan:
    """6 shots x 5 s (12 for the 60 s memory run), centre 9:16 windows, one caption each."""
    sources = tuple(probe(c) for c in clips)
    out = OutputSpec(width=1080, height=1920, fps=30.0, encoder="auto")
    segs, cues = [], []
    for i in range(shots):
        src = sources[i % len(sources)]
        start = SHOT_STARTS[i % len(SHOT_STARTS)] + (i // len(SHOT_STARTS)) * 0.5
        segs.append(Segment(i % len(sources), start, start + 5.0,
                            cover_rect(src.width, src.height, 1080, 1920)))  # fmt: skip
        cues.append(CaptionCue(CAPTIONS[i % len(CAPTIONS)], i * 5.0 + 0.2, i * 5.0 + 4.8))
    return EditPlan(sources=sources, segments=tuple(segs), output=out, captions=tuple(cues),
                    audio=(AudioTrack(narration, "narration"),))  # fmt: skip


# --- the three ways --------------------------------------------------------------------------


def reference_args(plan: EditPlan, ass: str, out: str) -> list[str]:
    """(b) The hand-written command the issue describes, as one would type it."""
    args = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"]
    chains = []
    for k, seg in enumerate(plan.segments):
        src = plan.sources[seg.source]
        args += ["-ss", f"{seg.start}", "-t", f"{seg.duration}", "-i", src.path]
        w = round(src.height * 9 / 16 / 2) * 2
        chains.append(f"[{k}:v]crop={w}:{src.height},scale=1080:1920,setsar=1[v{k}]")
    n = len(plan.segments)
    args += ["-i", plan.audio[0].path]
    chains.append("".join(f"[v{k}]" for k in range(n)) + f"concat=n={n}:v=1:a=0,"
                  f"subtitles={ass}[v]")  # fmt: skip
    args += ["-filter_complex", ";".join(chains), "-map", "[v]", "-map", f"{n}:a",
             "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
             "-c:a", "aac", "-b:a", "128k", "-shortest", out]  # fmt: skip
    return args


def run_moviepy(plan: EditPlan, out: str) -> None:
    """(c) moviepy 2.2 doing the same job idiomatically, with its defaults."""
    from moviepy import (
        AudioFileClip,
        CompositeVideoClip,
        TextClip,
        VideoFileClip,
        concatenate_videoclips,
    )

    font = font_file()
    parts, opened = [], []
    for seg, cue in zip(plan.segments, plan.captions, strict=True):
        src = plan.sources[seg.source]
        clip = VideoFileClip(src.path)
        opened.append(clip)
        w = round(src.height * 9 / 16 / 2) * 2
        shot = (
            clip.subclipped(seg.start, seg.end)
            .cropped(x_center=src.width / 2, width=w, height=src.height)
            .resized((1080, 1920))
        )
        text = (
            TextClip(
                font=font,
                text=cue.text,
                font_size=70,
                color="white",
                stroke_color="black",
                stroke_width=4,
                method="caption",
                size=(940, None),
            )
            .with_duration(cue.end - cue.start)
            .with_start(cue.start - (cue.start // 5.0) * 5.0)
            .with_position(("center", 1400))
        )
        parts.append(CompositeVideoClip([shot, text], size=(1080, 1920)))
    video = concatenate_videoclips(parts).with_audio(AudioFileClip(plan.audio[0].path))
    # moviepy writes the sound to a temporary file, by default in the current directory.
    with tempfile.TemporaryDirectory(prefix="reelbot-moviepy-") as tmp:
        video.write_videofile(out, fps=30, logger=None, temp_audiofile_path=tmp)
    for c in opened:
        c.close()


def _child(variant: str, plan_path: str, out: str) -> None:
    plan = EditPlan.load(plan_path)
    if variant == "reelbot":
        from pipeline.render.renderer import render

        render(plan, out)
    elif variant == "ffmpeg":
        ass = os.path.join(os.path.dirname(out), "ref.ass")
        with open(ass, "w", encoding="utf-8") as fh:
            fh.write(build_ass(plan))
        subprocess.run(reference_args(plan, ass, out), check=True, timeout=RUN_TIMEOUT_S)
    elif variant == "moviepy":
        run_moviepy(plan, out)
    elif variant == "reelbot-nullenc":
        # The same pass with the encoder swapped for a null sink: decode + filter cost alone.
        from pipeline.ffmpeg import run_ffmpeg
        from pipeline.render.audiomix import mix_audio
        from pipeline.render.renderer import build_command

        with tempfile.TemporaryDirectory() as tmp:
            ass = os.path.join(tmp, "c.ass")
            with open(ass, "w", encoding="utf-8") as fh:
                fh.write(build_ass(plan))
            audio = mix_audio(plan, tmp, None)
            args = build_command(plan, ass, audio, out, "libx264")
            i = args.index("-map")
            run_ffmpeg([*args[:i], "-map", "[vout]", "-map", "[aout]", "-f", "null", "-"])
    else:
        raise SystemExit(f"unknown variant {variant}")


def _measure(variant: str, plan_path: str, out: str) -> Run:
    began = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.bench.render", "--child", variant, plan_path, out]
    )
    # No variant may run forever: past the limit it is killed (and reported as failed).
    timer = threading.Timer(RUN_TIMEOUT_S, proc.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    wall = time.monotonic() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} failed with exit code {proc.returncode}")
    # wait4's usage covers the child and the descendants it reaped (ffmpeg); ru_maxrss is the
    # largest of them, in KiB on Linux.
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def ssim(a: str, b: str) -> float:
    done = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", a, "-i", b, "-lavfi", "[0:v][1:v]ssim", "-f", "null",
         "-"], capture_output=True, text=True, check=True, timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    m = re.search(r"All:([0-9.]+)", done.stderr)
    if not m:
        raise RuntimeError("no SSIM in ffmpeg output")
    return float(m.group(1))


def _median(runs: list[Run]) -> Run:
    return Run(
        statistics.median(r.wall for r in runs),
        statistics.median(r.cpu for r in runs),
        max(r.rss_mb for r in runs),
    )


def bench(runs: int, skip_moviepy: bool, keep: str | None) -> int:
    clips, wav = make_inputs(30.0)
    work = keep or tempfile.mkdtemp(prefix="reelbot-bench-")
    os.makedirs(work, exist_ok=True)
    plan = build_plan(clips, wav)
    plan_path = os.path.join(work, "plan.json")
    plan.save(plan_path)
    nvenc = has_encoder("h264_nvenc")
    print(f"encoder: {'h264_nvenc (NVIDIA GPU found)' if nvenc else 'libx264 (CPU)'}", flush=True)
    variants = ["reelbot", "ffmpeg"] + ([] if skip_moviepy else ["moviepy"])
    results: dict[str, list[Run]] = {v: [] for v in variants}
    for i in range(runs):
        for v in variants:
            r = _measure(v, plan_path, os.path.join(work, f"{v}.mp4"))
            results[v].append(r)
            print(f"run {i + 1} {v:8s} wall={r.wall:6.1f}s cpu={r.cpu:6.1f}s "
                  f"rss={r.rss_mb:6.0f}MB", flush=True)  # fmt: skip
    med = {v: _median(rs) for v, rs in results.items()}
    split = _measure("reelbot-nullenc", plan_path, os.path.join(work, "null.mp4"))
    a, b = os.path.join(work, "reelbot.mp4"), os.path.join(work, "ffmpeg.mp4")
    score = ssim(a, b)
    size_a, size_b = os.path.getsize(a), os.path.getsize(b)
    # Memory target is for a 60 s render: 12 shots.
    clips60, wav60 = make_inputs(60.0)
    plan60 = build_plan(clips60, wav60, shots=12)
    p60 = os.path.join(work, "plan60.json")
    plan60.save(p60)
    r60 = _measure("reelbot", p60, os.path.join(work, "reelbot60.mp4"))
    # Memory of an 8K source: six segments of one 7680x4320 clip.
    plan8k = build_8k_plan(make_8k_clip(), wav)
    p8k = os.path.join(work, "plan8k.json")
    plan8k.save(p8k)
    r8k = _measure("reelbot", p8k, os.path.join(work, "reelbot8k.mp4"))
    for v, r in med.items():
        print(f"median {v:8s} wall={r.wall:6.1f}s cpu={r.cpu:6.1f}s peak_rss={r.rss_mb:6.0f}MB")
    enc_cpu = med["reelbot"].cpu - split.cpu
    print(f"reelbot cpu split: decode+filter={split.cpu:.1f}s encode+mux={enc_cpu:.1f}s")
    print(f"file size: reelbot={size_a / 1e6:.2f}MB ffmpeg={size_b / 1e6:.2f}MB "
          f"({100 * (size_a / size_b - 1):+.0f}%)")  # fmt: skip
    print(f"60 s render: wall={r60.wall:.1f}s peak_rss={r60.rss_mb:.0f}MB")
    print(f"8K source (6 segments, 9 s): wall={r8k.wall:.1f}s peak_rss={r8k.rss_mb:.0f}MB")
    summary = {
        "render_ratio_vs_ffmpeg": med["reelbot"].wall / med["ffmpeg"].wall,
        "render_ratio_vs_moviepy": (
            med["reelbot"].wall / med["moviepy"].wall if "moviepy" in med else float("nan")
        ),
        "ssim": score,
        "peak_rss_mb": r60.rss_mb,
        "peak_rss_8k_mb": r8k.rss_mb,
    }
    with open(os.path.join(work, "bench.json"), "w") as fh:
        json.dump({k: {"wall": r.wall, "cpu": r.cpu, "rss": r.rss_mb} for k, r in med.items()}
                  | {"summary": summary}, fh, indent=2)  # fmt: skip
    print(
        f"render_ratio_vs_ffmpeg={summary['render_ratio_vs_ffmpeg']:.2f} "
        f"render_ratio_vs_moviepy={summary['render_ratio_vs_moviepy']:.2f} "
        f"ssim={score:.3f} peak_rss_mb={r60.rss_mb:.0f} peak_rss_8k_mb={r8k.rss_mb:.0f}"
    )
    return 0


if __name__ == "__main__":
    # The timed variants run as child processes (`--child`) so each one's peak RSS is its own.
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        from pipeline.cli import main

        sys.exit(main(["bench", "render", *sys.argv[1:]]))
