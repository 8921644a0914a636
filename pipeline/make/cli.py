"""`reelbot make`, `reelbot demo` and `reelbot bench make`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from pipeline.jsonfiles import atomic_path

DEMO = {
    "en": ("My weekend: coffee, my cat and a rocket launch",
           ("a cup of coffee", "my cat Chelsea", "the rocket launch", "the moon at night")),
    "zh": ("我的周末：咖啡、猫咪和火箭发射",
           ("一杯咖啡", "我的猫咪", "火箭发射", "夜晚的月亮")),
}  # fmt: skip


class _Progress:
    """Stage progress on stderr: one line per stage, percentages on a terminal."""

    def __init__(self) -> None:
        self.stage = ""
        self.began = time.monotonic()
        self.tty = sys.stderr.isatty()

    def __call__(self, stage: str, fraction: float) -> None:
        if stage != self.stage:
            if self.stage and self.tty:
                print(file=sys.stderr)
            self.stage = stage
            if not self.tty:
                print(f"[{time.monotonic() - self.began:5.1f}s] {stage}", file=sys.stderr)
        if self.tty:
            print(f"\r[{time.monotonic() - self.began:5.1f}s] {stage:8s} {fraction:4.0%}",
                  end="", file=sys.stderr, flush=True)  # fmt: skip

    def done(self) -> None:
        if self.tty and self.stage:
            print(file=sys.stderr)


def _brief(args: argparse.Namespace) -> Any:
    from pipeline.brief import Brief, Footage
    from pipeline.plan import OutputSpec, output_size

    captions = list(args.caption or [])
    captions += [""] * (len(args.footage) - len(captions))
    w, h = output_size(args.size)
    return Brief(
        topic=args.topic,
        style=args.style,
        language=args.lang,
        seconds=args.seconds,
        footage=tuple(Footage(os.path.abspath(f), c) for f, c in zip(args.footage, captions)),  # noqa: B905
        notes=args.notes,
        voice=args.voice,
        music=os.path.abspath(args.music) if args.music else None,
        output=OutputSpec(width=w, height=h),
        seed=args.seed,
    )


def _usage(problem: str) -> int:
    print(f"reelbot make: {problem}", file=sys.stderr)
    return 2


def _output_problem(output: str | None) -> str | None:
    """Why `-o` cannot be written, checked before the work (it used to fail after the render)."""
    if not output:
        return None
    if os.path.isdir(output):
        return f"-o {output}: is a folder; give a file name such as {output.rstrip('/')}/out.mp4"
    parent = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(parent):
        return f"-o {output}: the folder {parent} does not exist"
    if not os.access(parent, os.W_OK):
        return f"-o {output}: the folder {parent} is not writable"
    return None


def _check(args: argparse.Namespace) -> int | None:
    """Everything the command line says, checked before any work: an exit status, or None."""
    from pipeline.brief import Brief
    from pipeline.errors import ReelbotError
    from pipeline.media import probe_audio
    from pipeline.plan import output_size
    from pipeline.script.request import SECONDS_RANGE, ScriptRequest, normalise

    if not args.topic or not args.footage:
        return _usage("--topic and --footage are needed (or --resume JOBDIR)")
    if len(args.caption or []) > len(args.footage):
        return _usage("more --caption values than --footage files")
    low, high = SECONDS_RANGE
    if not low <= args.seconds <= high:
        return _usage(f"--seconds {args.seconds}: must be between {low:g} and {high:g}")
    from pipeline.errors import PlanError

    try:
        output_size(args.size)
    except PlanError as exc:
        return _usage(f"--size {args.size}: {exc.problem}")
    try:
        brief = Brief(topic=args.topic, style=args.style, language=args.lang,
                      seconds=args.seconds, notes=args.notes)  # fmt: skip
        normalise(ScriptRequest.from_brief(brief))
        if args.music:
            probe_audio(args.music)
    except ReelbotError as exc:
        flag = "--music " if args.music and getattr(exc, "path", None) == args.music else ""
        return _usage(f"{flag}{exc.message}")
    if args.job_dir and os.path.exists(args.job_dir) and not os.path.isdir(args.job_dir):
        return _usage(f"--job-dir {args.job_dir}: is a file, not a folder")
    problem = _output_problem(args.output)
    return _usage(problem) if problem else None


def _finish(result: Any, output: str | None, progress: _Progress) -> int:
    import shutil

    progress.done()
    video = result.video
    if output:
        # Copied beside the target, then renamed: an interrupted copy leaves no half video.
        part = f"{output}.part"
        try:
            shutil.copyfile(result.video, part)
            os.replace(part, output)
        except OSError as exc:
            if os.path.exists(part):
                os.remove(part)
            print(f"reelbot make: cannot write -o {output}: {exc.strerror or exc}", file=sys.stderr)
            print(f"video: {result.video}")
            return 1
        video = os.path.abspath(output)
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"voice: {result.voice_engine}", file=sys.stderr)
    print(f"job folder: {result.job_dir}", file=sys.stderr)
    print(f"video: {video} ({result.duration:.2f}s {result.width}x{result.height}, "
          f"cover {result.cover})")  # fmt: skip
    return 0


def _make(args: argparse.Namespace) -> int:
    from pipeline.make import orchestrate as make

    if args.resume:
        problem = _output_problem(args.output)
        if problem:
            return _usage(problem)
        progress = _Progress()
        result = make.resume(args.resume, progress)
        runs = make.last_run(args.resume)
        print("stages: " + ", ".join(f"{k} {v}" for k, v in runs.items()), file=sys.stderr)
        return _finish(result, args.output, progress)
    failed = _check(args)
    if failed is not None:
        return failed
    progress = _Progress()
    job_dir = args.job_dir or os.path.join("jobs", time.strftime("%Y%m%d-%H%M%S"))
    result = make.make_video(_brief(args), os.path.abspath(job_dir), progress, model=args.model)
    return _finish(result, args.output, progress)


def demo_footage(folder: str, lang: str) -> list[tuple[str, str]]:
    """Sample footage made offline: three 720p clips filmed over scikit-image's photographs by
    a moving virtual camera, and a photo; with captions. Returns (path, caption) pairs."""
    from PIL import Image

    from pipeline.bench.synth import Scene, load_photo, write_clip

    os.makedirs(folder, exist_ok=True)
    captions = DEMO[lang][1]
    takes = {
        "coffee.mp4": [Scene("coffee", 75, 1.0, 1.2, (0.0, 0.0), (0.04, 0.0)),
                       Scene("coffee", 60, 1.3, 1.1, (0.1, 0.05), (0.0, 0.0))],
        "cat.mp4": [Scene("chelsea", 90, 1.2, 1.0, (-0.05, 0.0), (0.05, 0.02))],
        "rocket.mp4": [Scene("rocket", 75, 1.0, 1.25, (0.0, 0.05), (0.0, -0.05)),
                       Scene("astronaut", 60, 1.1, 1.0)],
    }  # fmt: skip
    out = []
    for (name, scenes), caption in zip(takes.items(), captions, strict=False):
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            with atomic_path(path, suffix=".mp4") as tmp:
                write_clip(str(tmp), scenes, (1280, 720))
        out.append((path, caption))
    photo = os.path.join(folder, "moon.jpg")
    if not os.path.isfile(photo):
        Image.fromarray(load_photo("moon")[:, :, ::-1].copy()).resize((1024, 1024)).save(photo)
    out.append((photo, captions[3]))
    return out


def _demo(args: argparse.Namespace) -> int:
    from pipeline.brief import Brief, Footage
    from pipeline.make import orchestrate as make
    from pipeline.plan import OutputSpec, output_size

    folder = os.path.abspath(args.folder)
    t0 = time.monotonic()
    print(f"generating sample footage in {folder}/footage ...", file=sys.stderr)
    footage = demo_footage(os.path.join(folder, "footage"), args.lang)
    print(f"  {time.monotonic() - t0:.1f}s", file=sys.stderr)
    w, h = output_size(args.size)
    brief = Brief(
        topic=DEMO[args.lang][0],
        style=args.style,
        language=args.lang,
        seconds=args.seconds,
        footage=tuple(Footage(p, c) for p, c in footage),
        output=OutputSpec(width=w, height=h),
    )
    progress = _Progress()
    result = make.make_video(brief, os.path.join(folder, f"job-{args.lang}"), progress)
    return _finish(result, args.output, progress)


def register(sub: Any) -> None:
    p = sub.add_parser("make", help="make a narrated, captioned short from a topic and footage")
    p.add_argument("--topic", help="what the video is about")
    p.add_argument("--footage", nargs="+", metavar="FILE", help="videos and photos")
    p.add_argument("--caption", action="append", metavar="TEXT",
                   help="what a footage file shows (once per --footage, in order)")  # fmt: skip
    p.add_argument(
        "--style", default="knowledge", help="knowledge, product, vlog, funny or motivational"
    )
    p.add_argument("--lang", choices=("zh", "en"), default="en")
    p.add_argument("--seconds", type=int, default=30, help="target length (5-180)")
    p.add_argument("--voice", help="edge-tts voice name (default: by language and style)")
    p.add_argument("--music", metavar="FILE", help="background music, looped and ducked")
    p.add_argument("--size", default="1080x1920", help="WIDTHxHEIGHT (default 1080x1920)")
    p.add_argument("--notes", default="", help="anything the script should say or avoid")
    p.add_argument("--model", help="script model (hub id or folder; default: offline writer)")
    p.add_argument("--seed", type=int, default=0, help="another seed gives another version")
    p.add_argument("-o", "--output", metavar="OUT.mp4", help="also copy the video here")
    p.add_argument("--job-dir", metavar="DIR", help="job folder (default jobs/<time>)")
    p.add_argument("--resume", metavar="JOBDIR",
                   help="bring a job folder up to date after edits (e.g. script.json)")  # fmt: skip
    p.set_defaults(handler=_make)

    d = sub.add_parser("demo", help="make a short from generated sample footage, offline")
    d.add_argument("--lang", choices=("zh", "en"), default="en")
    d.add_argument("--style", default="vlog")
    d.add_argument("--seconds", type=int, default=20)
    d.add_argument("--size", default="720x1280")
    d.add_argument("--folder", default=str(Path("out") / "demo"), help="where to work")
    d.add_argument("-o", "--output", metavar="OUT.mp4", help="also copy the video here")
    d.set_defaults(handler=_demo)
